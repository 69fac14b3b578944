//! Per-phase timings from a bake's output. The builder's own UI lines (`==> amazon-ebs:
//! Launching a source AWS instance...`) and kiln's notes (`kiln: boot check: …`) mark where a
//! phase starts; the next phase, the build's end or the bake's settling ends it. A table per
//! builder says which line starts which phase, so a new marker is a new row; each provider names
//! its table (`Provider::phase_markers`).
//!
//! Phase names are part of kiln's API: for AWS launch, wait_ssh, provision, stop, create_image,
//! copy, share; for qemu boot, provision, shutdown, convert, boot_check; for GCE launch,
//! wait_ssh, provision, create_image; for Azure launch, wait_ssh, provision, stop,
//! create_image; for Docker launch, provision, commit, push; for AWS bakes
//! by the ebs-direct builder (its own table, `builders::ebs_direct::PHASE_MARKERS`) fetch, copy,
//! mount, install, unmount, diff, upload, complete, register, share, copy_regions.

use crate::bake::PhaseTiming;

/// `(phase, text the line starts with after the builder's "==> name: " prefix)`. An empty phase
/// ends the running one without starting another.
pub type Markers = &'static [(&'static str, &'static str)];

/// Packer's amazon-ebs and amazon-chroot builders.
pub const AMAZON: Markers = &[
    ("launch", "Launching a source AWS instance"),
    ("launch", "Launching a spot AWS instance"),
    ("launch", "Requesting spot instance"),
    ("wait_ssh", "Waiting for SSH to become available"),
    ("wait_ssh", "Waiting for WinRM to become available"),
    ("provision", "Provisioning with"),
    ("provision", "Running local shell script"),
    ("provision", "Uploading "),
    ("stop", "Stopping the source instance"),
    ("create_image", "Creating AMI "),
    ("create_image", "Creating the AMI"),
    ("copy", "Copying/Encrypting AMI"),
    ("copy", "Copying AMI"),
    ("share", "Modifying attributes on AMI"),
    ("", "Terminating the source AWS instance"),
    ("", "Cleaning up any extra volumes"),
];

/// Packer's qemu builder, and kiln's boot check after it.
pub const QEMU: Markers = &[
    ("boot", "Starting VM"),
    ("provision", "Provisioning with"),
    ("provision", "Uploading "),
    ("shutdown", "Gracefully halting virtual machine"),
    ("shutdown", "Halting the virtual machine"),
    ("convert", "Converting hard drive"),
    ("", "Build 'qemu' finished"),
    ("", "Build 'qemu' errored"),
    ("boot_check", "kiln: boot check"),
    ("", "kiln: boot check passed"),
    ("", "kiln: boot it with"),
];

/// Packer's googlecompute builder.
pub const GOOGLECOMPUTE: Markers = &[
    ("launch", "Creating instance"),
    ("wait_ssh", "Waiting for SSH to become available"),
    ("provision", "Provisioning with"),
    ("provision", "Uploading "),
    ("", "Deleting instance"),
    ("create_image", "Creating image"),
];

/// Packer's azure-arm builder (its step messages in 1.6.6).
pub const AZURE_ARM: Markers = &[
    ("launch", "Creating resource group"),
    ("launch", "Deploying deployment template"),
    ("wait_ssh", "Waiting for SSH to become available"),
    ("wait_ssh", "Waiting for WinRM to become available"),
    ("provision", "Provisioning with"),
    ("provision", "Uploading "),
    ("stop", "Powering off machine"),
    ("create_image", "Capturing image"),
    ("", "Deleting individual resources"),
    ("", "Removing the created Deployment object"),
];

/// Packer's docker builder with the docker-tag and docker-push post-processors.
pub const DOCKER: Markers = &[
    ("launch", "Pulling Docker image"),
    ("launch", "Starting docker container"),
    ("provision", "Provisioning with"),
    ("provision", "Uploading "),
    ("commit", "Committing the container"),
    ("push", "Pushing: "),
    ("push", "Pushing "),
];

/// Lines that end whatever phase runs, for every provider.
const ENDS: &[&str] = &[
    "Builds finished",
    "Some builds didn't complete",
    "kiln: bake ",
];

/// The phases seen so far.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    markers: Markers,
    phases: Vec<PhaseTiming>,
}

