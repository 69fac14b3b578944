//! Package types and package names, following Rosco's behaviour: a base image installs `deb`,
//! `rpm` or `nupkg` packages; each type has its own file-name convention
//! (`name_version-release_arch`, `name-version-release.arch`,
//! `name[.lang].version[-release][+metadata]`) and its own separators for the Packer `packages`
//! variable and the appversion tag.
//!
//! Parsing never fails: a token that does not follow its type's convention is a bare name, as in
//! Rosco. Two deliberate differences, both so CI file names work: a trailing `.deb` / `.rpm` is
//! removed before parsing (Rosco's rules don't mention it and would read `rpm` as the arch), and
//! empty fields count as absent (Rosco would render `name=` for `name__all`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// The package format of a base image; Packer receives it as `package_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PackageType {
    Deb,
    Rpm,
    Nupkg,
}

/// A package type kiln does not know; the message lists the valid ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown package type '{0}': use one of deb, rpm, nupkg")]
pub struct PackageTypeError(pub String);

impl PackageType {
    pub const ALL: [PackageType; 3] = [Self::Deb, Self::Rpm, Self::Nupkg];

    /// The lowercase name, which is also the Packer `package_type` value.
    pub fn as_str(self) -> &'static str {
        self.pick("deb", "rpm", "nupkg")
    }

    /// Between name and version in the `packages` variable (`apt-get install name=1.0-1`).
    pub fn package_manager_separator(self) -> &'static str {
        self.pick("=", "-", ".")
    }

    /// Between name and version in the appversion tag.
    pub fn version_separator(self) -> &'static str {
        self.pick("-", "-", ".")
    }

    /// Before the CI build number in the appversion tag.
    pub fn build_number_separator(self) -> &'static str {
        self.pick("-h", "-h", "-")
    }

    /// Before the commit hash in the appversion tag.
    pub fn commit_separator(self) -> &'static str {
        self.pick(".", ".", "+")
    }

    /// The extension of this type's package files, dot included.
    pub fn file_extension(self) -> &'static str {
        self.pick(".deb", ".rpm", ".nupkg")
    }

    /// Reads a package token with this type's naming convention.
    pub fn parse(&self, token: &str) -> OsPackageName {
        let token = token.trim();
        match self {
            Self::Deb => parse_deb(token.strip_suffix(".deb").unwrap_or(token)),
            Self::Rpm => parse_rpm(token.strip_suffix(".rpm").unwrap_or(token)),
            Self::Nupkg => parse_nupkg(token),
        }
    }

    fn pick(self, deb: &'static str, rpm: &'static str, nupkg: &'static str) -> &'static str {
        match self {
            Self::Deb => deb,
            Self::Rpm => rpm,
            Self::Nupkg => nupkg,
        }
    }
}

impl fmt::Display for PackageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PackageType {
    type Err = PackageTypeError;

    /// Any case: Rosco's config uses `deb`, its API `DEB`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| PackageTypeError(s.to_string()))
    }
}

impl Serialize for PackageType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for PackageType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A package token split into its parts (Rosco's `OsPackageName`). Empty parts are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct OsPackageName {
    pub name: Option<String>,
    pub version: Option<String>,
    pub release: Option<String>,
    pub arch: Option<String>,
}

impl OsPackageName {
    fn new(name: &str, version: Option<&str>, release: Option<&str>, arch: Option<&str>) -> Self {
        let owned = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_owned);
        Self {
            name: owned(Some(name)),
            version: owned(version),
            release: owned(release),
            arch: owned(arch),
        }
    }

    /// `name<sep>version[-release]`, or `None` without a name and version
    /// (Rosco's `qualifiedPackageName`; the release joins with `-` for every type).
    fn qualified(&self, kind: PackageType) -> Option<String> {
        let (name, version) = (self.name.as_deref()?, self.version.as_deref()?);
        let release = self
            .release
            .as_deref()
            .map(|r| format!("-{r}"))
            .unwrap_or_default();
        Some(format!(
            "{name}{}{version}{release}",
            kind.package_manager_separator()
        ))
    }

    /// What the package manager is asked to install: the qualified name, else the bare name.
    fn install_spec(&self, kind: PackageType) -> Option<String> {
        self.qualified(kind).or_else(|| self.name.clone())
    }
}

