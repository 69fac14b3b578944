//! CI artifacts as packages. Rosco's behaviour leaves matching artifacts to packages to Orca and
//! only uses artifact names for the image name and appversion; kiln also pins a bare requested
//! package (`hello`) to the version of the one artifact that is that package
//! (`hello_2.3-h4.abc123_all.deb` → `hello=2.3-h4.abc123`), and refuses a request whose
//! artifacts offer two versions of one package, since either choice would be a guess.
//!
//! A requested token is bare when it parses without a version, or when it is exactly the package
//! name of an artifact (rpm names with two hyphens, like `nflx-djangobase-enhanced`, otherwise
//! read as name-version-release).
//!
//! An artifact counts as a package of a type when its `type` is absent, equals the type name
//! (any case), ends with `/<type>` or is `<type>/file`; and when its `name`, else the file name
//! at the end of its `reference`, has the type's extension or parses with a version.

use super::package::{OsPackageName, PackageType};
use crate::bake::{Artifact, present};

/// Packages for a bake once artifacts are taken into account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    /// The requested packages in request order, bare names pinned to their artifact's version.
    pub install: Vec<OsPackageName>,
    /// Every artifact's parsed `name`: after `install`, they name the image and appversion.
    pub from_artifacts: Vec<OsPackageName>,
}

/// Two artifacts offer different versions of one requested package.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "package '{package}' matches two artifacts with different versions: '{first}' and \
     '{second}'; keep one of them in the request"
)]
pub struct ArtifactConflict {
    pub package: String,
    pub first: String,
    pub second: String,
}

/// The package `artifact` carries, if it is a package of type `kind` (see the module rule).
pub fn artifact_package(kind: PackageType, artifact: &Artifact) -> Option<OsPackageName> {
    package_with_source(kind, artifact).map(|(package, _)| package)
}

/// The package and what it was read from: the artifact's `name`, else its whole `reference`.
fn package_with_source(kind: PackageType, artifact: &Artifact) -> Option<(OsPackageName, &str)> {
    if !type_fits(kind, artifact.kind.as_deref()) {
        return None;
    }
    let by_name = present(&artifact.name).map(|name| (name, name));
    let by_reference =
        present(&artifact.reference).and_then(|r| reference_file_name(r).map(|file| (file, r)));
    by_name
        .into_iter()
        .chain(by_reference)
        .find_map(|(file, source)| Some((package_file(kind, file)?, source)))
}

/// Parses the requested tokens, pins bare names to their artifacts, and parses artifact names.
pub fn resolve_packages(
    kind: PackageType,
    requested: &[&str],
    artifacts: &[Artifact],
) -> Result<Resolved, ArtifactConflict> {
    let offers: Vec<Offer> = artifacts
        .iter()
        .filter_map(|a| Offer::of(kind, a))
        .collect();
    let install = requested
        .iter()
        .map(|token| (token, kind.parse(token)))
        .filter(|(_, p)| p.name.is_some())
        .map(|(token, p)| pin(token, p, &offers))
        .collect::<Result<Vec<_>, _>>()?;
    let from_artifacts = artifacts
        .iter()
        .filter_map(|a| present(&a.name))
        .map(|name| kind.parse(name))
        .filter(|p| p.name.is_some())
        .collect();
    Ok(Resolved {
        install,
        from_artifacts,
    })
}

impl Resolved {
    /// The package that names the image and appversion: the first requested, else the first
    /// artifact (Rosco's order).
    pub fn first(&self) -> Option<&OsPackageName> {
        self.install.first().or_else(|| self.from_artifacts.first())
    }
}

/// An artifact that carries a versioned package, with how to name it in an error.
struct Offer {
    package: OsPackageName,
    label: String,
}

impl Offer {
    fn of(kind: PackageType, artifact: &Artifact) -> Option<Offer> {
        let (package, source) = package_with_source(kind, artifact)?;
        package.version.is_some().then(|| Offer {
            package,
            label: source.to_string(),
        })
    }

