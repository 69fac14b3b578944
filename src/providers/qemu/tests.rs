//! Unit tests of the qemu provider's request checks and package plan.

use super::*;
use crate::providers::staged::file_path;

fn artifact(reference: &str) -> Artifact {
    Artifact {
        kind: Some("deb".into()),
        reference: Some(reference.into()),
        ..Artifact::default()
    }
}

fn deb_file(dir: &std::path::Path, name: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, b"not really a deb").unwrap();
    format!("file://{}", path.display())
}

#[test]
fn local_and_remote_package_files_are_staged_others_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let local = deb_file(dir.path(), "app_1.0_all.deb");
    let arts = [
        artifact(&local),
        artifact("https://ci.example/x/lib%2Bx_2.0_amd64.deb?token=1"),
        artifact("gs://bucket/y_1.0_all.deb"),
        artifact("https://ci.example/readme.txt"),
    ];
    let staged = staged_artifacts(PackageType::Deb, &arts).unwrap();
    assert_eq!(staged.len(), 2);
    assert_eq!(staged[0].file_name, "app_1.0_all.deb");
    assert_eq!(staged[0].package.name.as_deref(), Some("app"));
    assert!(matches!(staged[0].source, Source::File(_)));
    assert_eq!(staged[1].file_name, "lib+x_2.0_amd64.deb");
    assert_eq!(
        staged[1].guest_path(),
        "/tmp/kiln-artifacts/lib+x_2.0_amd64.deb"
    );
}

#[test]
fn missing_disguised_or_duplicate_artifacts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = staged_artifacts(
        PackageType::Deb,
        &[artifact("file:///nonexistent/a_1_all.deb")],
    )
    .unwrap_err();
    assert!(e.to_string().contains("cannot be read"), "{e}");

    let link = dir.path().join("secret_1_all.deb");
    std::os::unix::fs::symlink("/etc/hostname", &link).unwrap();
    let e = staged_artifacts(
        PackageType::Deb,
        &[artifact(&format!("file://{}", link.display()))],
    )
    .unwrap_err();
    assert!(e.to_string().contains("must be a .deb file"), "{e}");

    let one = deb_file(dir.path(), "a_1_all.deb");
    let e = staged_artifacts(
        PackageType::Deb,
        &[artifact(&one), artifact("http://h/x/a_1_all.deb")],
    )
    .unwrap_err();
    assert!(e.to_string().contains("two package artifacts"), "{e}");
}

#[test]
fn file_digests_join_the_identity_and_a_wrong_digest_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let local = deb_file(dir.path(), "app_1.0_all.deb");
    let with = with_digests(PackageType::Deb, &[artifact(&local)]).unwrap();
    let digest = with[0].metadata.as_ref().unwrap()["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(digest.len(), 64);

    let mut wrong = artifact(&local);
    let mut meta = serde_json::Map::new();
    meta.insert("sha256".into(), "00".repeat(32).into());
    wrong.metadata = Some(meta);
    let e = with_digests(PackageType::Deb, &[wrong]).unwrap_err();
    assert!(e.to_string().contains("not the metadata.sha256"), "{e}");
}

#[test]
fn requested_packages_come_from_their_artifact_then_the_rest_follow() {
    let dir = tempfile::tempdir().unwrap();
    let arts = [
        artifact(&deb_file(dir.path(), "dep_0.1_all.deb")),
        artifact(&deb_file(dir.path(), "app_1.0_all.deb")),
    ];
    let staged = staged_artifacts(PackageType::Deb, &arts).unwrap();
    let install = [
        PackageType::Deb.parse("app"),
        PackageType::Deb.parse("curl"),
    ];
    assert_eq!(
        packages_variable(PackageType::Deb, &install, &staged),
        "/tmp/kiln-artifacts/app_1.0_all.deb curl /tmp/kiln-artifacts/dep_0.1_all.deb"
    );
    let req = BakeRequest {
        package_name: Some("app curl".into()),
        package_artifacts: Some(arts.to_vec()),
        ..BakeRequest::default()
    };
    assert_eq!(
        installed_names(PackageType::Deb, &req),
        ["app", "curl", "dep"]
    );
}

#[test]
fn boot_test_and_kiln_owned_attributes_are_checked() {
    let mut req = BakeRequest::default();
    assert!(!boot_test_requested(&req).unwrap());
    let mut attrs = std::collections::BTreeMap::new();
    attrs.insert(BOOT_TEST.to_string(), serde_json::Value::Bool(true));
    req.extended_attributes = Some(attrs.clone());
    assert!(boot_test_requested(&req).unwrap());
    attrs.insert(BOOT_TEST.to_string(), "maybe".into());
    req.extended_attributes = Some(attrs);
    assert!(boot_test_requested(&req).is_err());

    assert!(check_image_name("app-all-1700000000000-bookworm").is_ok());
    assert!(check_image_name("../x").is_err());
    assert_eq!(
        file_path("file:/a/b%20c.deb"),
        Some(PathBuf::from("/a/b c.deb"))
    );
    assert_eq!(
        file_path("file://localhost/a.deb"),
        Some(PathBuf::from("/a.deb"))
    );
    assert_eq!(file_path("file://relative.deb"), None);
}
