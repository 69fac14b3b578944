//! Where kiln's AWS credentials come from: the bakery's explicit keys, or the default chain.

use super::AwsError;
use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;

/// The bakery's keys (`aws.bakeryDefaults.awsAccessKey`/`awsSecretKey`), or the default chain
/// when it has none — the same choice Packer makes for a bake.
#[derive(Clone)]
pub enum CredentialSource {
    Explicit {
        access_key: String,
        secret_key: String,
    },
    DefaultChain,
}

impl std::fmt::Debug for CredentialSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CredentialSource::Explicit { access_key, .. } => f
                .debug_struct("Explicit")
                .field("access_key", access_key)
                .field("secret_key", &"******")
                .finish(),
            CredentialSource::DefaultChain => f.write_str("DefaultChain"),
        }
    }
}

impl CredentialSource {
    /// The bakery's AWS settings' choice: explicit keys when both are set, else the chain.
    pub fn of(settings: &crate::config::Settings) -> CredentialSource {
        let d = &settings.aws.bakery_defaults;
        match (&d.aws_access_key, &d.aws_secret_key) {
            (Some(access), Some(secret)) if !access.trim().is_empty() && !secret.is_empty() => {
                CredentialSource::Explicit {
                    access_key: access.trim().to_string(),
                    secret_key: secret.expose().trim().to_string(),
                }
            }
            _ => CredentialSource::DefaultChain,
        }
    }

    /// Credentials to sign one call with, for `region` (the chain's STS and IMDS calls need it).
    pub(super) async fn resolve(&self, region: &str) -> Result<Credentials, AwsError> {
        match self {
            CredentialSource::Explicit {
                access_key,
                secret_key,
            } => Ok(Credentials::new(
                access_key,
                secret_key,
                None,
                None,
                "kiln-bakery-defaults",
            )),
            CredentialSource::DefaultChain => {
                let config = aws_config::defaults(BehaviorVersion::latest())
                    .region(aws_config::Region::new(region.to_string()))
                    .load()
                    .await;
                let provider = config.credentials_provider().ok_or_else(|| {
                    AwsError::Credentials("the default credential chain is empty".into())
                })?;
                provider
                    .provide_credentials()
                    .await
                    .map_err(|e| AwsError::Credentials(crate::telemetry::Chain(&e).to_string()))
            }
        }
    }
}
