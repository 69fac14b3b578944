//! The EBS direct APIs (snapshot blocks in and out), through `aws-sdk-ebs`: small beside the rest
//! of the SDK, and its signing of streamed block bodies and its retry policy (backoff on
//! throttling and server errors) are what a hand-written client would have to get right.
//!
//! Every block is checked: a fetched block's SHA-256 against the checksum EBS gives, an uploaded
//! block carries its own. No credential reaches an error or a log line.

use super::{AwsError, CredentialSource};
use aws_sdk_ebs::config::retry::RetryConfig;
use aws_sdk_ebs::config::timeout::TimeoutConfig;
use aws_sdk_ebs::primitives::ByteStream;
use aws_sdk_ebs::types::ChecksumAlgorithm;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// The EBS direct APIs' block size (512 KiB).
pub const BLOCK_SIZE: usize = 524_288;
/// Tries of one call (the SDK's standard retry mode: exponential backoff with jitter).
const TRIES: u32 = 6;
/// Deadline of one call's attempt: a 512 KiB block on a slow link.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);

/// A snapshot's blocks as ListSnapshotBlocks gives them.
#[derive(Debug, Clone, Default)]
pub struct BlockList {
    pub volume_size_gib: u64,
    pub block_size: usize,
    /// `(block index, block token)`, in index order.
    pub blocks: Vec<(u64, String)>,
}

/// A new snapshot.
#[derive(Debug, Clone)]
pub struct Started {
    pub snapshot_id: String,
    pub block_size: usize,
}

/// The EBS direct APIs in one region.
#[derive(Debug, Clone)]
pub struct Ebs {
    client: aws_sdk_ebs::Client,
    endpoint: String,
}

impl Ebs {
    /// EBS in `region`, at `endpoint` (`aws.bakeryDefaults.awsEbsEndpoint`), else AWS's own.
    pub async fn new(
        region: &str,
        endpoint: Option<&str>,
        credentials: &CredentialSource,
    ) -> Result<Ebs, AwsError> {
        let endpoint = endpoint
            .map(|e| e.trim().trim_end_matches('/').to_string())
            .filter(|e| !e.is_empty());
        let shown = endpoint
            .clone()
            .unwrap_or_else(|| format!("https://ebs.{region}.amazonaws.com"));
        let mut config = match credentials {
            CredentialSource::Explicit { .. } => aws_sdk_ebs::config::Builder::new()
                .behavior_version(aws_sdk_ebs::config::BehaviorVersion::latest())
                .credentials_provider(credentials.resolve(region).await?),
            CredentialSource::DefaultChain => {
                let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .region(aws_config::Region::new(region.to_string()))
                    .load()
                    .await;
                aws_sdk_ebs::config::Builder::from(&shared)
            }
        }
        .region(aws_sdk_ebs::config::Region::new(region.to_string()))
        .retry_config(RetryConfig::standard().with_max_attempts(TRIES))
        .timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .connect_timeout(Duration::from_secs(10))
                .build(),
        );
        if let Some(e) = &endpoint {
            config = config.endpoint_url(e);
        }
        Ok(Ebs {
            client: aws_sdk_ebs::Client::from_conf(config.build()),
            endpoint: shown,
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn error(&self, action: &str, e: impl std::error::Error + 'static) -> AwsError {
        // The SDK's error chain names the service's code and message, never a credential.
        AwsError::Transport {
            action: action.to_string(),
            endpoint: self.endpoint.clone(),
            detail: crate::telemetry::Chain(&e).to_string(),
        }
    }

    fn decode(&self, action: &str, detail: String) -> AwsError {
        AwsError::Decode {
            action: action.to_string(),
            endpoint: self.endpoint.clone(),
            detail,
        }
    }

    /// ListSnapshotBlocks, every page: the blocks the snapshot holds (its parents' included).
    pub async fn list_blocks(&self, snapshot_id: &str) -> Result<BlockList, AwsError> {
        const ACTION: &str = "ListSnapshotBlocks";
        let mut out = BlockList::default();
        let mut next: Option<String> = None;
        loop {
            let page = self
                .client
                .list_snapshot_blocks()
                .snapshot_id(snapshot_id)
                .max_results(10_000)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| self.error(ACTION, e))?;
            out.volume_size_gib = page.volume_size().unwrap_or_default().max(0) as u64;
            out.block_size = page.block_size().unwrap_or_default().max(0) as usize;
            for b in page.blocks() {
                let (Some(index), Some(token)) = (b.block_index(), b.block_token()) else {
                    return Err(self.decode(ACTION, "a block without index or token".into()));
                };
                out.blocks.push((index.max(0) as u64, token.to_string()));
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_string()),
                _ => break,
            }
        }
        if out.block_size != BLOCK_SIZE {
            return Err(self.decode(
                ACTION,
                format!(
                    "block size {} (expected {BLOCK_SIZE}): not the EBS direct APIs kiln knows",
                    out.block_size
                ),
            ));
        }
        out.blocks.sort_unstable();
        out.blocks.dedup_by_key(|b| b.0);
        Ok(out)
    }

