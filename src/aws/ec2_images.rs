//! The EC2 actions of the ebs-direct builder: a snapshot's state, `RegisterImage`, `CreateTags`,
//! sharing (`ModifyImageAttribute`, `ModifySnapshotAttribute`), `CopyImage`, `DeleteSnapshot`.
//! Query calls through [`Ec2`]'s signed, retried `call`; the parameters are built by pure
//! functions, tested below.

use super::AwsError;
use super::ec2::{BlockDevice, Ec2, child, items, list, text};

/// What `RegisterImage` is given: the base image's settings, its root pointing at a new snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registration {
    pub name: String,
    pub description: Option<String>,
    pub architecture: String,
    pub root_device_name: String,
    pub ena_support: bool,
    pub sriov_net_support: Option<String>,
    pub boot_mode: Option<String>,
    pub block_devices: Vec<BlockDevice>,
}

impl Ec2 {
    /// `DescribeSnapshots` of one snapshot: its state (`pending`, `completed`, `error`), or
    /// `None` when EC2 does not know it.
    pub async fn snapshot_state(&self, snapshot_id: &str) -> Result<Option<String>, AwsError> {
        let xml = self
            .call(
                "DescribeSnapshots",
                vec![("SnapshotId.1".into(), snapshot_id.into())],
            )
            .await;
        let xml = match xml {
            Ok(x) => x,
            Err(AwsError::Api { code, .. }) if code == "InvalidSnapshot.NotFound" => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let doc = roxmltree::Document::parse(&xml)
            .map_err(|e| self.decode_error("DescribeSnapshots", e.to_string()))?;
        let state = child(doc.root_element(), "snapshotSet")
            .and_then(|set| {
                items(set).find(|i| text(*i, "snapshotId").as_deref() == Some(snapshot_id))
            })
            .and_then(|i| text(i, "status"));
        Ok(state)
    }

    pub async fn delete_snapshot(&self, snapshot_id: &str) -> Result<(), AwsError> {
        self.call(
            "DeleteSnapshot",
            vec![("SnapshotId".into(), snapshot_id.into())],
        )
        .await
        .map(drop)
    }

    /// `RegisterImage`; the new image's id.
    pub async fn register_image(&self, r: &Registration) -> Result<String, AwsError> {
        let xml = self.call("RegisterImage", register_params(r)).await?;
        image_id(&xml).ok_or_else(|| self.decode_error("RegisterImage", "no imageId".into()))
    }

    /// `CreateTags` on every resource given; nothing to do without tags.
    pub async fn create_tags(
        &self,
        resources: &[String],
        tags: &[(String, String)],
    ) -> Result<(), AwsError> {
        if tags.is_empty() || resources.is_empty() {
            return Ok(());
        }
        let mut params = Vec::new();
        list(&mut params, "ResourceId", resources);
        for (i, (k, v)) in tags.iter().enumerate() {
            params.push((format!("Tag.{}.Key", i + 1), k.clone()));
            params.push((format!("Tag.{}.Value", i + 1), v.clone()));
        }
        self.call("CreateTags", params).await.map(drop)
    }

    /// Launch permission on an image for each account.
    pub async fn share_image(&self, image_id: &str, accounts: &[String]) -> Result<(), AwsError> {
        let mut params = vec![("ImageId".to_string(), image_id.to_string())];
        for (i, a) in accounts.iter().enumerate() {
            params.push((format!("LaunchPermission.Add.{}.UserId", i + 1), a.clone()));
        }
        self.call("ModifyImageAttribute", params).await.map(drop)
    }

    /// Create-volume permission on a snapshot for each account (an instance launched from a
    /// shared image needs it on the image's snapshots).
    pub async fn share_snapshot(
        &self,
        snapshot_id: &str,
        accounts: &[String],
    ) -> Result<(), AwsError> {
        let mut params = vec![
            ("SnapshotId".to_string(), snapshot_id.to_string()),
            (
                "Attribute".to_string(),
                "createVolumePermission".to_string(),
            ),
            ("OperationType".to_string(), "add".to_string()),
        ];
        list(&mut params, "UserId", accounts);
        self.call("ModifySnapshotAttribute", params).await.map(drop)
    }

    /// `CopyImage` into this client's region; the copy's id.
    pub async fn copy_image(
        &self,
        source_region: &str,
        source_image: &str,
        name: &str,
    ) -> Result<String, AwsError> {
        let params = vec![
            ("SourceRegion".to_string(), source_region.to_string()),
            ("SourceImageId".to_string(), source_image.to_string()),
            ("Name".to_string(), name.to_string()),
        ];
        let xml = self.call("CopyImage", params).await?;
        image_id(&xml).ok_or_else(|| self.decode_error("CopyImage", "no imageId".into()))
    }
}

/// The Query parameters of `RegisterImage`.
pub fn register_params(r: &Registration) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = vec![
        ("Name".into(), r.name.clone()),
        ("Architecture".into(), r.architecture.clone()),
        ("RootDeviceName".into(), r.root_device_name.clone()),
        ("VirtualizationType".into(), "hvm".into()),
    ];
    if let Some(d) = &r.description {
        p.push(("Description".into(), d.clone()));
    }
    if r.ena_support {
        p.push(("EnaSupport".into(), "true".into()));
    }
    if let Some(s) = &r.sriov_net_support {
        p.push(("SriovNetSupport".into(), s.clone()));
    }
    if let Some(b) = &r.boot_mode {
        p.push(("BootMode".into(), b.clone()));
    }
    for (i, d) in r.block_devices.iter().enumerate() {
        let at = format!("BlockDeviceMapping.{}", i + 1);
        p.push((format!("{at}.DeviceName"), d.device_name.clone()));
        if let Some(v) = &d.virtual_name {
            p.push((format!("{at}.VirtualName"), v.clone()));
            continue;
        }
        let mut ebs = |k: &str, v: String| p.push((format!("{at}.Ebs.{k}"), v));
        if let Some(s) = &d.snapshot_id {
            ebs("SnapshotId", s.clone());
        }
        if let Some(s) = d.volume_size_gib {
            ebs("VolumeSize", s.to_string());
        }
        if let Some(t) = &d.volume_type {
            ebs("VolumeType", t.clone());
        }
        if let Some(x) = d.delete_on_termination {
            ebs("DeleteOnTermination", x.to_string());
        }
        if let Some(x) = d.iops {
            ebs("Iops", x.to_string());
        }
        if let Some(x) = d.throughput {
            ebs("Throughput", x.to_string());
        }
    }
    p
}