impl Timeline {
    /// A timeline of the phases `markers` name (a provider without a table has none).
    pub fn new(markers: Markers) -> Timeline {
        Timeline {
            markers,
            phases: Vec::new(),
        }
    }

    /// Feeds one line of human text (a UI line or kiln's note) seen at `at_ms`. Says whether the
    /// timeline changed.
    pub fn line(&mut self, at_ms: i64, text: &str) -> bool {
        let text = text.trim_start_matches("\\n").trim_start();
        // "==> amazon-ebs: Launching…" → "Launching…"; kiln's notes have no builder prefix.
        let said = text
            .strip_prefix("==> ")
            .and_then(|t| t.split_once(": ").map(|(_, rest)| rest))
            .unwrap_or(text);
        if ENDS.iter().any(|e| said.starts_with(e)) {
            return self.end(at_ms);
        }
        // The most specific marker: "kiln: boot check passed" before "kiln: boot check".
        let Some((phase, _)) = self
            .markers
            .iter()
            .filter(|(_, m)| said.starts_with(m))
            .max_by_key(|(_, m)| m.len())
        else {
            return false;
        };
        if phase.is_empty() {
            return self.end(at_ms);
        }
        // A phase is timed once: its first start to its end (several provisioners are one).
        if self.phases.iter().any(|p| p.phase == *phase) {
            return false;
        }
        self.end(at_ms);
        self.phases.push(PhaseTiming {
            phase: (*phase).to_string(),
            started_ms: at_ms,
            ended_ms: None,
            seconds: None,
        });
        true
    }

    /// Ends the running phase at `at_ms`, if one runs.
    pub fn end(&mut self, at_ms: i64) -> bool {
        let Some(open) = self.phases.last_mut().filter(|p| p.ended_ms.is_none()) else {
            return false;
        };
        let ended = at_ms.max(open.started_ms);
        open.ended_ms = Some(ended);
        open.seconds = Some((ended - open.started_ms) as f64 / 1000.0);
        true
    }

    pub fn phases(&self) -> &[PhaseTiming] {
        &self.phases
    }
}

/// When a line was printed, for a line read at `now_ms`: the time it arrived (ms precision)
/// while kiln keeps up with Packer; Packer's own timestamp (seconds) when the line is older than
/// 2 s — kiln catching up after a restart, which would squeeze the phases together.
pub fn seen_at(packer_ms: Option<i64>, now_ms: i64) -> i64 {
    match packer_ms {
        Some(p) if (now_ms - p).abs() > 2_000 => p,
        _ => now_ms,
    }
}

