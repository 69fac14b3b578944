//! The source image of an AWS bake, as Rosco's `AWSBakeHandler.findVirtualizationSettings`
//! decides it: the request's `base_ami`, else the virtualization setting's `sourceAmi`, else the
//! dynamic config key `aws.base.<base_os>.<vm_type>.<base_label>.<region>`. An `ami-…` id is
//! used as it is; a name is looked up (Clouddriver's `images/find`, or EC2 itself) and Rosco's
//! rule picks one image: with `mostRecent` the newest of the request's virtualization type, else
//! the first of that type.
//!
//! The rule and the names are here, without I/O; the lookup is behind
//! [`crate::services::source_images::SourceImages`].

use crate::config::Settings;
use crate::services::source_images::Candidate;

/// Whether a source is an image id (Rosco's `^ami-[a-z0-9]+$`) rather than a name to look up.
pub fn is_image_id(source: &str) -> bool {
    source.strip_prefix("ami-").is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    })
}

/// Rosco's rule (`lookupAmiByName`): only images of `vm_type` count; with `most_recent` the one
/// with the greatest creation date (the first of equals), else the first. Its id in the region,
/// if it has one there.
pub fn pick(candidates: &[Candidate], vm_type: &str, most_recent: bool) -> Option<String> {
    let mut matching = candidates.iter().filter(|c| {
        c.virtualization_type
            .as_deref()
            .is_some_and(|t| same_vm_type(t, vm_type))
    });
    let chosen = if most_recent {
        matching.fold(None::<&Candidate>, |best, c| match best {
            Some(b) if c.creation_date <= b.creation_date => Some(b),
            _ => Some(c),
        })
    } else {
        matching.next()
    };
    chosen.and_then(|c| c.id.clone())
}

/// EC2 calls Rosco's `pv` `paravirtual`.
fn same_vm_type(image: &str, wanted: &str) -> bool {
    let norm = |t: &str| match t.to_ascii_lowercase().as_str() {
        "paravirtual" => "pv".to_string(),
        other => other.to_string(),
    };
    norm(image) == norm(wanted)
}

/// Rosco's dynamic base image: the value of `aws.base.<os>.<vm_type>.<label>.<region>` in the
/// configuration, written nested or with dots in keys. Keys are compared in Spring's relaxed
/// form, as the configuration's keys are read.
pub fn dynamic_base(
    settings: &Settings,
    os: &str,
    vm_type: &str,
    label: &str,
    region: &str,
) -> Option<String> {
    let tree = settings.aws.base.as_ref()?;
    let wanted: Vec<String> = [os, vm_type, label, region]
        .iter()
        .map(|s| crate::config::relaxed_key(s))
        .collect();
    find_dotted(tree, &wanted.join("."), "")
}

fn find_dotted(v: &serde_norway::Value, wanted: &str, prefix: &str) -> Option<String> {
    match v {
        serde_norway::Value::Mapping(m) => m.iter().find_map(|(k, child)| {
            let k = match k {
                serde_norway::Value::String(s) => s.clone(),
                serde_norway::Value::Number(n) => n.to_string(),
                _ => return None,
            };
            let path = if prefix.is_empty() {
                k
            } else {
                format!("{prefix}.{k}")
            };
            if wanted == path || wanted.starts_with(&format!("{path}.")) {
                find_dotted(child, wanted, &path)
            } else {
                None
            }
        }),
        serde_norway::Value::String(s) if prefix == wanted => {
            Some(s.trim().to_string()).filter(|s| !s.is_empty())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(id: &str, vt: &str, date: &str) -> Candidate {
        Candidate {
            id: Some(id.into()),
            virtualization_type: Some(vt.into()),
            creation_date: Some(date.into()),
        }
    }

    /// AWSBakeHandlerSpec's three xenial images, in Clouddriver's order.
    fn xenial() -> Vec<Candidate> {
        vec![
            image("ami-20200126", "hvm", "2020-02-26T00:00:00.000Z"),
            image("ami-20201210", "hvm", "2021-01-10T00:00:00.000Z"),
            image("ami-20201009", "hvm", "2020-11-09T00:00:00.000Z"),
        ]
    }

    #[test]
    fn most_recent_takes_the_newest_and_otherwise_the_first_as_rosco_does() {
        assert_eq!(
            pick(&xenial(), "hvm", true).as_deref(),
            Some("ami-20201210")
        );
        assert_eq!(
            pick(&xenial(), "hvm", false).as_deref(),
            Some("ami-20200126")
        );
    }

    #[test]
    fn only_images_of_the_requested_virtualization_type_count() {
        let mut all = xenial();
        all.insert(
            0,
            image("ami-pv", "paravirtual", "2030-01-01T00:00:00.000Z"),
        );
        assert_eq!(pick(&all, "hvm", true).as_deref(), Some("ami-20201210"));
        assert_eq!(pick(&all, "hvm", false).as_deref(), Some("ami-20200126"));
        assert_eq!(pick(&all, "pv", false).as_deref(), Some("ami-pv"));
        assert_eq!(pick(&xenial(), "pv", true), None);
        assert_eq!(pick(&[], "hvm", true), None);
    }

    #[test]
    fn equal_dates_keep_the_first_and_an_image_without_an_id_in_the_region_is_no_match() {
        let same = vec![
            image("ami-a", "hvm", "2020-01-01"),
            image("ami-b", "hvm", "2020-01-01"),
        ];
        assert_eq!(pick(&same, "hvm", true).as_deref(), Some("ami-a"));
        let elsewhere = vec![Candidate {
            id: None,
            ..image("x", "hvm", "2020")
        }];
        assert_eq!(pick(&elsewhere, "hvm", false), None);
    }

    #[test]
    fn ids_are_told_from_names() {
        assert!(is_image_id("ami-785db401"));
        assert!(!is_image_id(
            "ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-amd64-server-*"
        ));
        assert!(!is_image_id("ami-"));
        assert!(!is_image_id("ami-ABC"));
    }

    #[test]
    fn dynamic_bases_are_found_nested_or_dotted_in_relaxed_form() {
        let yaml =
            |text: &str| -> Settings { crate::config::load_str(text, &|_| None).unwrap().settings };
        let nested = yaml(
            "aws:\n  base:\n    trusty:\n      hvm:\n        release:\n          us-east-1: ami-123\n",
        );
        assert_eq!(
            dynamic_base(&nested, "trusty", "hvm", "release", "us-east-1").as_deref(),
            Some("ami-123")
        );
        assert_eq!(
            dynamic_base(&nested, "trusty", "hvm", "candidate", "us-east-1"),
            None
        );
        let dotted = yaml("aws:\n  base:\n    ubuntu-jammy.hvm.release.eu-west-1: jammy-base-*\n");
        assert_eq!(
            dynamic_base(&dotted, "ubuntu-jammy", "hvm", "release", "eu-west-1").as_deref(),
            Some("jammy-base-*")
        );
        assert_eq!(dynamic_base(&Settings::default(), "a", "b", "c", "d"), None);
    }
}
