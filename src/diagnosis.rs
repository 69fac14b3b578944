//! Why did a bake fail? A table of known failure signatures in Packer's and the cloud's output,
//! each turned into a [`Diagnosis`]: a stable code, a one-line summary and a hint saying what to
//! fix. Data-driven: adding a signature is adding a row to [`SIGNATURES`]. No I/O.
//!
//! The errors Packer reported (a build's error) are searched first, then the end of the log (a
//! provisioner's output, where apt and dpkg speak); the first row that matches wins, so rows go
//! from the most specific to the most general.

use crate::bake::Diagnosis;

/// One known failure.
struct Signature {
    code: &'static str,
    /// Any of these (case-insensitive) in the text…
    any: &'static [&'static str],
    /// …and, when not empty, also any of these.
    with: &'static [&'static str],
    summary: &'static str,
    hint: &'static str,
    /// A detail worth naming (the missing action, the package), appended to the summary.
    detail: Option<fn(&str) -> Option<String>>,
}

const SIGNATURES: &[Signature] = &[
    Signature {
        code: "kms_access",
        any: &[
            "KMSKeyNotAccessible",
            "InvalidKMSKey",
            "KMS.NotFoundException",
            "KMS.DisabledException",
            "kms:",
            "KMS key",
        ],
        with: &[
            "not authorized",
            "AccessDenied",
            "UnauthorizedOperation",
            "NotAccessible",
            "Invalid",
            "NotFound",
            "Disabled",
            "does not exist",
        ],
        summary: "The AWS KMS key for the image's encryption cannot be used.",
        hint: "check that kms_key_id / region_kms_key_ids name an enabled key in each region, and that the key policy lets kiln's role use it (kms:CreateGrant, kms:Decrypt, kms:GenerateDataKey*, kms:ReEncrypt*, kms:DescribeKey)",
        detail: None,
    },
    Signature {
        code: "unauthorized_operation",
        any: &[
            "UnauthorizedOperation",
            "AccessDenied",
            "is not authorized to perform",
        ],
        with: &[],
        summary: "AWS refused an action to kiln's credentials.",
        hint: "grant the action to the role or user kiln bakes with (see the README's IAM policy); an encoded authorization message can be read with `aws sts decode-authorization-message --encoded-message …`",
        detail: Some(missing_action),
    },
    Signature {
        code: "ami_not_found",
        any: &[
            "InvalidAMIID.NotFound",
            "InvalidAMIID.Malformed",
            "InvalidAMIID.Unavailable",
            "No AMI was found matching filters",
        ],
        with: &[],
        summary: "The source image does not exist in this region, or is not visible to kiln's account.",
        hint: "check the base image's sourceAmi for the region (AMIs are per region), its owner and whether it is shared with the account kiln bakes in",
        detail: None,
    },
    Signature {
        code: "vpc_subnet",
        any: &[
            "InvalidSubnetID.NotFound",
            "InvalidSubnet",
            "InvalidVpcID.NotFound",
            "VPCIdNotSpecified",
            "VPCResourceNotSpecified",
            "No default VPC",
            "InvalidGroup.NotFound",
            "InvalidSecurityGroupID.NotFound",
        ],
        with: &[],
        summary: "The VPC, subnet or security group the builder was told to use does not exist (or does not belong together).",
        hint: "check aws.bakeryDefaults.awsSubnetId and awsVpcId (and any security group) for this region: they must exist there, the subnet must be in the VPC, and an account without a default VPC needs both set",
        detail: None,
    },
    Signature {
        code: "ssh_timeout",
        any: &["Timeout waiting for SSH", "timeout waiting for WinRM"],
        with: &[],
        summary: "The builder instance started but kiln's Packer could not reach it over SSH in time.",
        hint: "check the route from kiln to the instance: a public IP (awsAssociatePublicIpAddress) or a private subnet kiln can reach, a security group allowing port 22 from kiln, the sshUserName of the base image, and that the image boots",
        detail: None,
    },
    Signature {
        code: "spot_capacity",
        any: &[
            "SpotMaxPriceTooLow",
            "price-too-low",
            "MaxSpotInstanceCountExceeded",
            "InsufficientSpotCapacity",
            "capacity-not-available",
            "capacity-oversubscribed",
            "Error waiting for spot request",
            "spot request",
        ],
        with: &[],
        summary: "No spot instance could be had at the price or capacity asked for.",
        hint: "raise spotPrice (or use spotPriceAutoProduct), try another instance type or availability zone, or bake on demand by leaving spotPrice unset",
        detail: None,
    },
    Signature {
        code: "instance_capacity",
        any: &[
            "InstanceLimitExceeded",
            "VcpuLimitExceeded",
            "InsufficientInstanceCapacity",
            "Insufficient capacity",
        ],
        with: &[],
        summary: "AWS could not start the builder instance: the account's instance limit is reached or the zone has no capacity for that type.",
        hint: "lower kiln.jobs.maxConcurrent, ask AWS for a higher limit (Service Quotas), or use another instance type, zone or region",
        detail: None,
    },
    Signature {
        code: "package_not_found",
        any: &[
            "Unable to locate package",
            "has no installation candidate",
            "No match for argument",
            "No package ",
        ],
        with: &[],
        summary: "The package manager on the builder could not find a package.",
        hint: "check the package name and version, and that the repository kiln configures (debianRepository / yumRepository) holds it for this base OS and is reachable from the builder",
        detail: Some(missing_package),
    },
    Signature {
        code: "package_install_failed",
        any: &[
            "dpkg: error processing",
            "Sub-process /usr/bin/dpkg returned an error code",
            "dpkg was interrupted",
            "unmet dependencies",
            "E: Broken packages",
            "Requires: ",
            "Error: Package: ",
        ],
        with: &[],
        summary: "The package manager failed while installing (a maintainer script, a conflict or a missing dependency).",
        hint: "read the dpkg/yum lines above in the log; fix the package's dependencies or install scripts, or bake on a base OS the package is built for",
        detail: None,
    },
    Signature {
        code: "disk_full",
        any: &["No space left on device", "ENOSPC", "disk is full"],
        with: &[],
        summary: "A disk filled up: the builder's root volume, or kiln's data dir.",
        hint: "give the builder a bigger root volume (or the qemu image more room), or free space in kiln's data dir (`kiln gc`, kiln.retention)",
        detail: None,
    },
];