/// The time of a machine-readable line (`<unix seconds>,target,type,…`) in ms.
pub fn line_time_ms(raw: &str) -> Option<i64> {
    let (secs, _) = raw.split_once(',')?;
    secs.parse::<i64>().ok()?.checked_mul(1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::packer::output::{human_text, parse_line};

    fn from_fixture(markers: Markers, text: &str) -> Vec<PhaseTiming> {
        let mut t = Timeline::new(markers);
        for raw in text.lines() {
            if let (Some(at), Some(text)) = (
                line_time_ms(raw),
                parse_line(raw).as_ref().and_then(human_text),
            ) {
                t.line(at, &text);
            }
        }
        t.phases().to_vec()
    }

    fn names(p: &[PhaseTiming]) -> Vec<&str> {
        p.iter().map(|p| p.phase.as_str()).collect()
    }

    #[test]
    fn a_real_ssh_bake_has_launch_wait_ssh_provision_stop_and_create_image() {
        let p = from_fixture(
            AMAZON,
            include_str!("../../../tests/fixtures/output/ebs-ssh.log"),
        );
        assert_eq!(
            names(&p),
            ["launch", "wait_ssh", "provision", "stop", "create_image"]
        );
        assert!(
            p.iter()
                .all(|p| p.ended_ms.is_some() && p.seconds.is_some()),
            "{p:?}"
        );
        assert_eq!(p[0].started_ms, 1_795_557_419_000);
        assert!(p.windows(2).all(|w| w[0].ended_ms == Some(w[1].started_ms)));
    }

    #[test]
    fn a_multi_region_bake_copies_and_shares() {
        let p = from_fixture(
            AMAZON,
            include_str!("../../../tests/fixtures/output/ebs-multi.log"),
        );
        assert_eq!(
            names(&p),
            [
                "launch",
                "provision",
                "stop",
                "create_image",
                "copy",
                "share"
            ]
        );
        assert!(p.iter().all(|p| p.seconds.is_some_and(|s| s >= 0.0)));
    }

    #[test]
    fn a_failed_bake_ends_its_running_phase() {
        let p = from_fixture(
            AMAZON,
            include_str!("../../../tests/fixtures/output/ebs-ssh-install-fails.log"),
        );
        assert_eq!(names(&p), ["launch", "wait_ssh", "provision"]);
        assert!(p[2].ended_ms.is_some());
    }

    #[test]
    fn qemu_phases_come_from_packer_and_from_kiln_notes() {
        let mut t = Timeline::new(QEMU);
        assert!(t.line(1_000, "==> qemu: Starting VM, booting disk image"));
        assert!(!t.line(1_500, "==> qemu: Waiting for SSH to become available..."));
        assert!(t.line(4_000, "==> qemu: Provisioning with shell script: /x.sh"));
        assert!(!t.line(5_000, "==> qemu: Provisioning with shell script: /y.sh"));
        assert!(t.line(9_000, "==> qemu: Gracefully halting virtual machine..."));
        assert!(t.line(11_000, "==> qemu: Converting hard drive..."));
        assert!(t.line(12_000, "Build 'qemu' finished after 11 seconds."));
        assert!(t.line(12_500, "kiln: boot check: booting the image"));
        assert!(t.line(20_000, "kiln: boot check passed in 7.5s"));
        let p = t.phases();
        assert_eq!(
            names(p),
            ["boot", "provision", "shutdown", "convert", "boot_check"]
        );
        assert_eq!(p[1].seconds, Some(5.0));
        assert_eq!(p[4].seconds, Some(7.5));
    }

    /// azure-arm's step messages as Packer 1.6.6 prints them (its `step_*.go` wording).
    #[test]
    fn azure_phases_come_from_azure_arms_steps() {
        let mut t = Timeline::new(AZURE_ARM);
        for (at, line) in [
            (1_000, "==> azure-arm: Creating resource group ..."),
            (2_000, "==> azure-arm: Validating deployment template ..."),
            (3_000, "==> azure-arm: Deploying deployment template ..."),
            (
                60_000,
                "==> azure-arm: Waiting for SSH to become available...",
            ),
            (
                90_000,
                "==> azure-arm: Provisioning with shell script: /tmp/x.sh",
            ),
            (200_000, "==> azure-arm: Powering off machine ..."),
            (230_000, "==> azure-arm: Capturing image ..."),
            (300_000, "==> azure-arm: Deleting individual resources ..."),
        ] {
            t.line(at, line);
        }
        let p = t.phases();
        assert_eq!(
            names(p),
            ["launch", "wait_ssh", "provision", "stop", "create_image"]
        );
        assert_eq!(
            p[0].seconds,
            Some(59.0),
            "launch runs on over the deployment"
        );
        assert_eq!(p[4].seconds, Some(70.0));
    }

    #[test]
    fn live_lines_are_timed_on_arrival_and_late_ones_by_packers_clock() {
        assert_eq!(
            seen_at(Some(10_000), 10_750),
            10_750,
            "kept up: ms precision"
        );
        assert_eq!(seen_at(Some(10_000), 11_900), 11_900);
        assert_eq!(
            seen_at(Some(10_000), 60_000),
            10_000,
            "catching up: Packer's time"
        );
        assert_eq!(
            seen_at(Some(60_000), 10_000),
            60_000,
            "a clock far off: Packer's"
        );
        assert_eq!(seen_at(None, 5), 5, "not machine-readable: arrival");
    }

    #[test]
    fn a_running_phase_has_no_end_and_an_unknown_provider_no_phases() {
        let mut t = Timeline::new(AMAZON);
        t.line(1_000, "==> amazon-ebs: Launching a source AWS instance...");
        assert_eq!(t.phases()[0].ended_ms, None);
        assert_eq!(t.phases()[0].seconds, None);
        let mut other = Timeline::new(&[]);
        assert!(!other.line(1, "==> googlecompute: Creating instance..."));
        assert!(other.phases().is_empty());
        // A clock that steps back never yields a negative duration.
        t.end(500);
        assert_eq!(t.phases()[0].seconds, Some(0.0));
    }
}
