//! Reading a secret from the operator: from a terminal with echo turned off (restored however the
//! read ends), otherwise one line of standard input, so `printf '%s\n' "$KEY" | kiln …` works in
//! scripts. The secret never appears on the command line, where any local user could read it.

use anyhow::{Context, bail};
use std::io::{BufRead, IsTerminal, Write};

/// Reads one secret line; an empty secret is refused.
pub(crate) fn read(prompt: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let line = if stdin.is_terminal() {
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
        let line = without_echo(|| read_line(&mut stdin.lock()));
        eprintln!();
        line?
    } else {
        read_line(&mut stdin.lock())?
    };
    let secret = line.trim_end_matches(['\r', '\n']).to_string();
    if secret.trim().is_empty() {
        bail!("the secret is empty; nothing was changed");
    }
    Ok(secret)
}

fn read_line(input: &mut impl BufRead) -> anyhow::Result<String> {
    let mut line = String::new();
    input
        .read_line(&mut line)
        .context("cannot read the secret from standard input")?;
    Ok(line)
}

/// Runs `f` with the terminal's echo off, and restores the terminal afterwards.
fn without_echo<T>(f: impl FnOnce() -> T) -> T {
    let fd = libc::STDIN_FILENO;
    // SAFETY: termios is plain old data; tcgetattr fills it for a valid fd or fails.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: fd 0 is open (it is a terminal), and `saved` is a valid termios to fill.
    if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
        return f();
    }
    let mut quiet = saved;
    quiet.c_lflag &= !libc::ECHO;
    // SAFETY: `quiet` is a copy of the terminal's own settings with echo cleared.
    unsafe { libc::tcsetattr(fd, libc::TCSAFLUSH, &quiet) };
    let out = f();
    // SAFETY: restores exactly the settings read above.
    unsafe { libc::tcsetattr(fd, libc::TCSAFLUSH, &saved) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_is_read_without_its_line_ending() {
        let mut input = std::io::Cursor::new("s3cr3t\r\nnext\n");
        let line = read_line(&mut input).unwrap();
        assert_eq!(line.trim_end_matches(['\r', '\n']), "s3cr3t");
    }
}
