//! kiln's own EC2 client (`kiln::aws::ec2`) against moto: signed Query calls, images found by
//! name, owner and id, EC2's errors passed on with their code. moto does not check signatures,
//! so the recording shows what kiln signed: service, region and access key.

use crate::harness::*;
use kiln::aws::CredentialSource;
use kiln::aws::ec2::{Ec2, ImageQuery};

/// moto 5's copy of Canonical's xenial image in us-east-1 (see moto-seed.py).
const XENIAL: &str = "ami-785db401";
const CANONICAL: &str = "099720109477";

fn client(moto: &Moto) -> Ec2 {
    Ec2::new(
        "us-east-1",
        Some(&moto.endpoint),
        CredentialSource::Explicit {
            access_key: "AKIAKILNEC2CLIENT000".into(),
            secret_key: "kiln-ec2-client-secret".into(),
        },
    )
}

#[tokio::test]
async fn images_are_found_by_id_by_name_and_owner_and_errors_keep_their_code() {
    let moto = Moto::start();
    let ec2 = client(&moto);

    let by_id = ec2
        .describe_images(&ImageQuery {
            image_ids: vec![XENIAL.into()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_id.len(), 1, "{by_id:?}");
    let xenial = &by_id[0];
    let name = xenial.name.clone().expect("a name");
    assert_eq!(xenial.virtualization_type.as_deref(), Some("hvm"));
    assert!(
        xenial.block_devices.iter().any(|d| d.snapshot_id.is_some()),
        "{xenial:?}"
    );

    // By name with a wildcard, limited to the owner: the same image.
    let prefix: String = name.chars().take(name.len() - 3).collect();
    let by_name = ec2
        .describe_images(&ImageQuery {
            names: vec![format!("{prefix}*")],
            owners: vec![CANONICAL.into()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(by_name.iter().any(|i| i.id == XENIAL), "{by_name:?}");
    assert!(
        by_name
            .iter()
            .all(|i| i.owner_id.as_deref() == Some(CANONICAL))
    );

    let none = ec2
        .describe_images(&ImageQuery {
            names: vec!["no-such-image-*".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(none.is_empty());

    let err = ec2
        .describe_images(&ImageQuery {
            image_ids: vec!["ami-00000000000000000".into()],
            ..Default::default()
        })
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("DescribeImages") && err.contains("InvalidAMIID"),
        "{err}"
    );
    assert!(!err.contains("kiln-ec2-client-secret"), "{err}");

    let calls = moto.inspect("calls", &[]);
    let ours: Vec<_> = calls
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["access_key"] == "AKIAKILNEC2CLIENT000")
        .collect();
    assert_eq!(ours.len(), 4, "{calls}");
    for c in ours {
        assert_eq!(c["service"], "ec2");
        assert_eq!(c["region"], "us-east-1");
        assert_eq!(c["action"], "DescribeImages");
    }
}

#[tokio::test]
async fn an_unreachable_endpoint_fails_with_the_endpoint_named() {
    let port = free_port();
    let ec2 = Ec2::new(
        "us-east-1",
        Some(&format!("http://127.0.0.1:{port}")),
        CredentialSource::Explicit {
            access_key: "AKIA0".into(),
            secret_key: "s".into(),
        },
    );
    let err = ec2
        .describe_images(&ImageQuery::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
}
