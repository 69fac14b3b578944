//! Input artifacts of a manifest bake. With `services.clouddriver.baseUrl`, as Rosco: Clouddriver
//! fetches every artifact (`PUT /artifacts/fetch/`). Without it, kiln fetches the kinds it can by
//! itself: `embedded/base64`, `http/file`, `git/repo` (a shallow clone with Debian's `git`, then
//! `git archive`, unpacked like Clouddriver's tarball) and `helm/chart` (a Helm repository's
//! `index.yaml`, then the chart). Every fetch is bounded: the bake's deadline, a byte cap,
//! at most three redirects, http(s) only (`file://` when the operator allows it), and `git`
//! speaks no other protocol (no `ext::` commands).

use super::request::Artifact;
use super::run::{self, Bounds, RunError};
use crate::services::clouddriver::Clouddriver;
use base64::Engine;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

/// Why an artifact could not be had.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FetchError {
    /// The request named something kiln cannot fetch: a 400.
    #[error("{0}")]
    Invalid(String),
    /// The source answered with this HTTP status (Rosco passes Clouddriver's on: a 404 stays
    /// a 404).
    #[error("{1}")]
    Status(u16, String),
    #[error("{0}")]
    Failed(String),
}

/// The limits of one bake's fetches.
#[derive(Debug, Clone)]
pub struct Fetcher {
    pub clouddriver: Option<Clouddriver>,
    pub deadline: Instant,
    pub max_bytes: u64,
    pub allow_file_urls: bool,
}

/// Redirects followed at most per fetch.
pub const MAX_REDIRECTS: usize = 3;

/// The host and port of an http(s) URL.
fn host_port(url: &str) -> Option<(String, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let default = if scheme == "https" { 443 } else { 80 };
    if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = after
            .strip_prefix(':')
            .and_then(|p| p.parse().ok())
            .unwrap_or(default);
        return Some((host.to_string(), port));
    }
    match hostport.rsplit_once(':') {
        Some((h, p)) => Some((h.to_string(), p.parse().ok()?)),
        None => Some((hostport.to_string(), default)),
    }
}

/// Whether an address is link-local: where cloud instance metadata (and its credentials)
/// answers (169.254.169.254, fd00:ec2::254, fe80::/10).
pub fn is_link_local(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.is_link_local(),
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            (s[0] & 0xffc0) == 0xfe80
                || v6 == std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
                || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_link_local())
        }
    }
}

/// Refuses a URL whose host is (or resolves to) a link-local address: a request must not make
/// kiln read the instance metadata service (its cloud credentials) into a manifest.
pub fn check_host(url: &str) -> Result<(), FetchError> {
    use std::net::ToSocketAddrs;
    let Some((host, port)) = host_port(url) else {
        return Ok(());
    };
    // A name that does not resolve fails at the fetch itself, with the client's own error.
    let addrs: Vec<_> = (host.as_str(), port)
        .to_socket_addrs()
        .map(|a| a.collect())
        .unwrap_or_default();
    if addrs.iter().any(|a| is_link_local(a.ip())) {
        return Err(FetchError::Invalid(format!(
            "{}: kiln does not fetch from link-local addresses (instance metadata)",
            shown_url(url)
        )));
    }
    Ok(())
}

/// A redirect's `Location` against the URL that answered it.
fn join_url(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("http", base));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if let Some(path) = location.strip_prefix("//") {
        return format!("{scheme}://{path}");
    }
    if location.starts_with('/') {
        return format!("{scheme}://{authority}{location}");
    }
    let path = rest[authority.len()..]
        .split(['?', '#'])
        .next()
        .unwrap_or("");
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    format!("{scheme}://{authority}{dir}/{location}")
}

/// A URL as it may be shown: without its user-info (a token or password).
pub fn shown_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return crate::telemetry::escaped(url);
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let masked = if host.len() != authority.len() {
        "******@"
    } else {
        ""
    };
    crate::telemetry::escaped(&format!("{scheme}://{masked}{host}{tail}"))
}

