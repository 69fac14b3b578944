//! The EC2 Query API actions kiln calls itself, signed with SigV4 (see the module above for why
//! not the SDK). Today: `DescribeImages`, to resolve a source image by name before Packer runs.
//!
//! Hand-written on purpose: each action is a form-encoded POST and an XML answer of a few known
//! elements; the SDK's generated client for all of EC2 costs minutes of build per change.

use super::{AwsError, CredentialSource};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use std::time::{Duration, SystemTime};

/// The EC2 API version the Query calls speak (the current one; moto speaks it too).
const API_VERSION: &str = "2016-11-15";
/// Deadline of one HTTP exchange.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Tries of one call when AWS throttles or fails on its side.
const TRIES: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// An EC2 endpoint in one region, with the credentials to call it.
#[derive(Debug, Clone)]
pub struct Ec2 {
    region: String,
    endpoint: String,
    credentials: CredentialSource,
    agent: ureq::Agent,
}

/// What `DescribeImages` is asked for; empty lists are left out of the call.
#[derive(Debug, Clone, Default)]
pub struct ImageQuery {
    pub image_ids: Vec<String>,
    pub owners: Vec<String>,
    /// `name` filter values (wildcards `*` and `?` as EC2 takes them).
    pub names: Vec<String>,
    /// Further filters: name and values.
    pub filters: Vec<(String, Vec<String>)>,
}

/// One image, with the fields kiln reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Image {
    pub id: String,
    pub name: Option<String>,
    pub state: Option<String>,
    pub owner_id: Option<String>,
    /// ISO 8601, as EC2 writes it (sorts as text).
    pub creation_date: Option<String>,
    pub architecture: Option<String>,
    pub virtualization_type: Option<String>,
    pub root_device_name: Option<String>,
    pub block_devices: Vec<BlockDevice>,
    /// `true` when the image has ENA enabled.
    pub ena_support: bool,
    /// `simple` when SR-IOV (Intel 82599 VF) networking is on.
    pub sriov_net_support: Option<String>,
    /// `legacy-bios`, `uefi` or `uefi-preferred`; unset for most older images.
    pub boot_mode: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockDevice {
    pub device_name: String,
    pub snapshot_id: Option<String>,
    pub volume_size_gib: Option<u64>,
    /// An instance store volume (`ephemeral0`), instead of EBS.
    pub virtual_name: Option<String>,
    pub volume_type: Option<String>,
    pub delete_on_termination: Option<bool>,
    pub encrypted: Option<bool>,
    pub iops: Option<u64>,
    pub throughput: Option<u64>,
}