fn image_id(xml: &str) -> Option<String> {
    let doc = roxmltree::Document::parse(xml).ok()?;
    text(doc.root_element(), "imageId")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_keeps_the_base_mappings_with_the_new_root() {
        let r = Registration {
            name: "app-1".into(),
            architecture: "arm64".into(),
            root_device_name: "/dev/xvda".into(),
            ena_support: true,
            boot_mode: Some("uefi".into()),
            block_devices: vec![
                BlockDevice {
                    device_name: "/dev/xvda".into(),
                    snapshot_id: Some("snap-new".into()),
                    volume_size_gib: Some(8),
                    volume_type: Some("gp3".into()),
                    delete_on_termination: Some(true),
                    ..Default::default()
                },
                BlockDevice {
                    device_name: "/dev/sdb".into(),
                    virtual_name: Some("ephemeral0".into()),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let p = register_params(&r);
        let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("Architecture"), Some("arm64"));
        assert_eq!(get("EnaSupport"), Some("true"));
        assert_eq!(get("BootMode"), Some("uefi"));
        assert_eq!(get("SriovNetSupport"), None);
        assert_eq!(get("BlockDeviceMapping.1.Ebs.SnapshotId"), Some("snap-new"));
        assert_eq!(
            get("BlockDeviceMapping.1.Ebs.DeleteOnTermination"),
            Some("true")
        );
        assert_eq!(get("BlockDeviceMapping.2.VirtualName"), Some("ephemeral0"));
        assert_eq!(get("BlockDeviceMapping.2.Ebs.VolumeSize"), None);
    }

    #[test]
    fn image_ids_are_read_from_register_and_copy_answers() {
        let xml = r#"<RegisterImageResponse xmlns="x"><requestId>r</requestId><imageId>ami-1</imageId></RegisterImageResponse>"#;
        assert_eq!(image_id(xml).as_deref(), Some("ami-1"));
        assert_eq!(image_id("<CopyImageResponse/>"), None);
    }
}
