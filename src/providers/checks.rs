//! What a request may set, and what Packer can take. A request's extended attributes become
//! Packer variables (Rosco's behaviour), so their names are checked here: they must be Packer
//! variable names, and names the operator owns stay the operator's. At the end of preparation
//! every final variable is checked once more (inert text, one argument's size, the whole
//! command line's size, package tokens), so a derived value cannot slip past the request checks.

use super::recipe::BakeError;
use crate::bake::input::{self, MAX_ARG_BYTES};
use crate::recipe::check_package_token;
use crate::telemetry::escaped;

/// Variables the operator owns: where kiln's templates and scripts live (`configDir`: Packer
/// would run `install_packages.sh` from any folder, under sudo for chroot templates), the
/// credentials, and where they are sent (`aws_ec2_endpoint`). A request cannot set them.
pub const OPERATOR_VARIABLES: &[&str] = &[
    "configDir",
    "aws_access_key",
    "aws_secret_key",
    "aws_session_token",
    "aws_ec2_endpoint",
    // Other clouds' credentials, and where and how Huawei's password is sent (a request's
    // endpoint or `insecure` would hand the password to whoever answers).
    "alicloud_access_key",
    "alicloud_secret_key",
    "tencentcloud_secret_id",
    "tencentcloud_secret_key",
    "huaweicloud_auth_url",
    "huaweicloud_username",
    "huaweicloud_password",
    "huaweicloud_insecure",
    "oracle_user_id",
    "oracle_tenancy_id",
    "oracle_fingerprint",
    "oracle_pass_phrase",
    // Azure's service principal and the tenant and subscription it is trusted in.
    "azure_client_id",
    "azure_client_secret",
    "azure_tenant_id",
    "azure_subscription_id",
    "azure_object_id",
];

/// Suffixes of variables that name a file or folder on the bakery's host (Packer's own
/// convention: `ssh_private_key_file`, `user_data_file`, `output_directory`, `http_dir`…). The
/// host is the operator's: such a variable comes from a var file or template in configDir,
/// never from a request (it could make Packer read, upload or write any file kiln can reach).
pub const HOST_PATH_SUFFIXES: [&str; 4] = ["_file", "_path", "_dir", "_directory"];

/// Prefixes of variables kiln derives for its own paths (the qemu provider's disk, kernel,
/// key and output).
pub const KILN_PREFIXES: [&str; 1] = ["qemu_"];

/// The longest extended-attribute name kiln takes.
const MAX_NAME_BYTES: usize = 128;

/// Checks the request's extended-attribute names: Packer variable names (a letter or `_`,
/// then letters, digits, `_` and `-`: a `=` or a leading `-` would change how Packer reads
/// `-var name=value`), and none the operator or kiln owns.
pub fn check_attribute_names<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Result<(), BakeError> {
    for name in names {
        let field = format!("extended_attributes key {}", escaped(name));
        let mut chars = name.chars();
        let well_formed = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            && name.len() <= MAX_NAME_BYTES;
        if !well_formed {
            return Err(invalid(format!(
                "{field}: not a Packer variable name; use a letter or '_' then letters, digits, '_' \
                 and '-' (at most {MAX_NAME_BYTES} characters)"
            )));
        }
        if OPERATOR_VARIABLES.contains(&name) {
            return Err(invalid(format!(
                "{field}: '{name}' is the bakery operator's setting and cannot be set by a bake \
                 request; leave it out"
            )));
        }
        if HOST_PATH_SUFFIXES
            .iter()
            .any(|s| name.to_ascii_lowercase().ends_with(s))
        {
            return Err(invalid(format!(
                "{field}: '{name}' names a file or folder on the bakery's host, which only the \
                 operator sets (in a var file or template in configDir, chosen with \
                 var_file_name or template_file_name); leave it out"
            )));
        }
        if KILN_PREFIXES.iter().any(|p| name.starts_with(p)) {
            return Err(invalid(format!(
                "extended attribute '{name}' is set by kiln for qemu bakes and cannot be \
                 overridden; leave it out"
            )));
        }
    }
    Ok(())
}

/// The field a final variable is reported under: the extended attribute that set it, if any.
pub fn field_of(name: &str, attributes: &[String]) -> String {
    if attributes.iter().any(|a| a == name) {
        format!("extended_attributes.{name}")
    } else {
        format!("Packer variable '{name}'")
    }
}

