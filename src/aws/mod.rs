//! kiln's own calls to AWS, for what must be known before Packer runs (a source image looked
//! up by name) and for builders that talk to AWS directly.
//!
//! One small module over well-kept crates rather than the SDK's EC2 client, which takes 5.5 min
//! and 8 GB to build: [`aws_config`] for the default credential chain (environment, shared
//! config and profile, web identity, IMDSv2), [`aws_sigv4`] for signing, `ureq` for HTTP and
//! `roxmltree` for EC2's XML. Only the few EC2 Query actions kiln needs are written out
//! ([`ec2`]).
//!
//! Invariants:
//! - Credentials live in memory only; no error, log line or `Debug` output shows a secret.
//! - Every call has a deadline; throttling and server errors are retried with backoff, a
//!   client error is not.

mod credentials;
pub mod ebs;
pub mod ec2;
pub mod ec2_images;

pub use credentials::CredentialSource;

/// Why a call to AWS failed. Messages name the action and the endpoint, never a credential.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error("no AWS credentials: {0}")]
    Credentials(String),
    #[error("{action} at {endpoint}: {code}: {message}")]
    Api {
        action: String,
        endpoint: String,
        code: String,
        message: String,
    },
    #[error("{action} at {endpoint}: {detail}")]
    Transport {
        action: String,
        endpoint: String,
        detail: String,
    },
    #[error("{action} at {endpoint}: unreadable answer: {detail}")]
    Decode {
        action: String,
        endpoint: String,
        detail: String,
    },
}