    fn same_version(&self, other: &Offer) -> bool {
        self.package.version == other.package.version
            && self.package.release == other.package.release
    }
}

/// A bare requested name takes the version of the artifacts that are that package.
fn pin(
    token: &str,
    requested: OsPackageName,
    offers: &[Offer],
) -> Result<OsPackageName, ArtifactConflict> {
    let Some(wanted) = bare_name(token, &requested, offers) else {
        return Ok(requested);
    };
    let mut matching = offers
        .iter()
        .filter(|o| o.package.name.as_deref() == Some(wanted));
    let Some(chosen) = matching.next() else {
        return Ok(requested);
    };
    if let Some(other) = matching.find(|o| !o.same_version(chosen)) {
        return Err(ArtifactConflict {
            package: wanted.to_string(),
            first: chosen.label.clone(),
            second: other.label.clone(),
        });
    }
    Ok(chosen.package.clone())
}

/// The package name a token asks for without a version: the whole token when an artifact is
/// exactly that package (an rpm name such as `nflx-djangobase-enhanced` reads as
/// name-version-release), else the parsed name when the token has no version.
fn bare_name<'a>(
    token: &'a str,
    requested: &'a OsPackageName,
    offers: &[Offer],
) -> Option<&'a str> {
    let token = token.trim();
    if offers
        .iter()
        .any(|o| o.package.name.as_deref() == Some(token))
    {
        return Some(token);
    }
    let unversioned = requested.version.is_none();
    requested.name.as_deref().filter(|_| unversioned)
}

/// No type, `<kind>` in any case, `…/<kind>` or `<kind>/file`: kork's own types
/// (`docker/image`, `http/file`, …) say nothing about the package format, so they don't count.
fn type_fits(kind: PackageType, artifact_type: Option<&str>) -> bool {
    let Some(artifact_type) = artifact_type.map(str::trim).filter(|t| !t.is_empty()) else {
        return true;
    };
    let t = artifact_type.to_ascii_lowercase();
    let k = kind.as_str();
    t == k || t.ends_with(&format!("/{k}")) || t == format!("{k}/file")
}

/// The file name at the end of a reference: its last space-separated field (GCE references are
/// a repository line followed by the package), without query or fragment, after the last `/`.
fn reference_file_name(reference: &str) -> Option<&str> {
    let field = reference.split_whitespace().next_back()?;
    let path = field.split(['?', '#']).next().unwrap_or_default();
    path.rsplit('/').next().filter(|f| !f.is_empty())
}