    /// GetSnapshotBlock: one block, its length and SHA-256 checked.
    pub async fn get_block(
        &self,
        snapshot_id: &str,
        index: u64,
        token: &str,
    ) -> Result<Vec<u8>, AwsError> {
        const ACTION: &str = "GetSnapshotBlock";
        let got = self
            .client
            .get_snapshot_block()
            .snapshot_id(snapshot_id)
            .block_index(block_index(index))
            .block_token(token)
            .send()
            .await
            .map_err(|e| self.error(ACTION, e))?;
        let checksum = got.checksum().map(str::to_string);
        let data = got
            .block_data
            .collect()
            .await
            .map_err(|e| self.error(ACTION, e))?
            .into_bytes()
            .to_vec();
        if data.len() != BLOCK_SIZE {
            return Err(self.decode(
                ACTION,
                format!("block {index} has {} bytes, not {BLOCK_SIZE}", data.len()),
            ));
        }
        match checksum {
            Some(want) if want == checksum_of(&data) => Ok(data),
            Some(_) => Err(self.decode(
                ACTION,
                format!("block {index}: its SHA-256 is not the checksum EBS gave"),
            )),
            None => Err(self.decode(ACTION, format!("block {index} came without a checksum"))),
        }
    }

    /// StartSnapshot: a child of `parent` (its blocks are the parent's until written), under a
    /// client token (a retried start answers the same snapshot), abandoned by EBS after
    /// `timeout_minutes` without a block.
    pub async fn start(
        &self,
        volume_size_gib: u64,
        parent: &str,
        client_token: &str,
        timeout_minutes: u32,
        description: &str,
    ) -> Result<Started, AwsError> {
        const ACTION: &str = "StartSnapshot";
        let got = self
            .client
            .start_snapshot()
            .volume_size(volume_size_gib as i64)
            .parent_snapshot_id(parent)
            .client_token(client_token)
            .timeout(timeout_minutes as i32)
            .description(description)
            .send()
            .await
            .map_err(|e| self.error(ACTION, e))?;
        let snapshot_id = got
            .snapshot_id()
            .ok_or_else(|| self.decode(ACTION, "no SnapshotId".into()))?
            .to_string();
        Ok(Started {
            snapshot_id,
            block_size: got.block_size().unwrap_or_default().max(0) as usize,
        })
    }

    /// PutSnapshotBlock of one full block, with its SHA-256.
    pub async fn put_block(
        &self,
        snapshot_id: &str,
        index: u64,
        data: Vec<u8>,
    ) -> Result<(), AwsError> {
        let checksum = checksum_of(&data);
        let length = data.len() as i32;
        self.client
            .put_snapshot_block()
            .snapshot_id(snapshot_id)
            .block_index(block_index(index))
            .data_length(length)
            .checksum(checksum)
            .checksum_algorithm(ChecksumAlgorithm::ChecksumAlgorithmSha256)
            .block_data(ByteStream::from(data))
            .send()
            .await
            .map_err(|e| self.error("PutSnapshotBlock", e))?;
        Ok(())
    }

    /// CompleteSnapshot; the status EBS answers (`completed`, `pending`, `error`).
    pub async fn complete(&self, snapshot_id: &str, changed: u64) -> Result<String, AwsError> {
        let got = self
            .client
            .complete_snapshot()
            .snapshot_id(snapshot_id)
            .changed_blocks_count(changed as i32)
            .send()
            .await
            .map_err(|e| self.error("CompleteSnapshot", e))?;
        Ok(got
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default())
    }
}

fn block_index(index: u64) -> i32 {
    i32::try_from(index).unwrap_or(i32::MAX)
}

/// The checksum EBS speaks: base64 of the SHA-256.
pub fn checksum_of(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_are_base64_sha256() {
        // sha256("") = e3b0c442…; its base64 is the well-known 47DEQpj8… string.
        assert_eq!(
            checksum_of(b""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }
}