impl Ec2 {
    /// EC2 in `region`, at `endpoint` (e.g. `aws.bakeryDefaults.awsEc2Endpoint`), else AWS's
    /// regional endpoint.
    pub fn new(region: &str, endpoint: Option<&str>, credentials: CredentialSource) -> Ec2 {
        let endpoint = endpoint
            .map(|e| e.trim().trim_end_matches('/').to_string())
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| format!("https://ec2.{region}.amazonaws.com"));
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(CALL_TIMEOUT))
            .http_status_as_error(false)
            .build()
            .new_agent();
        Ec2 {
            region: region.to_string(),
            endpoint,
            credentials,
            agent,
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// `DescribeImages`: every image matching the query (EC2 answers all without paging when
    /// no `MaxResults` is given).
    pub async fn describe_images(&self, q: &ImageQuery) -> Result<Vec<Image>, AwsError> {
        let mut params = Vec::new();
        list(&mut params, "ImageId", &q.image_ids);
        list(&mut params, "Owner", &q.owners);
        let mut filters: Vec<(String, Vec<String>)> = Vec::new();
        if !q.names.is_empty() {
            filters.push(("name".into(), q.names.clone()));
        }
        filters.extend(q.filters.iter().cloned());
        for (i, (name, values)) in filters.iter().enumerate() {
            params.push((format!("Filter.{}.Name", i + 1), name.clone()));
            list(&mut params, &format!("Filter.{}.Value", i + 1), values);
        }
        let xml = self.call("DescribeImages", params).await?;
        parse_images(&xml).map_err(|detail| self.decode_error("DescribeImages", detail))
    }

    /// One signed Query call, retried on throttling and server errors; the answer's XML text.
    pub(super) async fn call(
        &self,
        action: &str,
        params: Vec<(String, String)>,
    ) -> Result<String, AwsError> {
        let body = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("Action", action)
                .append_pair("Version", API_VERSION);
            for (k, v) in &params {
                form.append_pair(k, v);
            }
            form.finish()
        };
        let mut backoff = FIRST_BACKOFF;
        let mut tries = 0;
        loop {
            tries += 1;
            let credentials = self.credentials.resolve(&self.region).await?;
            let headers = self.sign(action, &body, &credentials)?;
            let (agent, url, body) = (self.agent.clone(), self.endpoint.clone(), body.clone());
            let sent = tokio::task::spawn_blocking(move || {
                let mut req = agent.post(&url).header(
                    "content-type",
                    "application/x-www-form-urlencoded; charset=utf-8",
                );
                for (name, value) in headers {
                    req = req.header(name, value);
                }
                let mut resp = req.send(body.as_bytes())?;
                let status = resp.status().as_u16();
                let text = resp.body_mut().read_to_string()?;
                Ok::<_, ureq::Error>((status, text))
            })
            .await
            .map_err(|e| self.transport_error(action, e.to_string()))?;
            let retryable = match sent {
                Ok((status, text)) if (200..300).contains(&status) => return Ok(text),
                Ok((status, text)) => {
                    let (code, message) = parse_error(&text)
                        .unwrap_or_else(|| (format!("HTTP {status}"), first_line(&text)));
                    let error = AwsError::Api {
                        action: action.to_string(),
                        endpoint: self.endpoint.clone(),
                        code: code.clone(),
                        message,
                    };
                    if status < 500 && !is_throttling(&code) {
                        return Err(error);
                    }
                    error
                }
                Err(e) => self.transport_error(action, e.to_string()),
            };
            if tries >= TRIES {
                return Err(retryable);
            }
            tracing::debug!(action, error = %retryable, "retrying an EC2 call");
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
    }

    /// The SigV4 headers for a POST of `body` (service `ec2`).
    fn sign(
        &self,
        action: &str,
        body: &str,
        credentials: &aws_credential_types::Credentials,
    ) -> Result<Vec<(String, String)>, AwsError> {
        let identity = credentials.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("ec2")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| self.transport_error(action, format!("cannot sign: {e}")))?
            .into();
        let content_type = [(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )];
        let signable = SignableRequest::new(
            "POST",
            &self.endpoint,
            content_type.into_iter(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| self.transport_error(action, format!("cannot sign: {e}")))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| self.transport_error(action, format!("cannot sign: {e}")))?
            .into_parts();
        Ok(instructions
            .headers()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    fn transport_error(&self, action: &str, detail: String) -> AwsError {
        AwsError::Transport {
            action: action.to_string(),
            endpoint: self.endpoint.clone(),
            detail,
        }
    }

    pub(super) fn decode_error(&self, action: &str, detail: String) -> AwsError {
        AwsError::Decode {
            action: action.to_string(),
            endpoint: self.endpoint.clone(),
            detail,
        }
    }
}

pub(super) fn list(params: &mut Vec<(String, String)>, prefix: &str, values: &[String]) {
    for (i, v) in values.iter().enumerate() {
        params.push((format!("{prefix}.{}", i + 1), v.clone()));
    }
}

fn is_throttling(code: &str) -> bool {
    matches!(
        code,
        "Throttling" | "ThrottlingException" | "RequestLimitExceeded" | "RequestThrottled"
    )
}

fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(200)
        .collect()
}

/// The first child element of `node` named `name` (namespaces ignored).
pub(super) fn child<'a>(
    node: roxmltree::Node<'a, 'a>,
    name: &str,
) -> Option<roxmltree::Node<'a, 'a>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

pub(super) fn text(node: roxmltree::Node, name: &str) -> Option<String> {
    child(node, name)
        .and_then(|c| c.text())
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

pub(super) fn items<'a>(
    node: roxmltree::Node<'a, 'a>,
) -> impl Iterator<Item = roxmltree::Node<'a, 'a>> {
    node.children()
        .filter(|c| c.is_element() && c.tag_name().name() == "item")
}