/// How much of the log's end is searched.
const LOG_TAIL_BYTES: usize = 64 * 1024;

/// The diagnosis of a failed bake from the errors Packer reported and its log, if a known
/// signature is in them.
pub fn diagnose(errors: &[String], log: &str) -> Option<Diagnosis> {
    let tail = tail(log, LOG_TAIL_BYTES);
    errors
        .iter()
        .find_map(|e| matching(e))
        .or_else(|| matching(tail))
}

fn matching(text: &str) -> Option<Diagnosis> {
    let lower = text.to_ascii_lowercase();
    let has = |needles: &[&str]| {
        needles
            .iter()
            .any(|n| lower.contains(&n.to_ascii_lowercase()))
    };
    let s = SIGNATURES
        .iter()
        .find(|s| has(s.any) && (s.with.is_empty() || has(s.with)))?;
    let summary = match s.detail.and_then(|d| d(text)) {
        Some(detail) => format!("{} ({detail})", s.summary),
        None => s.summary.to_string(),
    };
    Some(Diagnosis {
        code: s.code.to_string(),
        summary,
        hint: s.hint.to_string(),
    })
}

/// The last `max` bytes of `text`, from a character boundary.
fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// The word after `marker`, trimmed of quotes and punctuation; at most 128 characters of
/// `[A-Za-z0-9:._+*/-]` (a hand-written scan: the one place kiln would need a regex).
fn word_after(text: &str, marker: &str) -> Option<String> {
    let at = text.find(marker)? + marker.len();
    let word: String = text[at..]
        .trim_start_matches([' ', '\'', '"'])
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || ":._+*/-".contains(*c))
        .take(128)
        .collect();
    let word = word.trim_end_matches(['.', ':']).to_string();
    (!word.is_empty()).then_some(word)
}

/// AWS names the action in newer messages ("… is not authorized to perform: ec2:RunInstances
/// on resource …"); the older encoded message does not say it in clear text.
fn missing_action(text: &str) -> Option<String> {
    word_after(text, "not authorized to perform: ").map(|a| format!("missing action: {a}"))
}

fn missing_package(text: &str) -> Option<String> {
    word_after(text, "Unable to locate package ")
        .or_else(|| word_after(text, "No match for argument: "))
        .or_else(|| word_after(text, "No package "))
        .or_else(|| word_after(text, "Package "))
        .map(|p| format!("package: {p}"))
}

#[cfg(test)]
mod tests;