fn package_file(kind: PackageType, file: &str) -> Option<OsPackageName> {
    let parsed = kind.parse(file);
    let is_package = file.ends_with(kind.file_extension()) || parsed.version.is_some();
    (is_package && parsed.name.is_some()).then_some(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::packages_parameter;
    use proptest::prelude::*;

    fn named(kind: &str, name: &str) -> Artifact {
        Artifact {
            kind: (!kind.is_empty()).then(|| kind.to_string()),
            name: Some(name.to_string()),
            ..Artifact::default()
        }
    }

    fn referenced(kind: &str, reference: &str) -> Artifact {
        Artifact {
            kind: (!kind.is_empty()).then(|| kind.to_string()),
            reference: Some(reference.to_string()),
            ..Artifact::default()
        }
    }

    fn packages(kind: PackageType, requested: &[&str], artifacts: &[Artifact]) -> String {
        let resolved = resolve_packages(kind, requested, artifacts).unwrap();
        packages_parameter(kind, &resolved.install)
    }

    #[test]
    fn a_bare_deb_package_installs_the_version_of_its_artifact() {
        let artifacts = [named("deb", "hello_2.3-h4.abc123_all.deb")];
        assert_eq!(
            packages(PackageType::Deb, &["hello", "kato"], &artifacts),
            "hello=2.3-h4.abc123 kato"
        );
    }

    #[test]
    fn a_bare_rpm_package_installs_the_version_of_its_artifact() {
        let artifacts = [named("rpm", "hello-2.3-h4.abc123.noarch.rpm")];
        assert_eq!(
            packages(PackageType::Rpm, &["kato", "hello"], &artifacts),
            "kato hello-2.3-h4.abc123"
        );
    }

    #[test]
    fn the_file_name_at_the_end_of_the_reference_counts_when_the_name_does_not() {
        let by_reference = referenced(
            "",
            "https://repo.example/pool/h/hello_2.3-h4.abc123_all.deb?sig=x#top",
        );
        assert_eq!(
            packages(PackageType::Deb, &["hello"], &[by_reference]),
            "hello=2.3-h4.abc123"
        );
        let bare_name = Artifact {
            name: Some("hello".into()),
            ..referenced("deb", "s3://b/hello_2.4-1_all.deb")
        };
        assert_eq!(
            packages(
                PackageType::Deb,
                &["hello"],
                std::slice::from_ref(&bare_name)
            ),
            "hello=2.4-1"
        );
        // Named `hello` both, so the error names them by reference.
        let other = Artifact {
            name: Some("hello".into()),
            ..referenced("deb", "s3://b/hello_2.5-1_all.deb")
        };
        let err = resolve_packages(PackageType::Deb, &["hello"], &[bare_name, other]).unwrap_err();
        assert_eq!(
            (err.first.as_str(), err.second.as_str()),
            ("s3://b/hello_2.4-1_all.deb", "s3://b/hello_2.5-1_all.deb")
        );
        let gce_style = referenced(
            "deb",
            "deb http://repo.example stable main hello_2.5-1_all.deb",
        );
        assert_eq!(
            packages(PackageType::Deb, &["hello"], &[gce_style]),
            "hello=2.5-1"
        );
    }

    #[test]
    fn two_versions_of_one_requested_package_are_refused_naming_both_artifacts() {
        let artifacts = [
            named("deb", "hello_2.3-h4.abc123_all.deb"),
            named("deb", "hello_2.4-h5.def456_all.deb"),
        ];
        let err = resolve_packages(PackageType::Deb, &["hello"], &artifacts).unwrap_err();
        assert_eq!(
            err.to_string(),
            "package 'hello' matches two artifacts with different versions: \
             'hello_2.3-h4.abc123_all.deb' and 'hello_2.4-h5.def456_all.deb'; keep one of them in the request"
        );
        let by_release = [
            referenced("", "a/hello_2.3-1_all.deb"),
            referenced("", "b/hello_2.3-2_all.deb"),
        ];
        let err = resolve_packages(PackageType::Deb, &["hello"], &by_release).unwrap_err();
        assert_eq!(
            (err.first.as_str(), err.second.as_str()),
            ("a/hello_2.3-1_all.deb", "b/hello_2.3-2_all.deb")
        );
    }

    #[test]
    fn artifacts_agreeing_on_the_version_or_not_requested_bare_are_fine() {
        let same = [
            named("deb", "hello_2.3-1_all.deb"),
            named("deb", "hello_2.3-1_amd64.deb"),
        ];
        assert_eq!(packages(PackageType::Deb, &["hello"], &same), "hello=2.3-1");
        let differing = [
            named("deb", "hello_2.3-1_all.deb"),
            named("deb", "hello_2.4-1_all.deb"),
        ];
        assert_eq!(
            packages(PackageType::Deb, &["hello_2.2-1", "kato"], &differing),
            "hello=2.2-1 kato"
        );
    }

    #[test]
    fn artifacts_of_another_type_are_not_packages() {
        let artifact = named("rpm", "hello_2.3-1_all.deb");
        assert_eq!(artifact_package(PackageType::Deb, &artifact), None);
        for kind in ["docker/image", "http/file", "gcs/object", "debian"] {
            assert_eq!(
                artifact_package(PackageType::Deb, &named(kind, "hello_2.3-1_all.deb")),
                None,
                "{kind}"
            );
        }
        for kind in ["", "deb", "DEB", "custom/deb", "deb/file", " Deb "] {
            assert!(
                artifact_package(PackageType::Deb, &named(kind, "hello_2.3-1_all.deb")).is_some(),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn an_artifact_is_a_package_by_its_extension_or_a_version() {
        let deb = PackageType::Deb;
        assert_eq!(artifact_package(deb, &named("", "hello")), None);
        assert_eq!(
            artifact_package(deb, &referenced("", "https://repo.example/")),
            None
        );
        assert_eq!(artifact_package(deb, &Artifact::default()), None);
        let no_version = artifact_package(deb, &named("", "hello.deb")).unwrap();
        assert_eq!(
            (no_version.name.as_deref(), no_version.version),
            (Some("hello"), None)
        );
        let versioned = artifact_package(deb, &named("", "hello_1.0")).unwrap();
        assert_eq!(versioned.version.as_deref(), Some("1.0"));
        let nupkg = artifact_package(PackageType::Nupkg, &named("nupkg", "tool.nupkg")).unwrap();
        assert_eq!(nupkg.name.as_deref(), Some("tool"));
    }

    #[test]
    fn artifact_names_follow_the_requested_packages_for_naming() {
        let artifacts = [
            named("deb", "hello_2.3-1_all.deb"),
            referenced("deb", "x/other_1.0_all.deb"),
            named("", ""),
        ];
        let resolved = resolve_packages(PackageType::Deb, &["", "kato"], &artifacts).unwrap();
        assert_eq!(resolved.install, vec![PackageType::Deb.parse("kato")]);
        assert_eq!(
            resolved.from_artifacts,
            vec![PackageType::Deb.parse("hello_2.3-1_all")]
        );
        assert_eq!(resolved.first(), Some(&PackageType::Deb.parse("kato")));
        let only_artifacts = resolve_packages(PackageType::Deb, &[], &artifacts).unwrap();
        assert_eq!(
            only_artifacts.first().and_then(|p| p.name.as_deref()),
            Some("hello")
        );
        assert_eq!(
            resolve_packages(PackageType::Deb, &[], &[])
                .unwrap()
                .first(),
            None
        );
    }

    #[test]
    fn an_rpm_name_with_hyphens_is_bare_when_an_artifact_is_that_package() {
        let artifacts = [named(
            "rpm",
            "nflx-djangobase-enhanced-0.1-h12.170cdbd.all.rpm",
        )];
        assert_eq!(
            packages(PackageType::Rpm, &["nflx-djangobase-enhanced"], &artifacts),
            "nflx-djangobase-enhanced-0.1-h12.170cdbd"
        );
        let twice = [
            artifacts[0].clone(),
            named("rpm", "nflx-djangobase-enhanced-0.2-1.all"),
        ];
        let err =
            resolve_packages(PackageType::Rpm, &["nflx-djangobase-enhanced"], &twice).unwrap_err();
        assert_eq!(err.package, "nflx-djangobase-enhanced");
    }

    #[test]
    fn a_pinned_package_keeps_the_artifact_arch_for_the_image_name() {
        let artifacts = [named("deb", "hello_2.3-1_amd64.deb")];
        let resolved = resolve_packages(PackageType::Deb, &["hello"], &artifacts).unwrap();
        assert_eq!(resolved.install[0].arch.as_deref(), Some("amd64"));
    }

    proptest! {
        #[test]
        fn any_single_artifact_version_is_installed_for_its_bare_name(
            name in "[a-z][a-z0-9+.-]{0,12}",
            version in "[0-9][a-z0-9.+~]{0,8}",
            release in "[a-z0-9.+~]{0,7}[a-z0-9+~]",
        ) {
            let deb = [named("deb", &format!("{name}_{version}-{release}_all.deb"))];
            prop_assert_eq!(packages(PackageType::Deb, &[&name], &deb), format!("{name}={version}-{release}"));
            let rpm = [referenced("rpm", &format!("https://r/{name}-{version}-{release}.x86_64.rpm"))];
            prop_assert_eq!(packages(PackageType::Rpm, &[&name], &rpm), format!("{name}-{version}-{release}"));
        }
    }
}
