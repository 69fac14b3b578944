//! Whether the installed Packer has the `huaweicloud-ecs` builder. Packer 1.6.6 does not: the
//! builder is in Huawei's plugin, which only Packer 1.7 and later load. The probe validates a
//! one-line template naming the builder, read from stdin (no file), and reads Packer's answer:
//! an unknown builder is named as such by every Packer version (1.6: "Unknown builder …";
//! 1.7+: "The builder … is unknown by Packer"); anything else (missing settings) means Packer
//! has it.

use super::super::provider::HookError;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub(super) const BUILDER: &str = "huaweicloud-ecs";

/// How long the probe may take (it starts Packer once, which takes well under a second).
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// How much of Packer's answer is read (its real answer is a few hundred bytes).
const OUTPUT_CAP: u64 = 64 * 1024;

/// Why a Huawei Cloud bake cannot start: the builder, the plugin and what to do.
pub(super) fn missing_message(packer: &Path) -> String {
    format!(
        "Huawei Cloud bakes need Packer's {BUILDER} builder, from the Huawei Cloud Packer plugin \
         (packer-plugin-huaweicloud, github.com/huaweicloud/packer-plugin-huaweicloud), and the \
         installed Packer ({}) does not have it: install the plugin for a Packer that loads it \
         (1.7 or later) and point kiln.packerPath at that Packer",
        packer.display()
    )
}

/// Whether Packer's output says it does not know the builder.
pub(super) fn says_unknown_builder(output: &str) -> bool {
    output.contains(&format!("Unknown builder {BUILDER}"))
        || (output.contains(BUILDER) && output.contains("unknown by Packer"))
}

/// Asks `packer` whether it knows the builder; an error names the plugin it needs.
pub(super) async fn probe(packer: &Path) -> Result<(), HookError> {
    let shown = packer.display();
    let mut child = tokio::process::Command::new(packer)
        .args(["validate", "-machine-readable", "-"])
        .env("CHECKPOINT_DISABLE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            format!("cannot run Packer ({shown}) to check for the {BUILDER} builder: {e}")
        })?;
    let template = format!(r#"{{"builders":[{{"type":"{BUILDER}"}}]}}"#);
    let mut stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let answer = async {
        if let Some(mut stdin) = stdin.take() {
            // A Packer that exits before reading is answered by its output below.
            let _ = stdin.write_all(template.as_bytes()).await;
        }
        let (out, err) = tokio::join!(read_capped(stdout), read_capped(stderr));
        let _ = child.wait().await;
        format!("{out}{err}")
    };
    // On a timeout the child is dropped, and killed (kill_on_drop).
    let text = tokio::time::timeout(PROBE_TIMEOUT, answer).await.map_err(|_| {
        format!("Packer ({shown}) did not answer within {PROBE_TIMEOUT:?} whether it has the {BUILDER} builder")
    })?;
    if says_unknown_builder(&text) {
        return Err(missing_message(packer).into());
    }
    Ok(())
}

/// At most [`OUTPUT_CAP`] bytes of a pipe, as text.
async fn read_capped(pipe: Option<impl tokio::io::AsyncRead + Unpin>) -> String {
    let mut bytes = Vec::new();
    if let Some(pipe) = pipe {
        let _ = pipe.take(OUTPUT_CAP).read_to_end(&mut bytes).await;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packers_words_for_an_unknown_builder_are_recognised() {
        // Packer 1.6.6's machine-readable answer (captured on this machine).
        let v166 = "1796271661,,ui,error,Error: Failed to initialize build \"huaweicloud-ecs\"\\n\\nerror initializing builder 'huaweicloud-ecs': Unknown builder huaweicloud-ecs\\n\\n";
        assert!(says_unknown_builder(v166));
        let v17 = "Error: Failed to initialize build \"huaweicloud-ecs\"\n\nThe builder huaweicloud-ecs is unknown by Packer, and is likely part of a plugin that is not installed.";
        assert!(says_unknown_builder(v17));
        // A Packer with the plugin complains about the settings instead.
        let has = "1,,ui,error,Error: Failed to prepare build: \"huaweicloud-ecs\"\\n\\n* An image_name must be specified";
        assert!(!says_unknown_builder(has));
    }

    #[test]
    fn the_message_names_the_builder_the_plugin_and_the_fix() {
        let m = missing_message(Path::new("/usr/bin/packer"));
        for part in [
            "huaweicloud-ecs",
            "packer-plugin-huaweicloud",
            "kiln.packerPath",
            "/usr/bin/packer",
        ] {
            assert!(m.contains(part), "{m}");
        }
    }

    #[tokio::test]
    async fn a_packer_that_cannot_start_is_an_error_naming_it() {
        let e = probe(Path::new("/nonexistent/packer")).await.unwrap_err();
        assert!(e.to_string().contains("/nonexistent/packer"), "{e}");
    }
}