impl Fetcher {
    fn remaining(&self) -> Duration {
        self.deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(100))
    }

    /// The artifact's bytes (a chart archive, a values file, a manifest template).
    pub fn bytes(&self, a: &Artifact, what: &str) -> Result<Vec<u8>, FetchError> {
        if let Some(cd) = &self.clouddriver {
            return self.through_clouddriver(cd, a);
        }
        match a.kind() {
            "embedded/base64" => self.embedded(a, what),
            "http/file" => self.http(reference(a, what)?),
            "helm/chart" => self.helm_chart(a, what),
            other => Err(FetchError::Invalid(format!(
                "{what}: kiln fetches artifacts of type {} only through Clouddriver \
                 (services.clouddriver.baseUrl); by itself it fetches embedded/base64, http/file, \
                 git/repo (as the chart or kustomization) and helm/chart",
                crate::telemetry::escaped(other)
            ))),
        }
    }

    /// A git/repo artifact unpacked into `dest` (paths as in the repository: a subpath from
    /// `location` or `metadata.subPath` keeps its prefix, as Clouddriver's tarball does).
    pub fn tree(
        &self,
        a: &Artifact,
        what: &str,
        dest: &Path,
        work: &Path,
    ) -> Result<(), FetchError> {
        let tgz = match &self.clouddriver {
            Some(cd) => self.through_clouddriver(cd, a)?,
            None => self.git_archive(a, what, work)?,
        };
        super::archive::unpack_tgz(&tgz, dest, self.max_bytes.saturating_mul(4))
            .map_err(|e| FetchError::Failed(format!("{what}: {e}")))
    }

    fn through_clouddriver(&self, cd: &Clouddriver, a: &Artifact) -> Result<Vec<u8>, FetchError> {
        let json = serde_json::to_value(a).map_err(|e| FetchError::Failed(e.to_string()))?;
        cd.fetch_artifact(&json, self.max_bytes, self.deadline)
            .map_err(|e| match e.status {
                Some(status @ 400..=499) => FetchError::Status(status, e.to_string()),
                _ => FetchError::Failed(e.to_string()),
            })
    }

    fn embedded(&self, a: &Artifact, what: &str) -> Result<Vec<u8>, FetchError> {
        let text: String = reference(a, what)?
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        if text.len() as u64 > self.max_bytes.saturating_mul(4) / 3 + 4 {
            return Err(FetchError::Invalid(format!(
                "{what}: the embedded artifact is over {} bytes (kiln.manifests.maxArtifactBytes)",
                self.max_bytes
            )));
        }
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(|e| FetchError::Invalid(format!("{what}.reference: not base64: {e}")))
    }

    /// GET of an http(s) URL (or a `file://` one when allowed), capped. Redirects are followed
    /// here (at most [`MAX_REDIRECTS`]), so that every hop passes [`check_host`].
    fn http(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        if let Some(path) = url.strip_prefix("file://") {
            if !self.allow_file_urls {
                return Err(FetchError::Invalid(format!(
                    "{}: file:// URLs are off (kiln.manifests.allowFileUrls)",
                    shown_url(url)
                )));
            }
            return self.file(path);
        }
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(self.remaining()))
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .new_agent();
        let mut url = url.to_string();
        for _ in 0..=MAX_REDIRECTS {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(FetchError::Invalid(format!(
                    "{}: only http:// and https:// URLs are fetched",
                    shown_url(&url)
                )));
            }
            check_host(&url)?;
            let mut resp = agent
                .get(&url)
                .call()
                .map_err(|e| FetchError::Failed(format!("GET {}: {e}", shown_url(&url))))?;
            let status = resp.status().as_u16();
            if (300..400).contains(&status)
                && let Some(location) = resp.headers().get("location").and_then(|l| l.to_str().ok())
            {
                url = join_url(&url, location);
                continue;
            }
            if !(200..300).contains(&status) {
                return Err(FetchError::Status(
                    status,
                    format!("GET {}: HTTP {status}", shown_url(&url)),
                ));
            }
            return resp
                .body_mut()
                .with_config()
                .limit(self.max_bytes)
                .read_to_vec()
                .map_err(|e| {
                    FetchError::Failed(format!(
                        "GET {}: over {} bytes (kiln.manifests.maxArtifactBytes) or unreadable: {e}",
                        shown_url(&url),
                        self.max_bytes
                    ))
                });
        }
        Err(FetchError::Failed(format!(
            "GET {}: more than {MAX_REDIRECTS} redirects",
            shown_url(&url)
        )))
    }

    fn file(&self, path: &str) -> Result<Vec<u8>, FetchError> {
        let failed = |e: std::io::Error| FetchError::Failed(format!("file://{path}: {e}"));
        let file = std::fs::File::open(path).map_err(failed)?;
        let mut buf = Vec::new();
        file.take(self.max_bytes + 1)
            .read_to_end(&mut buf)
            .map_err(failed)?;
        if buf.len() as u64 > self.max_bytes {
            return Err(FetchError::Failed(format!(
                "file://{path}: over {} bytes (kiln.manifests.maxArtifactBytes)",
                self.max_bytes
            )));
        }
        Ok(buf)
    }

    /// Clouddriver's `HelmArtifactCredentials` without Clouddriver: the repository's URL is
    /// the artifact's `location` (or `reference`), `name` the chart, `version` its version
    /// (the newest listed when absent).
    fn helm_chart(&self, a: &Artifact, what: &str) -> Result<Vec<u8>, FetchError> {
        let repo = [a.location.as_deref(), a.reference.as_deref()]
            .into_iter()
            .flatten()
            .find(|u| u.contains("://"))
            .ok_or_else(|| {
                FetchError::Invalid(format!(
                    "{what}: a helm/chart artifact needs the repository URL in location (or \
                     reference) when kiln has no Clouddriver (services.clouddriver.baseUrl)"
                ))
            })?;
        let name = a.name.as_deref().filter(|n| !n.is_empty()).ok_or_else(|| {
            FetchError::Invalid(format!("{what}.name: the chart's name is required"))
        })?;
        let base = repo.trim_end_matches('/');
        let index = self.http(&format!("{base}/index.yaml"))?;
        let url = chart_url(&index, name, a.version.as_deref()).map_err(|e| {
            FetchError::Failed(format!("{what}: {}/index.yaml: {e}", shown_url(base)))
        })?;
        let url = if url.contains("://") {
            url
        } else {
            format!("{base}/{}", url.trim_start_matches('/'))
        };
        self.http(&url)
    }

    /// Clouddriver's `GitRepoArtifactCredentials` without Clouddriver: the repository at
    /// `version` (default `master`), the subpath from `location` or `metadata.subPath`, as a
    /// .tar.gz. A bare, shallow clone (no working tree written), bounded by the bake's deadline;
    /// the archive is capped like any artifact.
    fn git_archive(&self, a: &Artifact, what: &str, work: &Path) -> Result<Vec<u8>, FetchError> {
        let url = reference(a, what)?;
        let allowed = if self.allow_file_urls {
            "http:https:file"
        } else {
            "http:https"
        };
        let scheme_ok = url.starts_with("https://")
            || url.starts_with("http://")
            || (self.allow_file_urls && url.starts_with("file://"));
        if !scheme_ok {
            return Err(FetchError::Invalid(format!(
                "{what}.reference: kiln clones git repositories over http(s) only{} : {}",
                if self.allow_file_urls {
                    " or file://"
                } else {
                    ""
                },
                shown_url(url)
            )));
        }
        if !url.starts_with("file://") {
            check_host(url)?;
        }
        let version = a
            .version
            .as_deref()
            .filter(|v| !v.is_empty())
            .unwrap_or("master");
        let sub_path = a.location.clone().filter(|l| !l.is_empty()).or_else(|| {
            a.metadata
                .get("subPath")
                .and_then(|v| v.as_str())
                .map(String::from)
        });
        let sub_path = super::request::relative_path(&format!("{what}.location"), &sub_path)
            .map_err(|e| FetchError::Invalid(e.0))?;
        if version.starts_with('-') {
            return Err(FetchError::Invalid(format!(
                "{what}.version: must not start with '-'"
            )));
        }
        let clone = tempfile::Builder::new()
            .prefix("git-")
            .tempdir_in(work)
            .map_err(|e| FetchError::Failed(e.to_string()))?;
        // Credentials in the URL never go on git's command line (where any local user reads
        // them): the URL loses its user-info, which travels as an HTTP header in git's
        // environment instead.
        let (url, userinfo) = split_userinfo(url);
        let mut env = vec![
            ("GIT_ALLOW_PROTOCOL", allowed.to_string()),
            ("GIT_TERMINAL_PROMPT", "0".to_string()),
            ("GIT_CONFIG_NOSYSTEM", "1".to_string()),
            ("GIT_CONFIG_GLOBAL", "/dev/null".to_string()),
        ];
        if let Some(userinfo) = &userinfo {
            let basic = base64::engine::general_purpose::STANDARD.encode(userinfo);
            env.extend([
                ("GIT_CONFIG_COUNT", "1".to_string()),
                ("GIT_CONFIG_KEY_0", "http.extraHeader".to_string()),
                (
                    "GIT_CONFIG_VALUE_0",
                    format!("Authorization: Basic {basic}"),
                ),
            ]);
        }
        let url = url.as_str();
        let bounds = Bounds {
            deadline: self.deadline,
            max_stdout: 1 << 20,
        };
        let argv: Vec<String> = [
            "git",
            "clone",
            "--quiet",
            "--bare",
            "--depth",
            "1",
            "--no-tags",
            "--single-branch",
            "--branch",
            version,
            "--",
            url,
            ".",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        run::run(&argv, clone.path(), &env, bounds).map_err(|e| git_error(what, url, e))?;
        let mut archive: Vec<String> = ["git", "archive", "--format=tar.gz", "HEAD"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if let Some(sub) = sub_path {
            archive.extend(["--".to_string(), sub]);
        }
        let bounds = Bounds {
            deadline: self.deadline,
            max_stdout: self.max_bytes,
        };
        run::run(&archive, clone.path(), &env, bounds).map_err(|e| git_error(what, url, e))
    }
}

/// `https://user:token@host/r.git` → (`https://host/r.git`, `Some("user:token")`), percent
/// escapes in the user-info decoded.
pub fn split_userinfo(url: &str) -> (String, Option<String>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_string(), None);
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let decoded: Vec<u8> =
                form_urlencoded::parse(format!("x={}", userinfo.replace('+', "%2B")).as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned().into_bytes())
                    .unwrap_or_default();
            (
                format!("{scheme}://{host}{tail}"),
                Some(String::from_utf8_lossy(&decoded).into_owned()),
            )
        }
        None => (url.to_string(), None),
    }
}