/// Checks the final variables: inert values, each `-var name=value` within one argument's
/// limit, and the `packages` variable made of package tokens only (`allowed` lists tokens kiln
/// made itself, such as staged artifact paths).
pub fn check_variables(
    vars: &[(String, String)],
    attributes: &[String],
    allowed: &[String],
) -> Result<(), BakeError> {
    for (k, v) in vars {
        let field = field_of(k, attributes);
        input::check_value(&field, v).map_err(|e| invalid(e.to_string()))?;
        // `-var k=v` and its NUL.
        let arg = k.len() + 1 + v.len() + 1;
        if arg > MAX_ARG_BYTES {
            return Err(invalid(format!(
                "{field}: '-var {k}=…' would be {arg} bytes, over the OS limit of one argument \
                 (128 KiB); shorten the value"
            )));
        }
        if k == "repository" && attributes.iter().any(|a| a == "repository") {
            check_requested_repository(&field, v)?;
        }
        if k == "packages" {
            let field = if attributes.iter().any(|a| a == "packages") {
                field
            } else {
                "package_artifacts".to_string()
            };
            for token in v.split([' ', ',']).filter(|t| !t.is_empty()) {
                if !allowed.iter().any(|a| a == token) {
                    check_package_token(token).map_err(|e| invalid(format!("{field}: {e}")))?;
                }
            }
        }
    }
    Ok(())
}

/// A repository a request gives (`extended_attributes.repository`) is a location only: apt
/// source options (`[trusted=yes]`, `[signed-by=…]`) and anything option-like are the
/// operator's, set in `debianRepository`/`yumRepository`.
fn check_requested_repository(field: &str, value: &str) -> Result<(), BakeError> {
    for entry in value.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let location = entry
            .strip_prefix("deb-src ")
            .or_else(|| entry.strip_prefix("deb "))
            .unwrap_or(entry)
            .trim_start();
        if location.starts_with('-') || location.starts_with('[') {
            return Err(invalid(format!(
                "{field}: repository {} starts with '{}'; a request gives a repository's location                  (https://host/path suite components), its options are the bakery operator's",
                escaped(entry),
                &location[..1]
            )));
        }
    }
    Ok(())
}

/// What the rest of Packer's start costs on top of the variables: the program, flags,
/// template and var-file paths, sudo, and kiln's supervisor spec (a generous bound).
const FIXED_COMMAND_BYTES: usize = 16 * 1024;

/// Checks that Packer's command line (its variables) and environment (kiln's own plus
/// `extra_env`) fit `arg_max`, the OS limit of one `execve` (strings, their NULs and one
/// pointer each). `attributes` names the fields to shorten.
pub fn check_command_line(
    vars: &[(String, String)],
    extra_env: &[(String, String)],
    inherited_env_bytes: usize,
    arg_max: usize,
    attributes: &[String],
) -> Result<(), BakeError> {
    let ptr = std::mem::size_of::<usize>();
    let var_bytes: usize = vars
        .iter()
        .map(|(k, v)| "-var".len() + 1 + k.len() + 1 + v.len() + 1 + 2 * ptr)
        .sum();
    let env_bytes: usize = extra_env
        .iter()
        .map(|(k, v)| k.len() + 1 + v.len() + 1 + ptr)
        .sum();
    let total = var_bytes + env_bytes + inherited_env_bytes + FIXED_COMMAND_BYTES;
    if total <= arg_max {
        return Ok(());
    }
    let mut largest: Vec<&(String, String)> = vars.iter().collect();
    largest.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
    let named: Vec<String> = largest
        .iter()
        .take(3)
        .map(|(k, v)| format!("{} ({} bytes)", field_of(k, attributes), v.len()))
        .collect();
    Err(invalid(format!(
        "the request makes Packer's command line about {total} bytes, over the OS limit of \
         {arg_max} bytes (ARG_MAX); shorten the largest values: {}",
        named.join(", ")
    )))
}

/// The OS limit of one `execve`'s arguments and environment (`sysconf(_SC_ARG_MAX)`).
pub fn arg_max() -> usize {
    // SAFETY: sysconf has no preconditions; it reads a system limit.
    let n = unsafe { libc::sysconf(libc::_SC_ARG_MAX) };
    usize::try_from(n)
        .ok()
        .filter(|n| *n > 0)
        .unwrap_or(128 * 1024)
}