/// `DescribeImagesResponse/imagesSet/item…`.
fn parse_images(xml: &str) -> Result<Vec<Image>, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| e.to_string())?;
    let root = doc.root_element();
    if root.tag_name().name() != "DescribeImagesResponse" {
        return Err(format!(
            "expected DescribeImagesResponse, found {}",
            root.tag_name().name()
        ));
    }
    let Some(set) = child(root, "imagesSet") else {
        return Ok(Vec::new());
    };
    let mut images = Vec::new();
    for item in items(set) {
        let Some(id) = text(item, "imageId") else {
            return Err("an image without an imageId".into());
        };
        let block_devices = child(item, "blockDeviceMapping")
            .map(|m| {
                items(m)
                    .map(|d| {
                        let ebs = child(d, "ebs");
                        BlockDevice {
                            device_name: text(d, "deviceName").unwrap_or_default(),
                            snapshot_id: ebs.and_then(|e| text(e, "snapshotId")),
                            volume_size_gib: ebs
                                .and_then(|e| text(e, "volumeSize"))
                                .and_then(|s| s.parse().ok()),
                            virtual_name: text(d, "virtualName"),
                            volume_type: ebs.and_then(|e| text(e, "volumeType")),
                            delete_on_termination: ebs
                                .and_then(|e| text(e, "deleteOnTermination"))
                                .map(|s| s == "true"),
                            encrypted: ebs.and_then(|e| text(e, "encrypted")).map(|s| s == "true"),
                            iops: ebs
                                .and_then(|e| text(e, "iops"))
                                .and_then(|s| s.parse().ok()),
                            throughput: ebs
                                .and_then(|e| text(e, "throughput"))
                                .and_then(|s| s.parse().ok()),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        images.push(Image {
            id,
            name: text(item, "name"),
            state: text(item, "imageState"),
            owner_id: text(item, "imageOwnerId"),
            creation_date: text(item, "creationDate"),
            architecture: text(item, "architecture"),
            virtualization_type: text(item, "virtualizationType"),
            root_device_name: text(item, "rootDeviceName"),
            block_devices,
            ena_support: text(item, "enaSupport").is_some_and(|s| s == "true"),
            sriov_net_support: text(item, "sriovNetSupport"),
            boot_mode: text(item, "bootMode"),
        });
    }
    Ok(images)
}

/// `Response/Errors/Error/{Code,Message}`, EC2's error document.
fn parse_error(xml: &str) -> Option<(String, String)> {
    let doc = roxmltree::Document::parse(xml).ok()?;
    let error = doc
        .descendants()
        .find(|n| n.is_element() && n.tag_name().name() == "Error")?;
    Some((
        text(error, "Code")?,
        text(error, "Message").unwrap_or_default(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMAGES: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<DescribeImagesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>
  <imagesSet>
    <item>
      <imageId>ami-1a2b3c4d</imageId>
      <imageState>available</imageState>
      <imageOwnerId>123456789012</imageOwnerId>
      <creationDate>2026-10-01T12:00:00.000Z</creationDate>
      <architecture>x86_64</architecture>
      <name>jammy-base-2026</name>
      <rootDeviceName>/dev/sda1</rootDeviceName>
      <blockDeviceMapping>
        <item><deviceName>/dev/sda1</deviceName>
          <ebs><snapshotId>snap-0abc</snapshotId><volumeSize>8</volumeSize></ebs></item>
        <item><deviceName>/dev/sdb</deviceName><virtualName>ephemeral0</virtualName></item>
      </blockDeviceMapping>
      <virtualizationType>hvm</virtualizationType>
      <enaSupport>true</enaSupport>
      <bootMode>uefi</bootMode>
      <tagSet><item><key>name</key><value>not-the-image-name</value></item></tagSet>
    </item>
    <item><imageId>ami-2</imageId><virtualizationType>paravirtual</virtualizationType></item>
  </imagesSet>
</DescribeImagesResponse>"#;

    #[test]
    fn images_are_read_from_ec2s_answer() {
        let images = parse_images(IMAGES).unwrap();
        assert_eq!(images.len(), 2);
        let a = &images[0];
        assert_eq!(a.id, "ami-1a2b3c4d");
        assert_eq!(a.name.as_deref(), Some("jammy-base-2026"));
        assert_eq!(a.virtualization_type.as_deref(), Some("hvm"));
        assert_eq!(a.creation_date.as_deref(), Some("2026-10-01T12:00:00.000Z"));
        assert_eq!(a.block_devices.len(), 2);
        assert_eq!(a.block_devices[0].snapshot_id.as_deref(), Some("snap-0abc"));
        assert_eq!(a.block_devices[0].volume_size_gib, Some(8));
        assert_eq!(a.block_devices[1].snapshot_id, None);
        assert_eq!(images[1].name, None);
        assert_eq!(
            a.block_devices[1].virtual_name.as_deref(),
            Some("ephemeral0")
        );
        assert!(a.ena_support);
        assert_eq!(a.boot_mode.as_deref(), Some("uefi"));
        assert_eq!(a.sriov_net_support, None);
    }

    #[test]
    fn an_empty_answer_has_no_images_and_a_wrong_one_is_an_error() {
        let empty = r#"<DescribeImagesResponse xmlns="x"><requestId>r</requestId><imagesSet/></DescribeImagesResponse>"#;
        assert_eq!(parse_images(empty).unwrap(), Vec::new());
        assert!(parse_images("<Other/>").is_err());
        assert!(parse_images("not xml").is_err());
    }

    #[test]
    fn ec2_error_documents_give_code_and_message() {
        let xml = r#"<?xml version="1.0"?><Response><Errors><Error><Code>AuthFailure</Code><Message>AWS was not able to validate the provided access credentials</Message></Error></Errors><RequestID>r</RequestID></Response>"#;
        let (code, message) = parse_error(xml).unwrap();
        assert_eq!(code, "AuthFailure");
        assert!(message.starts_with("AWS was not able"));
        assert!(is_throttling("RequestLimitExceeded"));
        assert!(!is_throttling("AuthFailure"));
    }

    #[test]
    fn the_endpoint_defaults_to_the_region_and_secrets_stay_out_of_debug() {
        let creds = CredentialSource::Explicit {
            access_key: "AKIAEXAMPLE".into(),
            secret_key: "very-secret".into(),
        };
        let ec2 = Ec2::new("eu-west-1", None, creds.clone());
        assert_eq!(ec2.endpoint(), "https://ec2.eu-west-1.amazonaws.com");
        let ec2 = Ec2::new("eu-west-1", Some("http://127.0.0.1:5000/"), creds);
        assert_eq!(ec2.endpoint(), "http://127.0.0.1:5000");
        let shown = format!("{ec2:?}");
        assert!(
            !shown.contains("very-secret") && shown.contains("AKIAEXAMPLE"),
            "{shown}"
        );
    }
}
