//! Where kiln looks a source image up by name (the I/O half of `providers::source`): Rosco's
//! way through Clouddriver when `services.clouddriver.baseUrl` is set, else EC2 itself
//! (`DescribeImages` by name with the bake's credentials, region and `awsEc2Endpoint`).

use super::clouddriver::Clouddriver;
use crate::aws::CredentialSource;
use crate::aws::ec2::{Ec2, ImageQuery};
use crate::config::Settings;
use crate::providers::source::{Candidate, LookupError, NameQuery, SourceImages};

/// The lookup the settings choose.
pub enum Finder {
    Clouddriver(Clouddriver),
    Ec2 {
        endpoint: Option<String>,
        credentials: CredentialSource,
    },
}

impl Finder {
    pub fn of(settings: &Settings) -> Finder {
        match settings.clouddriver_base_url() {
            Some(url) => Finder::Clouddriver(Clouddriver::new(&url)),
            None => Finder::Ec2 {
                endpoint: settings.aws.bakery_defaults.aws_ec2_endpoint.clone(),
                credentials: CredentialSource::of(settings),
            },
        }
    }
}

impl SourceImages for Finder {
    fn find(&self, q: &NameQuery) -> Result<Vec<Candidate>, LookupError> {
        let failed = |detail: String| LookupError {
            name: q.name.clone(),
            detail,
        };
        match self {
            Finder::Clouddriver(cd) => {
                let images = cd
                    .find_amazon_images(&q.name, q.account.as_deref(), &q.region)
                    .map_err(|e| failed(e.to_string()))?;
                Ok(images
                    .into_iter()
                    .map(|i| Candidate {
                        id: i.amis.get(&q.region).and_then(|ids| ids.first().cloned()),
                        virtualization_type: i.attributes.virtualization_type,
                        creation_date: i.attributes.creation_date,
                    })
                    .collect())
            }
            Finder::Ec2 {
                endpoint,
                credentials,
            } => {
                let ec2 = Ec2::new(&q.region, endpoint.as_deref(), credentials.clone());
                let query = ImageQuery {
                    owners: q.owners.clone(),
                    names: vec![q.name.clone()],
                    filters: vec![("state".into(), vec!["available".into()])],
                    ..ImageQuery::default()
                };
                let images =
                    block_on(ec2.describe_images(&query)).map_err(|e| failed(e.to_string()))?;
                // EC2 answers in no particular order: oldest first, so "the first" is stable.
                let mut found: Vec<Candidate> = images
                    .into_iter()
                    .map(|i| Candidate {
                        id: Some(i.id),
                        virtualization_type: i.virtualization_type,
                        creation_date: i.creation_date,
                    })
                    .collect();
                found.sort_by(|a, b| a.creation_date.cmp(&b.creation_date));
                Ok(found)
            }
        }
    }

    fn via(&self) -> &'static str {
        match self {
            Finder::Clouddriver(_) => "clouddriver",
            Finder::Ec2 { .. } => "ec2",
        }
    }
}

/// Runs an async call from synchronous code: on kiln's runtime when there is one (from a blocking
/// thread, or from a worker via `block_in_place`, which never stalls the other tasks), else (a
/// CLI, a single-threaded runtime) on a small runtime of its own on a scoped thread.
fn block_on<F>(f: F) -> F::Output
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| handle.block_on(f))
        }
        _ => std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a tokio runtime")
                        .block_on(f)
                })
                .join()
                .expect("the lookup thread")
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(yaml: &str) -> Settings {
        crate::config::load_str(yaml, &|_| None).unwrap().settings
    }

    #[test]
    fn clouddriver_when_configured_else_ec2_itself() {
        let with = settings("services:\n  clouddriver:\n    base-url: http://127.0.0.1:7002/\n");
        assert_eq!(Finder::of(&with).via(), "clouddriver");
        assert_eq!(Finder::of(&settings("")).via(), "ec2");
        let blank = settings("services:\n  clouddriver:\n    baseUrl: ' '\n");
        assert_eq!(Finder::of(&blank).via(), "ec2");
    }

    #[test]
    fn ec2_lookups_run_without_a_runtime_of_their_own() {
        // A CLI has no runtime: the scoped one answers (here: nothing listens on the port).
        let finder = Finder::Ec2 {
            endpoint: Some("http://127.0.0.1:9".into()),
            credentials: CredentialSource::Explicit {
                access_key: "AKIAKILNTEST".into(),
                secret_key: "x".into(),
            },
        };
        let q = NameQuery {
            name: "x-*".into(),
            region: "us-east-1".into(),
            account: None,
            owners: vec!["self".into()],
        };
        let e = finder.find(&q).unwrap_err();
        assert!(
            e.to_string()
                .contains("looking up the source image 'x-*' failed"),
            "{e}"
        );
    }
}