/// The bytes kiln's own environment takes in a child's `execve` (Packer inherits it).
pub fn inherited_env_bytes() -> usize {
    std::env::vars_os()
        .map(|(k, v)| k.len() + 1 + v.len() + 1 + std::mem::size_of::<usize>())
        .sum()
}

fn invalid(message: String) -> BakeError {
    BakeError::Invalid(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Result<(), BakeError> {
        check_attribute_names(list.iter().copied())
    }

    #[test]
    fn attribute_names_must_be_packer_variable_names() {
        assert!(names(&["aws_subnet_id", "_x", "copy-to", "share_with", "a1"]).is_ok());
        for bad in [
            "a=b",
            "-var",
            "1abc",
            "",
            "a b",
            "a.b",
            "é",
            &"a".repeat(129),
        ] {
            let e = names(&[bad]).unwrap_err().to_string();
            assert!(e.contains("not a Packer variable name"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_operators_and_kilns_variables_cannot_be_requested() {
        for owned in OPERATOR_VARIABLES {
            let e = names(&[owned]).unwrap_err().to_string();
            assert!(e.contains(owned) && e.contains("operator"), "{e}");
        }
        let e = names(&["qemu_source_disk"]).unwrap_err().to_string();
        assert!(e.contains("cannot be overridden"), "{e}");
    }

    #[test]
    fn final_variables_are_checked_and_named_by_their_source() {
        let attrs = vec!["packages".to_string(), "x".to_string()];
        let vars = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        let e = check_variables(&vars("x", "{{env `K`}}"), &attrs, &[]).unwrap_err();
        assert!(e.to_string().starts_with("extended_attributes.x: "), "{e}");
        let e = check_variables(&vars("aws_target_ami", "a\nb"), &attrs, &[]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Packer variable 'aws_target_ami'"),
            "{e}"
        );
        let e = check_variables(&vars("packages", "nginx -oFoo=1"), &attrs, &[]).unwrap_err();
        assert!(
            e.to_string().starts_with("extended_attributes.packages: "),
            "{e}"
        );
        let e = check_variables(&vars("packages", "a,$(id)"), &[], &[]).unwrap_err();
        assert!(e.to_string().starts_with("package_artifacts: "), "{e}");
        let repo = vec!["repository".to_string()];
        for bad in [
            "deb [trusted=yes] http://evil/ x main",
            "[trusted=yes] http://e/",
            "ok; -x",
        ] {
            let e = check_variables(&vars("repository", bad), &repo, &[]).unwrap_err();
            assert!(
                e.to_string().contains("options are the bakery operator's"),
                "{e}"
            );
        }
        assert!(
            check_variables(
                &vars("repository", "https://r.example/apt stable main"),
                &repo,
                &[]
            )
            .is_ok()
        );
        let staged = vec!["/tmp/kiln-artifacts/a_1_all.deb".to_string()];
        assert!(
            check_variables(
                &vars("packages", "nginx /tmp/kiln-artifacts/a_1_all.deb"),
                &[],
                &staged
            )
            .is_ok()
        );
        let long_name = "k".repeat(400);
        let value = "v".repeat(MAX_ARG_BYTES - 300);
        let e = check_variables(&vars(&long_name, &value), &[], &[]).unwrap_err();
        assert!(e.to_string().contains("128 KiB"), "{e}");
    }

    #[test]
    fn a_command_line_over_arg_max_is_refused_naming_the_largest_values() {
        let vars: Vec<(String, String)> = (0..4)
            .map(|i| (format!("v{i}"), "x".repeat(100_000 * (i + 1))))
            .collect();
        let attrs: Vec<String> = vars.iter().map(|(k, _)| k.clone()).collect();
        check_command_line(&vars, &[], 0, 2 * 1024 * 1024, &attrs).expect("1 MB fits 2 MiB");
        let e = check_command_line(&vars, &[], 0, 512 * 1024, &attrs).unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains("ARG_MAX") && e.contains("extended_attributes.v3 (400000 bytes)"),
            "{e}"
        );
        assert!(arg_max() >= 128 * 1024);
    }
}
