//! What `kiln bake` and `kiln bakes show` print, as plain functions over kiln's bake view (so
//! they are tested without a server): the status line, the timeline, the failure report and the
//! image a bake produced.

use serde_json::Value;

/// Text from the server (a build's output, an error) made safe for a terminal: control
/// characters but newline and tab — escape sequences that could rewrite the screen or the
/// terminal's title — become `�`.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c == '\n' || c == '\t' || !(c.is_control()) {
                c
            } else {
                '\u{fffd}'
            }
        })
        .collect()
}

/// `75_000` ms → `1m15s`.
pub fn elapsed(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, s) => format!("{h}h{m:02}m{s:02}s"),
    }
}

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// The phase of the timeline running now (the last one without an end).
pub fn current_step(view: &Value) -> Option<&str> {
    view["timeline"]
        .as_array()?
        .iter()
        .rev()
        .find(|p| p["ended_ms"].is_null())
        .and_then(|p| p["phase"].as_str())
}

/// `bake 1f2e… running · provision · 1m15s` (or `queued · #2 in queue`).
pub fn status_line(view: &Value, now_ms: i64) -> String {
    let id = view["id"].as_str().unwrap_or("?");
    let phase = view["phase"].as_str().unwrap_or("?");
    let since = view["created_ms"].as_i64().unwrap_or(now_ms);
    let mut line = format!("bake {id} {phase}");
    if let Some(pos) = view["queue_position"].as_u64() {
        line.push_str(&format!(" · #{pos} in queue"));
    }
    if let Some(step) = current_step(view) {
        line.push_str(&format!(" · {step}"));
    }
    line.push_str(&format!(" · {}", elapsed(now_ms - since)));
    line
}

/// The timeline, one phase a line: `  provision      1m02s`.
pub fn timeline(view: &Value) -> Vec<String> {
    view["timeline"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let phase = p["phase"].as_str().unwrap_or("?");
            match p["seconds"].as_f64() {
                Some(s) => format!("  {phase:<13} {}", elapsed((s * 1000.0) as i64)),
                None => format!("  {phase:<13} (running)"),
            }
        })
        .collect()
}

/// What a failed bake's report says: the error, then the diagnosis.
pub fn failure(view: &Value) -> Vec<String> {
    let mut out = vec![format!(
        "kiln: bake {} {}: {}",
        view["id"].as_str().unwrap_or("?"),
        view["phase"].as_str().unwrap_or("failed"),
        view["error"].as_str().unwrap_or("(no error recorded)")
    )];
    let d = &view["diagnosis"];
    if let (Some(code), Some(summary)) = (d["code"].as_str(), d["summary"].as_str()) {
        out.push(format!("diagnosis [{code}]: {summary}"));
        if let Some(hint) = d["hint"].as_str() {
            out.push(format!("hint: {hint}"));
        }
    }
    out
}

/// The image(s) a succeeded bake produced: a qemu image's path; else the image id, or
/// `region id` per line when the bake made several.
pub fn images(view: &Value) -> Vec<String> {
    if let Some(path) = view["image"]["image"].as_str() {
        return vec![path.to_string()];
    }
    let d = &view["details"];
    if let Some(all) = d["artifacts"].as_array().filter(|a| a.len() > 1) {
        return all
            .iter()
            .filter_map(|a| {
                Some(format!(
                    "{} {}",
                    a["location"].as_str()?,
                    a["reference"].as_str()?
                ))
            })
            .collect();
    }
    d["ami"]
        .as_str()
        .or_else(|| d["artifact"]["reference"].as_str())
        .map(|s| vec![s.to_string()])
        .unwrap_or_default()
}

/// The last `n` lines of a log.
pub fn tail(log: &str, n: usize) -> Vec<&str> {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_and_sizes_read_naturally() {
        assert_eq!(elapsed(999), "0s");
        assert_eq!(elapsed(75_000), "1m15s");
        assert_eq!(elapsed(3_725_000), "1h02m05s");
        assert_eq!(elapsed(-5), "0s");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 * 1024 * 1024 + 512 * 1024), "3.5 MiB");
    }

    #[test]
    fn the_status_line_names_phase_queue_step_and_time() {
        let view = json!({"id": "b1", "phase": "running", "created_ms": 1_000,
            "queue_position": null,
            "timeline": [{"phase": "launch", "ended_ms": 2_000, "seconds": 1.0},
                         {"phase": "provision", "ended_ms": null, "seconds": null}]});
        assert_eq!(
            status_line(&view, 76_000),
            "bake b1 running · provision · 1m15s"
        );
        let queued = json!({"id": "b2", "phase": "queued", "created_ms": 0, "queue_position": 2});
        assert_eq!(
            status_line(&queued, 3_000),
            "bake b2 queued · #2 in queue · 3s"
        );
        assert_eq!(
            timeline(&view),
            ["  launch        1s", "  provision     (running)"]
        );
    }

    #[test]
    fn failures_carry_the_diagnosis_and_images_their_ids() {
        let failed = json!({"id": "b", "phase": "failed", "error": "boom",
            "diagnosis": {"code": "ami_not_found", "summary": "S.", "hint": "H"}});
        assert_eq!(
            failure(&failed),
            [
                "kiln: bake b failed: boom",
                "diagnosis [ami_not_found]: S.",
                "hint: H"
            ]
        );
        assert_eq!(
            failure(&json!({"id": "c", "phase": "canceled", "error": null})).len(),
            1
        );
        let aws = json!({"details": {"ami": "ami-1", "artifacts": null}});
        assert_eq!(images(&aws), ["ami-1"]);
        let multi = json!({"details": {"ami": "ami-1", "artifacts": [
            {"location": "us-east-1", "reference": "ami-1"},
            {"location": "us-west-2", "reference": "ami-2"}]}});
        assert_eq!(images(&multi), ["us-east-1 ami-1", "us-west-2 ami-2"]);
        let qemu = json!({"image": {"image": "/data/images/b/x.qcow2"}, "details": {}});
        assert_eq!(images(&qemu), ["/data/images/b/x.qcow2"]);
        assert_eq!(tail("a\nb\nc\n", 2), ["b", "c"]);
        assert_eq!(
            printable("ok\tline\n\x1b]0;pwned\x07\u{9b}2J\r"),
            "ok\tline\n\u{fffd}]0;pwned\u{fffd}\u{fffd}2J\u{fffd}"
        );
    }
}