fn git_error(what: &str, url: &str, e: RunError) -> FetchError {
    // git prints the URL it was given, user-info included: mask it.
    let text = e.to_string();
    let text = match url.split_once("://").and_then(|(_, r)| r.split_once('@')) {
        Some((userinfo, _)) if !userinfo.is_empty() => text.replace(userinfo, "******"),
        _ => text,
    };
    FetchError::Failed(format!("{what}: cloning {}: {text}", shown_url(url)))
}

fn reference<'a>(a: &'a Artifact, what: &str) -> Result<&'a str, FetchError> {
    a.reference
        .as_deref()
        .filter(|r| !r.is_empty())
        .ok_or_else(|| {
            FetchError::Invalid(format!(
                "{what}.reference: Input artifact has an empty 'reference' field."
            ))
        })
}

/// The download URL of chart `name` at `version` (else the first listed, which Helm's index
/// keeps newest first) in a Helm repository's `index.yaml`.
pub fn chart_url(index: &[u8], name: &str, version: Option<&str>) -> Result<String, String> {
    let doc: serde_norway::Value =
        serde_norway::from_slice(index).map_err(|e| format!("not a Helm repository index: {e}"))?;
    let entries = doc
        .get("entries")
        .and_then(|e| e.get(name))
        .and_then(|e| e.as_sequence())
        .ok_or_else(|| format!("no chart named {}", crate::telemetry::escaped(name)))?;
    let wanted = version.filter(|v| !v.is_empty());
    let entry = entries
        .iter()
        .find(|e| match wanted {
            None => true,
            Some(v) => e.get("version").and_then(|x| x.as_str()) == Some(v),
        })
        .ok_or_else(|| {
            format!(
                "chart {} has no version {}",
                crate::telemetry::escaped(name),
                crate::telemetry::escaped(wanted.unwrap_or(""))
            )
        })?;
    entry
        .get("urls")
        .and_then(|u| u.as_sequence())
        .and_then(|u| u.first())
        .and_then(|u| u.as_str())
        .map(String::from)
        .ok_or_else(|| "the chart's entry lists no URL".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetcher() -> Fetcher {
        Fetcher {
            clouddriver: None,
            deadline: Instant::now() + Duration::from_secs(10),
            max_bytes: 1000,
            allow_file_urls: false,
        }
    }

    fn artifact(kind: &str, reference: &str) -> Artifact {
        Artifact {
            kind: Some(kind.into()),
            reference: Some(reference.into()),
            ..Artifact::default()
        }
    }

    #[test]
    fn embedded_artifacts_are_decoded_and_capped() {
        let f = fetcher();
        let a = artifact("embedded/base64", "aGVsbG8=");
        assert_eq!(f.bytes(&a, "inputArtifacts[0]").unwrap(), b"hello");
        let big = base64::engine::general_purpose::STANDARD.encode(vec![0u8; 5000]);
        let e = f
            .bytes(&artifact("embedded/base64", &big), "x")
            .unwrap_err();
        assert!(
            matches!(e, FetchError::Invalid(ref t) if t.contains("maxArtifactBytes")),
            "{e}"
        );
        let e = f
            .bytes(&artifact("embedded/base64", "%%%"), "x")
            .unwrap_err();
        assert!(
            matches!(e, FetchError::Invalid(ref t) if t.contains("x.reference: not base64")),
            "{e}"
        );
    }

    #[test]
    fn kinds_kiln_cannot_fetch_alone_say_what_to_configure() {
        let e = fetcher()
            .bytes(&artifact("s3/object", "s3://b/k"), "inputArtifacts[1]")
            .unwrap_err();
        assert!(
            matches!(e, FetchError::Invalid(ref t) if t.starts_with("inputArtifacts[1]: ") && t.contains("services.clouddriver.baseUrl")),
            "{e}"
        );
    }

    #[test]
    fn file_urls_need_the_operators_consent_and_other_schemes_are_refused() {
        let f = fetcher();
        let e = f
            .bytes(&artifact("http/file", "file:///etc/passwd"), "x")
            .unwrap_err();
        assert!(
            matches!(e, FetchError::Invalid(ref t) if t.contains("allowFileUrls")),
            "{e}"
        );
        let e = f
            .bytes(&artifact("http/file", "gopher://x/"), "x")
            .unwrap_err();
        assert!(matches!(e, FetchError::Invalid(_)), "{e}");
        let mut f = fetcher();
        f.allow_file_urls = true;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("values.yaml");
        std::fs::write(&path, "a: 1\n").unwrap();
        let url = format!("file://{}", path.display());
        assert_eq!(
            f.bytes(&artifact("http/file", &url), "x").unwrap(),
            b"a: 1\n"
        );
    }

    #[test]
    fn git_refuses_other_transports_and_option_like_versions() {
        let dir = tempfile::tempdir().unwrap();
        let f = fetcher();
        for url in [
            "ext::sh -c touch% /tmp/pwned",
            "file:///srv/repo.git",
            "-uhttp://x",
        ] {
            let e = f
                .tree(
                    &artifact("git/repo", url),
                    "inputArtifact",
                    dir.path(),
                    dir.path(),
                )
                .unwrap_err();
            assert!(matches!(e, FetchError::Invalid(_)), "{url}: {e}");
        }
        let mut a = artifact("git/repo", "https://example.invalid/r.git");
        a.version = Some("--upload-pack=touch /tmp/x".into());
        let e = f
            .tree(&a, "inputArtifact", dir.path(), dir.path())
            .unwrap_err();
        assert!(
            matches!(e, FetchError::Invalid(ref t) if t.contains("version")),
            "{e}"
        );
    }

    #[test]
    fn credentials_leave_the_url_for_the_environment() {
        assert_eq!(
            split_userinfo("https://bot:t%40k+n@git.example/r.git?x=@"),
            (
                "https://git.example/r.git?x=@".to_string(),
                Some("bot:t@k+n".to_string())
            )
        );
        assert_eq!(
            split_userinfo("https://git.example/r.git"),
            ("https://git.example/r.git".to_string(), None)
        );
    }

    #[test]
    fn the_instance_metadata_service_is_never_fetched() {
        for url in [
            "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            "http://[fe80::1]:8080/x",
            "http://[fd00:ec2::254]/latest",
            "http://user:pw@169.254.170.2/v2/credentials",
        ] {
            let e = check_host(url).unwrap_err();
            assert!(
                matches!(e, FetchError::Invalid(ref t) if t.contains("link-local")),
                "{url}: {e}"
            );
            let e = fetcher()
                .bytes(&artifact("http/file", url), "x")
                .unwrap_err();
            assert!(matches!(e, FetchError::Invalid(_)), "{url}: {e}");
        }
        assert!(check_host("http://127.0.0.1:1/x").is_ok());
        assert_eq!(
            join_url("http://h:1/a/b?q", "c.yaml"),
            "http://h:1/a/c.yaml"
        );
        assert_eq!(join_url("http://h:1/a/b", "/c"), "http://h:1/c");
        assert_eq!(join_url("http://h/a", "https://o/x"), "https://o/x");
        assert_eq!(join_url("https://h/a", "//o/x"), "https://o/x");
    }

    #[test]
    fn urls_are_shown_without_credentials() {
        assert_eq!(
            shown_url("https://user:tok@git.example/r.git"),
            "'https://******@git.example/r.git'"
        );
        assert_eq!(shown_url("http://h/x@y"), "'http://h/x@y'");
    }

    #[test]
    fn a_chart_is_found_in_a_repository_index() {
        let index = b"apiVersion: v1\nentries:\n  web:\n  - version: 1.2.0\n    urls: [web-1.2.0.tgz]\n  - version: 1.1.0\n    urls: [https://cdn.example/web-1.1.0.tgz]\n";
        assert_eq!(
            chart_url(index, "web", Some("1.1.0")).unwrap(),
            "https://cdn.example/web-1.1.0.tgz"
        );
        assert_eq!(chart_url(index, "web", None).unwrap(), "web-1.2.0.tgz");
        assert!(
            chart_url(index, "web", Some("9"))
                .unwrap_err()
                .contains("no version '9'")
        );
        assert!(
            chart_url(index, "db", None)
                .unwrap_err()
                .contains("no chart named 'db'")
        );
    }
}
