//! Reading a secret from the operator: from a terminal with echo turned off (restored however the
//! read ends), otherwise one line of standard input, so `printf '%s\n' "$KEY" | kiln …` works in
//! scripts. The secret never appears on the command line, where any local user could read it.

use anyhow::{Context, bail};
use std::ffi::OsString;
use std::io::{BufRead, IsTerminal};

/// The flags that read a secret; they take no value on the command line.
const SECRET_FLAGS: &[&str] = &[
    "--aws-secret-key",
    "--alicloud-secret-key",
    "--secret-key",
    "--password",
    "--app-key",
    "--private-key-passphrase",
];

/// Refuses a secret given on the command line (`--aws-secret-key VALUE` or
/// `--aws-secret-key=VALUE`), where `ps` and shell history would keep it. Checked before clap
/// parses, because clap's own error ("unexpected argument 'VALUE'") would print the value.
/// The answer never holds the value. `cli` is the whole command tree, to tell a next flag from
/// a value.
pub fn refuse_secret_on_command_line(args: &[OsString], cli: &clap::Command) -> Result<(), String> {
    let mut longs = vec!["help".to_string(), "version".to_string()];
    collect_longs(cli, &mut longs);
    let is_flag = |a: &str| {
        a == "-h"
            || a == "-V"
            || a.strip_prefix("--")
                .is_some_and(|f| longs.iter().any(|l| l == f.split('=').next().unwrap_or(f)))
    };
    let args: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    for (i, a) in args.iter().enumerate() {
        if a == "--" {
            break;
        }
        for flag in SECRET_FLAGS {
            let inline = a
                .strip_prefix(flag)
                .is_some_and(|rest| rest.starts_with('='));
            let next_is_value = a == flag && args.get(i + 1).is_some_and(|n| !is_flag(n));
            if inline || next_is_value {
                return Err(format!(
                    "{flag} takes no value on the command line, where `ps` and shell history \
                     would show it; nothing was changed, and the value is not repeated here. Give \
                     {flag} alone (an account's NAME goes before the flags) and type the secret at \
                     the prompt, or pipe it: printf '%s\\n' \"$SECRET\" | kiln config provider <cloud> … {flag}"
                ));
            }
        }
    }
    Ok(())
}

fn collect_longs(cmd: &clap::Command, into: &mut Vec<String>) {
    for arg in cmd.get_arguments() {
        into.extend(arg.get_long().map(String::from));
        into.extend(
            arg.get_all_aliases()
                .into_iter()
                .flatten()
                .map(String::from),
        );
    }
    for sub in cmd.get_subcommands() {
        collect_longs(sub, into);
    }
}

/// Reads one secret line; an empty secret is refused. On a terminal, rpassword prompts and reads
/// on the controlling terminal with echo off (and restores it however the read ends).
pub(crate) fn read(prompt: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let line = if stdin.is_terminal() {
        rpassword::prompt_password(prompt).context("cannot read the secret from the terminal")?
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cli() -> clap::Command {
        clap::Command::new("kiln").subcommand(
            clap::Command::new("edit")
                .arg(clap::Arg::new("s").long("aws-secret-key").num_args(0))
                .arg(clap::Arg::new("a").long("aws-access-key")),
        )
    }

    fn check(args: &[&str]) -> Result<(), String> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        refuse_secret_on_command_line(&args, &cli())
    }

    #[test]
    fn a_secret_value_on_the_command_line_is_refused_without_repeating_it() {
        for args in [
            &["kiln", "edit", "--aws-secret-key", "hush-1234"][..],
            &["kiln", "edit", "--aws-secret-key=hush-1234"],
            &[
                "kiln",
                "edit",
                "--aws-secret-key",
                "-hush-1234",
                "--aws-access-key",
                "A",
            ],
            &["kiln", "edit", "--aws-secret-key", "--hush-1234"],
        ] {
            let e = check(args).unwrap_err();
            assert!(!e.contains("hush"), "{e}");
            assert!(e.contains("--aws-secret-key alone"), "{e}");
        }
        assert!(check(&["kiln", "edit", "--aws-secret-key"]).is_ok());
        assert!(check(&["kiln", "edit", "--aws-secret-key", "--aws-access-key", "A"]).is_ok());
        assert!(check(&["kiln", "edit", "--aws-secret-key", "-h"]).is_ok());
        assert!(check(&["kiln", "edit", "--aws-access-key", "--aws-secret-key"]).is_ok());
    }

    #[test]
    fn one_line_is_read_without_its_line_ending() {
        let mut input = std::io::Cursor::new("s3cr3t\r\nnext\n");
        let line = read_line(&mut input).unwrap();
        assert_eq!(line.trim_end_matches(['\r', '\n']), "s3cr3t");
    }
}
