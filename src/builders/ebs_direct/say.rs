//! The builder's output: Packer's machine-readable lines (`<unix seconds>,<target>,<type>,...`,
//! commas in data written as `%!(PACKER_COMMA)`, newlines as `\n`), so kiln's follower and
//! parser (`packer::output`) read this builder as they read Packer.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The build name on artifact lines: the AWS one, so a bake's artifacts read like Packer's.
pub const BUILD: &str = "amazon-ebs";
/// The artifact's builder id.
pub const BUILDER_ID: &str = "kiln.ebs-direct";

fn escape(text: &str) -> String {
    text.replace(',', "%!(PACKER_COMMA)")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

fn line(target: &str, kind: &str, data: &[&str]) -> String {
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let data: Vec<String> = data.iter().map(|d| escape(d)).collect();
    format!("{ts},{target},{kind},{}\n", data.join(","))
}

fn emit(text: String) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// A step headline (`==> amazon-ebs: …`).
pub fn say(text: &str) {
    emit(line("", "ui", &["say", &format!("==> {BUILD}: {text}")]));
}

/// A detail line (`    amazon-ebs: …`): the install script's output.
pub fn message(text: &str) {
    emit(line(
        "",
        "ui",
        &["message", &format!("    {BUILD}: {text}")],
    ));
}

/// The build failed: the UI error and the build's error line, as Packer prints them.
pub fn error(text: &str) {
    emit(line(
        "",
        "ui",
        &["error", &format!("Build '{BUILD}' errored: {text}")],
    ));
    emit(line(BUILD, "error", &[text]));
    emit(line("", "error-count", &["1"]));
}

/// How long a phase took.
pub fn timing(phase: &str, took: Duration) {
    say(&format!(
        "ebs-direct: phase {phase} took {:.2}s",
        took.as_secs_f64()
    ));
}

/// The phases of kiln's timeline (`timeline` in the bake view): the line that starts each one,
/// as [`start`] prints it. Phase names are part of kiln's API.
pub const PHASE_MARKERS: crate::builders::packer::timeline::Markers = &[
    ("fetch", "ebs-direct: start fetch"),
    ("copy", "ebs-direct: start copy"),
    ("mount", "ebs-direct: start mount"),
    ("install", "ebs-direct: start install"),
    ("unmount", "ebs-direct: start unmount"),
    ("diff", "ebs-direct: start diff"),
    ("upload", "ebs-direct: start upload"),
    ("complete", "ebs-direct: start complete"),
    ("register", "ebs-direct: start register"),
    ("share", "ebs-direct: start share"),
    ("copy_regions", "ebs-direct: start copy_regions"),
    ("", "ebs-direct: timings"),
];

/// A phase starts (the timeline's marker).
pub fn start(phase: &str) {
    say(&format!("ebs-direct: start {phase}"));
}

/// The artifact: `region:ami-…` ids, comma-separated as Packer's amazon-ebs does.
pub fn artifact(ids: &[(String, String)]) {
    let id: Vec<String> = ids.iter().map(|(r, a)| format!("{r}:{a}")).collect();
    let shown: Vec<String> = ids.iter().map(|(r, a)| format!("{r}: {a}")).collect();
    emit(line(BUILD, "artifact-count", &["1"]));
    emit(line(BUILD, "artifact", &["0", "builder-id", BUILDER_ID]));
    emit(line(BUILD, "artifact", &["0", "id", &id.join(",")]));
    emit(line(
        BUILD,
        "artifact",
        &[
            "0",
            "string",
            &format!("AMIs were created:\n{}\n", shown.join("\n")),
        ],
    ));
    emit(line(BUILD, "artifact", &["0", "end"]));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::packer::output::{Outcome, PackerEvent, parse_line};

    #[test]
    fn every_phase_has_a_marker_the_timeline_reads() {
        use crate::builders::packer::timeline::Timeline;
        let mut t = Timeline::new(PHASE_MARKERS);
        for (i, (phase, _)) in PHASE_MARKERS
            .iter()
            .enumerate()
            .filter(|(_, (p, _))| !p.is_empty())
        {
            let l = line(
                "",
                "ui",
                &["say", &format!("==> {BUILD}: ebs-direct: start {phase}")],
            );
            let Some(PackerEvent::Ui { text, .. }) = parse_line(&l) else {
                panic!("{l}")
            };
            t.line(1000 * i as i64, &text);
        }
        let seen: Vec<&str> = t.phases().iter().map(|p| p.phase.as_str()).collect();
        let want: Vec<&str> = PHASE_MARKERS
            .iter()
            .map(|(p, _)| *p)
            .filter(|p| !p.is_empty())
            .collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn lines_read_back_through_kilns_parser() {
        let l = line(
            BUILD,
            "artifact",
            &["0", "id", "us-east-1:ami-1,eu-west-1:ami-2"],
        );
        let mut outcome = Outcome::default();
        outcome.feed(&parse_line(&l).unwrap());
        assert_eq!(
            outcome.artifacts,
            vec![
                ("us-east-1".to_string(), "ami-1".to_string()),
                ("eu-west-1".to_string(), "ami-2".to_string())
            ]
        );
        let l = line("", "ui", &["say", "==> amazon-ebs: a, b\nc"]);
        match parse_line(&l).unwrap() {
            PackerEvent::Ui { text, .. } => assert_eq!(text, "==> amazon-ebs: a, b\nc"),
            other => panic!("{other:?}"),
        }
    }
}
