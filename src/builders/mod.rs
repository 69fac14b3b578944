//! Builders other than Packer: programs kiln runs under the same supervisor as Packer
//! (`kiln __supervise`), printing Packer's machine-readable lines, so following, cancelling,
//! limits, logs and redaction treat them like a Packer run.
//!
//! - [`ebs_direct`]: an AMI written from kiln's own host through the EBS direct APIs.

pub mod ebs_direct;