/// The Packer `packages` variable: each package qualified when it has a version, space-joined.
pub fn packages_parameter(kind: PackageType, names: &[OsPackageName]) -> String {
    let specs: Vec<String> = names.iter().filter_map(|p| p.install_spec(kind)).collect();
    specs.join(" ")
}

/// Punctuation a package token may hold besides ASCII letters and digits: what deb, rpm and
/// NuGet names and versions use (`+ . ~ - _`, the epoch `:`, `^`), and the package managers'
/// `name=version`, `name:arch` and `name/release` forms. Nothing a shell or a package manager
/// reads as syntax: no whitespace, quotes, `$`, `;`, `|`, `&`, `<`, `>`, `*`, `?`, `[`, `(`,
/// backslash, comma (install_packages.sh splits on it) or control character.
const TOKEN_PUNCTUATION: &str = "+.~-_:=/^";

/// Checks that `token` is a package name (or name and version) and nothing else: it starts
/// with a letter or digit (never `-`, which would make it an option of apt-get or yum) and
/// holds only letters, digits and [`TOKEN_PUNCTUATION`]. The error says what is wrong.
pub fn check_package_token(token: &str) -> Result<(), String> {
    let shown = crate::telemetry::escaped(token);
    let Some(first) = token.chars().next() else {
        return Err("a package name is empty".into());
    };
    if !first.is_ascii_alphanumeric() {
        return Err(format!(
            "package {shown} must start with a letter or digit (a leading '{}' would make it \
             an option or a path for the package manager)",
            first.escape_default()
        ));
    }
    if let Some(c) = token
        .chars()
        .find(|c| !c.is_ascii_alphanumeric() && !TOKEN_PUNCTUATION.contains(*c))
    {
        return Err(format!(
            "package {shown} holds '{}'; package names use letters, digits and {}",
            c.escape_default(),
            TOKEN_PUNCTUATION
                .chars()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    Ok(())
}

/// Splits like Java's `String.split` on one character, which Rosco's parsers use: trailing empty
/// pieces are dropped (`"a_"` is one piece), yet a string without the separator is one piece.
fn java_split(s: &str, sep: char) -> Vec<&str> {
    if !s.contains(sep) {
        return vec![s];
    }
    let mut parts: Vec<&str> = s.split(sep).collect();
    while parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    parts
}

/// `name_version-release_arch`; without `_` the whole token is the name. Only the first two
/// `-` pieces of `version-release` count, as in Rosco.
fn parse_deb(token: &str) -> OsPackageName {
    let parts = java_split(token, '_');
    if parts.len() < 2 {
        return OsPackageName::new(token, None, None, None);
    }
    let version_release = java_split(parts[1], '-');
    let piece = |i: usize| version_release.get(i).copied();
    OsPackageName::new(parts[0], piece(0), piece(1), parts.get(2).copied())
}

/// `name-version-release.arch`: the arch is after the last `.`; the rest needs three `-` pieces,
/// otherwise the whole token (arch included) is the name.
fn parse_rpm(token: &str) -> OsPackageName {
    let dotted = java_split(token, '.');
    let (rest, arch) = match dotted.split_last() {
        Some((arch, init)) if !init.is_empty() => (init.join("."), Some(*arch)),
        _ => (token.to_string(), None),
    };
    let parts = java_split(&rest, '-');
    let n = parts.len();
    if n < 3 {
        return OsPackageName::new(token, None, None, arch);
    }
    let name = parts[..n - 2].join("-");
    OsPackageName::new(&name, Some(parts[n - 2]), Some(parts[n - 1]), arch)
}

/// NuGet names (`name[.lang].major.minor.patch[-pre][+metadata]`), read the way Rosco does:
/// `.nupkg` removed, dot-separated parts, the version starting at the first later part that is
/// an integer (else that starts with a digit and holds `-`).
fn parse_nupkg(token: &str) -> OsPackageName {
    // Rosco removes the first `.nupkg` wherever it is; its pattern is a regex whose `.` matches
    // any character, kiln removes the literal text only.
    let token = token.replacen(".nupkg", "", 1);
    let parts: Vec<&str> = token.split('.').filter(|p| !p.is_empty()).collect();
    match parts.len() {
        0 | 1 => OsPackageName::new(&token, None, None, None),
        2 => nupkg_two_parts(parts[0], parts[1]),
        _ => nupkg_many_parts(&parts),
    }
}

fn nupkg_two_parts(first: &str, second: &str) -> OsPackageName {
    if is_integer(second) {
        return OsPackageName::new(first, Some(second), None, None);
    }
    if let Some((version, release)) = second.split_once('-').filter(|_| starts_with_digit(second)) {
        return OsPackageName::new(first, Some(version), Some(release), None);
    }
    OsPackageName::new(&format!("{first}.{second}"), None, None, None)
}

fn nupkg_many_parts(parts: &[&str]) -> OsPackageName {
    let later = 1..parts.len();
    let start = later.clone().find(|&i| is_integer(parts[i])).or_else(|| {
        later
            .clone()
            .find(|&i| parts[i].contains('-') && starts_with_digit(parts[i]))
    });
    let Some(start) = start else {
        return nupkg_without_version(parts);
    };
    let name = parts[..start].join(".");
    let version = parts[start..].join(".");
    if let Some((version, release)) = version.split_once('-') {
        OsPackageName::new(&name, Some(version), Some(release), None)
    } else if let Some((version, metadata)) = version.split_once('+') {
        let release = format!("+{metadata}");
        OsPackageName::new(&name, Some(version), Some(&release), None)
    } else {
        OsPackageName::new(&name, Some(&version), None, None)
    }
}

/// No version: a `+metadata` part ends the name and gives the release; later parts are
/// ignored, as in Rosco. (Rosco writes a stray leading `.` when that part is the first; kiln
/// doesn't.)
fn nupkg_without_version(parts: &[&str]) -> OsPackageName {
    let Some(at) = parts.iter().position(|p| p.contains('+')) else {
        return OsPackageName::new(&parts.join("."), None, None, None);
    };
    let pieces = java_split(parts[at], '+');
    let release = pieces.get(1).map(|m| format!("+{m}"));
    let last = pieces.first().copied().unwrap_or_default();
    let name_parts: Vec<&str> = parts[..at].iter().copied().chain([last]).collect();
    let name = name_parts.join(".");
    OsPackageName::new(name.trim_end_matches('.'), None, release.as_deref(), None)
}

/// Groovy's `String.isInteger()`: an optionally signed decimal that fits 32 bits.
fn is_integer(s: &str) -> bool {
    s.trim().parse::<i32>().is_ok()
}

fn starts_with_digit(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An `OsPackageName` from its parts, `""` meaning absent.
    fn pkg(name: &str, version: &str, release: &str, arch: &str) -> OsPackageName {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
        OsPackageName {
            name: some(name),
            version: some(version),
            release: some(release),
            arch: some(arch),
        }
    }

    fn check(kind: PackageType, cases: &[(&str, OsPackageName)]) {
        for (token, expected) in cases {
            assert_eq!(&kind.parse(token), expected, "{kind} token {token:?}");
        }
    }

    #[test]
    fn package_types_parse_in_any_case_and_print_lowercase() {
        for (text, kind) in [
            ("deb", PackageType::Deb),
            ("DEB", PackageType::Deb),
            ("Rpm", PackageType::Rpm),
            ("nupkg", PackageType::Nupkg),
            ("NUPKG", PackageType::Nupkg),
        ] {
            assert_eq!(text.parse::<PackageType>(), Ok(kind));
            assert_eq!(kind.as_str(), text.to_ascii_lowercase());
            assert_eq!(kind.to_string(), kind.as_str());
        }
    }

    #[test]
    fn an_unknown_package_type_is_refused_with_the_valid_values() {
        let err = "apk".parse::<PackageType>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown package type 'apk': use one of deb, rpm, nupkg"
        );
        assert!("".parse::<PackageType>().is_err());
    }

    #[test]
    fn package_types_serialize_lowercase_and_deserialize_in_any_case() {
        assert_eq!(
            serde_json::to_string(&PackageType::Nupkg).unwrap(),
            r#""nupkg""#
        );
        let kinds: Vec<PackageType> = serde_json::from_str(r#"["DEB","rpm","NuPkg"]"#).unwrap();
        assert_eq!(kinds, PackageType::ALL);
        let err = serde_json::from_str::<PackageType>(r#""zip""#).unwrap_err();
        assert!(
            err.to_string().contains("use one of deb, rpm, nupkg"),
            "{err}"
        );
    }

    #[test]
    fn each_package_type_uses_rosco_separators() {
        let table = [
            (PackageType::Deb, "=", "-", "-h", "."),
            (PackageType::Rpm, "-", "-", "-h", "."),
            (PackageType::Nupkg, ".", ".", "-", "+"),
        ];
        for (kind, manager, version, build, commit) in table {
            assert_eq!(kind.package_manager_separator(), manager, "{kind}");
            assert_eq!(kind.version_separator(), version, "{kind}");
            assert_eq!(kind.build_number_separator(), build, "{kind}");
            assert_eq!(kind.commit_separator(), commit, "{kind}");
        }
    }

    #[test]
    fn deb_names_parse_as_name_version_release_arch() {
        check(
            PackageType::Deb,
            &[
                ("", OsPackageName::default()),
                (
                    "nflx-djangobase-enhanced",
                    pkg("nflx-djangobase-enhanced", "", "", ""),
                ),
                (
                    "nflx-djangobase-enhanced_0.1",
                    pkg("nflx-djangobase-enhanced", "0.1", "", ""),
                ),
                (
                    "nflx-djangobase-enhanced_0.1-h12.170cdbd",
                    pkg("nflx-djangobase-enhanced", "0.1", "h12.170cdbd", ""),
                ),
                (
                    "nflx-djangobase-enhanced_0.1-3",
                    pkg("nflx-djangobase-enhanced", "0.1", "3", ""),
                ),
                (
                    "nflx-djangobase-enhanced_0.1-h12.170cdbd_all",
                    pkg("nflx-djangobase-enhanced", "0.1", "h12.170cdbd", "all"),
                ),
                (
                    "nflx-djangobase-enhanced_0.1-3_all",
                    pkg("nflx-djangobase-enhanced", "0.1", "3", "all"),
                ),
            ],
        );
    }

    #[test]
    fn deb_edge_cases_follow_rosco_splitting() {
        check(
            PackageType::Deb,
            &[
                // Java's split drops the trailing empty piece, so there is no version at all.
                ("hello_", pkg("hello_", "", "", "")),
                ("hello_1.0-2-3_amd64_x", pkg("hello", "1.0", "2", "amd64")),
                ("hello__all", pkg("hello", "", "", "all")),
                ("_1.0", pkg("", "1.0", "", "")),
                (
                    "hello_2.3-h4.abc123_all.deb",
                    pkg("hello", "2.3", "h4.abc123", "all"),
                ),
                (".deb", OsPackageName::default()),
            ],
        );
    }

    #[test]
    fn rpm_names_parse_as_name_version_release_dot_arch() {
        check(
            PackageType::Rpm,
            &[
                ("", OsPackageName::default()),
                (
                    "billinggateway-1.0-h2385.e0a09ce.all",
                    pkg("billinggateway", "1.0", "h2385.e0a09ce", "all"),
                ),
                (
                    "nflx-djangobase-enhanced-0.1-h12.170cdbd.all",
                    pkg("nflx-djangobase-enhanced", "0.1", "h12.170cdbd", "all"),
                ),
                (
                    "sf-lucifer-0.0.10-1.noarch",
                    pkg("sf-lucifer", "0.0.10", "1", "noarch"),
                ),
                (
                    "hello-2.3-h4.abc123.noarch.rpm",
                    pkg("hello", "2.3", "h4.abc123", "noarch"),
                ),
            ],
        );
    }

    #[test]
    fn rpm_edge_cases_keep_the_whole_token_as_the_name() {
        check(
            PackageType::Rpm,
            &[
                ("redis-server", pkg("redis-server", "", "", "")),
                // Rosco takes whatever follows the last dot as the arch, even here.
                ("python3.6", pkg("python3.6", "", "", "6")),
                ("kato-1.0", pkg("kato-1.0", "", "", "0")),
                ("a-b-c-1.0-1.x86_64", pkg("a-b-c", "1.0", "1", "x86_64")),
                // Only trailing dots: no arch, and the dots stay in the release.
                ("hello-1-2..", pkg("hello", "1", "2..", "")),
            ],
        );
    }

    #[test]
    fn nupkg_names_parse_like_rosco_specs() {
        check(
            PackageType::Nupkg,
            &[
                ("", OsPackageName::default()),
                (
                    "billinggateway.1.0.1",
                    pkg("billinggateway", "1.0.1", "", ""),
                ),
                (
                    "nflx-djangobase-enhanced.1.0.1-rc1",
                    pkg("nflx-djangobase-enhanced", "1.0.1", "rc1", ""),
                ),
                (
                    "sf-lucifer.en-US.0.0.10-1",
                    pkg("sf-lucifer.en-US", "0.0.10", "1", ""),
                ),
                (
                    "microsoft.aspnet.mvc",
                    pkg("microsoft.aspnet.mvc", "", "", ""),
                ),
                (
                    "microsoft.aspnet.mvc.6",
                    pkg("microsoft.aspnet.mvc", "6", "", ""),
                ),
                (
                    "microsoft.aspnet.mvc.6-rc1-final",
                    pkg("microsoft.aspnet.mvc", "6", "rc1-final", ""),
                ),
                (
                    "microsoft.aspnet.mvc.6.0.0+sf23sdf",
                    pkg("microsoft.aspnet.mvc", "6.0.0", "+sf23sdf", ""),
                ),
                (
                    "microsoft.aspnet.mvc.6.0.0-rc1-final+sf23sdf",
                    pkg("microsoft.aspnet.mvc", "6.0.0", "rc1-final+sf23sdf", ""),
                ),
                (
                    "microsoft-aspnet-mvc",
                    pkg("microsoft-aspnet-mvc", "", "", ""),
                ),
                (
                    "microsoft-aspnet-mvc.6",
                    pkg("microsoft-aspnet-mvc", "6", "", ""),
                ),
                (
                    "microsoft-aspnet-mvc.6-rc1-final",
                    pkg("microsoft-aspnet-mvc", "6", "rc1-final", ""),
                ),
                (
                    "microsoft-aspnet-mvc.6.0.0+sf23sdf",
                    pkg("microsoft-aspnet-mvc", "6.0.0", "+sf23sdf", ""),
                ),
                (
                    "microsoft-aspnet-mvc.6.0.0-rc1-final+sf23sdf",
                    pkg("microsoft-aspnet-mvc", "6.0.0", "rc1-final+sf23sdf", ""),
                ),
            ],
        );
    }

    #[test]
    fn nupkg_file_names_and_edge_cases_follow_rosco_rules() {
        check(
            PackageType::Nupkg,
            &[
                (
                    "ContosoUtilities.ja-JP.1.0.0-rc1.nupkg",
                    pkg("ContosoUtilities.ja-JP", "1.0.0", "rc1", ""),
                ),
                (
                    "notepadplusplus.7.3.nupkg",
                    pkg("notepadplusplus", "7.3", "", ""),
                ),
                (
                    "autohotkey.1.1.24.04.nupkg",
                    pkg("autohotkey", "1.1.24.04", "", ""),
                ),
                (
                    "microsoft-aspnet-mvc.de.3.0.50813.1.nupkg",
                    pkg("microsoft-aspnet-mvc.de", "3.0.50813.1", "", ""),
                ),
                ("hello.nupkg", pkg("hello", "", "", "")),
                ("a..b", pkg("a.b", "", "", "")),
                // No integer part: the first later part starting with a digit and holding `-`.
                ("tool.x.2a-beta", pkg("tool.x", "2a", "beta", "")),
                // Groovy's isInteger stops at 32 bits.
                ("big.99999999999.0", pkg("big.99999999999", "0", "", "")),
                // No version: a `+metadata` part ends the name, later parts are ignored.
                ("a.b+meta.c", pkg("a.b", "", "+meta", "")),
                ("foo+meta.bar.baz", pkg("foo", "", "+meta", "")),
                ("name.2-x", pkg("name", "2", "x", "")),
                ("name.rc-1", pkg("name.rc-1", "", "", "")),
            ],
        );
    }

    #[test]
    fn packages_parameter_qualifies_versioned_packages_and_keeps_bare_names() {
        let deb = |tokens: &str| {
            let names: Vec<_> = tokens
                .split_whitespace()
                .map(|t| PackageType::Deb.parse(t))
                .collect();
            packages_parameter(PackageType::Deb, &names)
        };
        assert_eq!(
            deb("nflx-djangobase-enhanced_0.1-h12.170cdbd_all kato redis-server"),
            "nflx-djangobase-enhanced=0.1-h12.170cdbd kato redis-server"
        );
        assert_eq!(
            deb("nflx-djangobase-enhanced_0.1-3 kato redis-server"),
            "nflx-djangobase-enhanced=0.1-3 kato redis-server"
        );
        assert_eq!(deb("hello_2.3"), "hello=2.3");
        assert_eq!(deb(""), "");
    }

    #[test]
    fn packages_parameter_uses_each_type_separator_and_drops_empty_names() {
        let rpm = PackageType::Rpm.parse("nflx-djangobase-enhanced-0.1-h12.170cdbd.all");
        let nameless = OsPackageName::default();
        assert_eq!(
            packages_parameter(
                PackageType::Rpm,
                &[rpm, nameless.clone(), pkg("kato", "", "", "")]
            ),
            "nflx-djangobase-enhanced-0.1-h12.170cdbd kato"
        );
        let nupkg: Vec<_> = [
            "microsoft.aspnet.mvc.6.0.0-rc1-final+sf23sdf",
            "microsoft.aspnet.mvc.6.0.0+sf23sdf",
            "git",
        ]
        .iter()
        .map(|t| PackageType::Nupkg.parse(t))
        .collect();
        // The release always joins with `-`, so `+metadata` gives `-+` as in Rosco.
        assert_eq!(
            packages_parameter(PackageType::Nupkg, &nupkg),
            "microsoft.aspnet.mvc.6.0.0-rc1-final+sf23sdf microsoft.aspnet.mvc.6.0.0-+sf23sdf git"
        );
        assert_eq!(packages_parameter(PackageType::Deb, &[nameless]), "");
    }

    #[test]
    fn real_package_names_and_versions_are_package_tokens() {
        for ok in [
            "nginx",
            "libstdc++6",
            "hello_2.3-h4.abc123_all",
            "nginx=1.18.0-0ubuntu1",
            "python3:amd64",
            "nginx/jammy-backports",
            "openssl-1:1.0.2k-19.el7.x86_64",
            "g++",
            "microsoft.aspnet.mvc.6.0.0-rc1-final+sf23sdf",
            "vim-enhanced-2:8.0~rc1^git",
            "0ad",
        ] {
            assert_eq!(check_package_token(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn options_shell_syntax_and_odd_characters_are_not_package_tokens() {
        for bad in [
            "-oAPT::Update::Pre-Invoke::=id",
            "--allow-unauthenticated",
            "/etc/passwd",
            ".hidden",
            "a;id",
            "$(id)",
            "`id`",
            "a'b",
            "a\"b",
            "a b",
            "a\tb",
            "a\nb",
            "a|b",
            "a&b",
            "a>b",
            "a*",
            "a,b",
            "a\\b",
            "ünï",
            "",
        ] {
            assert!(check_package_token(bad).is_err(), "{bad:?}");
        }
        let e = check_package_token("-y").unwrap_err();
        assert!(e.contains("must start with a letter or digit"), "{e}");
        let e = check_package_token("a;id").unwrap_err();
        assert!(e.contains("holds ';'"), "{e}");
    }

    fn deb_parts() -> impl Strategy<Value = (String, String, String, String)> {
        (
            "[a-z0-9][a-z0-9+.-]{0,15}",
            "[0-9][a-z0-9.+~]{0,8}",
            "[a-z0-9.+~]{1,10}",
            "[a-z0-9]{1,8}",
        )
    }

    fn rpm_parts() -> impl Strategy<Value = (String, String, String, String)> {
        (
            "[a-z0-9][a-z0-9+._-]{0,15}",
            "[0-9][a-z0-9.+~_]{0,8}",
            // Java's split drops a trailing dot, so a well-formed release doesn't end with one.
            "[a-z0-9]([a-z0-9.+~_]{0,7}[a-z0-9+~_])?",
            "[a-z0-9_]{1,8}",
        )
            .prop_filter("`.rpm` is a file extension", |(_, _, _, arch)| {
                arch != "rpm"
            })
    }

    proptest! {
        #[test]
        fn parse_then_render_gives_a_well_formed_deb_request_back((name, version, release, arch) in deb_parts()) {
            let token = format!("{name}_{version}-{release}_{arch}");
            let parsed = PackageType::Deb.parse(&token);
            prop_assert_eq!(&parsed, &pkg(&name, &version, &release, &arch));
            prop_assert_eq!(packages_parameter(PackageType::Deb, &[parsed]), format!("{name}={version}-{release}"));
        }

        #[test]
        fn parse_then_render_gives_a_well_formed_rpm_request_back((name, version, release, arch) in rpm_parts()) {
            let token = format!("{name}-{version}-{release}.{arch}");
            let parsed = PackageType::Rpm.parse(&token);
            prop_assert_eq!(&parsed, &pkg(&name, &version, &release, &arch));
            prop_assert_eq!(packages_parameter(PackageType::Rpm, &[parsed]), format!("{name}-{version}-{release}"));
        }

        #[test]
        fn well_formed_nupkg_versions_render_back(name in "[a-z][a-z-]{0,10}(\\.[a-z][a-z-]{0,5}){0,2}", version in "[0-9]{1,4}(\\.[0-9]{1,4}){0,3}") {
            prop_assume!(!name.contains("nupkg"));
            let parsed = PackageType::Nupkg.parse(&format!("{name}.{version}.nupkg"));
            prop_assert_eq!(&parsed, &pkg(&name, &version, "", ""));
            prop_assert_eq!(packages_parameter(PackageType::Nupkg, &[parsed]), format!("{name}.{version}"));
        }

        #[test]
        fn parsing_any_text_never_panics_and_never_yields_empty_fields(token in "\\PC{0,40}") {
            for kind in PackageType::ALL {
                let parsed = kind.parse(&token);
                for field in [&parsed.name, &parsed.version, &parsed.release, &parsed.arch] {
                    prop_assert!(field.as_deref() != Some(""));
                }
            }
        }
    }
}
