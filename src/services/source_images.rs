//! Where kiln looks a source image up by name (the I/O half of the AWS provider's source image rules): the
//! [`SourceImages`] port, and [`Finder`], Rosco's way through Clouddriver when
//! `services.clouddriver.baseUrl` is set, else EC2 itself (`DescribeImages` by name with the
//! bake's credentials, region and `awsEc2Endpoint`).

use super::clouddriver::Clouddriver;
use crate::aws::CredentialSource;
use crate::aws::ec2::{Ec2, ImageQuery};
use crate::config::Settings;

/// One image a name lookup found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Candidate {
    /// The image's id in the bake's region (Clouddriver: `amis[region][0]`), if it has one.
    pub id: Option<String>,
    /// `hvm`, or `paravirtual`/`pv`.
    pub virtualization_type: Option<String>,
    /// ISO 8601 (compared as text, as Rosco compares Clouddriver's dates).
    pub creation_date: Option<String>,
}

/// What a name lookup is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameQuery {
    pub name: String,
    pub region: String,
    /// The Spinnaker account (Clouddriver): the request's `account_name`, else
    /// `aws.defaultAccount`.
    pub account: Option<String>,
    /// Who owns the images (EC2): the setting's `sourceAmiOwner`, else the bake's own account.
    pub owners: Vec<String>,
}

/// Finds images by name. Blocking: network I/O with retries, so call it on a blocking thread.
pub trait SourceImages {
    fn find(&self, query: &NameQuery) -> Result<Vec<Candidate>, LookupError>;
    /// Where lookups go (`clouddriver`, `ec2`), shown in the bake's view.
    fn via(&self) -> &'static str;
}

/// The lookup itself failed (unreachable, refused): not the request's fault.
#[derive(Debug, Clone, thiserror::Error)]
#[error("looking up the source image '{name}' failed: {detail}")]
pub struct LookupError {
    pub name: String,
    pub detail: String,
}

/// Used where no lookup may happen (checks of the configuration): every name is unknown.
pub struct NoLookup;

impl SourceImages for NoLookup {
    fn find(&self, _query: &NameQuery) -> Result<Vec<Candidate>, LookupError> {
        Ok(Vec::new())
    }
    fn via(&self) -> &'static str {
        "none"
    }
}

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
