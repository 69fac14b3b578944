//! The `appversion` tag of a baked image, following Rosco's behaviour: the first package's name,
//! then (only with a version) `<version>`, the CI build number, the commit hash and
//! `/<job>/<build number>`, joined with the package type's separators. The tag is kept only when
//! it reads as a Netflix frigga `AppVersion`; otherwise there is no appversion (Spinnaker's
//! clusters and Deck read the tag with frigga, so an unreadable one is worse than none).

use super::package::{OsPackageName, PackageType};
use crate::bake::{BakeRequest, present};

/// The appversion for a bake of `first`, or `None` when it would not parse as a frigga
/// `AppVersion` (a package without a version never does).
pub fn app_version(
    req: &BakeRequest,
    first: Option<&OsPackageName>,
    kind: PackageType,
) -> Option<String> {
    let first = first?;
    let mut tag = present(&first.name)?.to_string();
    if let Some(version) = present(&first.version) {
        tag.push_str(kind.version_separator());
        tag.push_str(version);
        // The commit and job only make sense for a CI build, so both need a build number.
        if let Some(build) = present(&req.build_number) {
            tag.push_str(&build_suffix(req, build, kind));
        }
    }
    is_frigga_app_version(&tag).then_some(tag)
}

fn build_suffix(req: &BakeRequest, build: &str, kind: PackageType) -> String {
    let mut suffix = format!("{}{build}", kind.build_number_separator());
    if let Some(commit) = present(&req.commit_hash) {
        suffix.push_str(kind.commit_separator());
        suffix.push_str(commit);
    }
    if let Some(job) = present(&req.job) {
        // Jenkins folders and Travis jobs hold `/`, which would end frigga's job group early.
        suffix.push_str(&format!("/{}/{build}", job.replace('/', "-")));
    }
    suffix
}

/// Whether `tag` matches, as a whole, frigga's `AppVersion` pattern
/// `([N]+)-([0-9.a-zA-Z~]+)-(\w+)(?:[.](\w+))?(?:/([N]+)/([0-9]+))?`, where `N` is frigga's
/// `NAME_HYPHEN_CHARS` (`-a-zA-Z0-9._~^`) and `\w` is ASCII `[a-zA-Z0-9_]`.
///
/// No group before the job holds `/`, and neither the version nor the build groups hold `-`, so
/// the slashes and the last two hyphens decide the match: no backtracking is needed.
///
/// Kept hand-written rather than built on the `regex` crate: this is kiln's only pattern, the
/// split on `/` and the last two `-` follows frigga's groups one to one (so it reads as the
/// pattern above and runs in one pass), and the property tests below pin it to the pattern's
/// character classes. A regex dependency would add a compiled automaton and a second spelling
/// of the same pattern for no gain.
pub(crate) fn is_frigga_app_version(tag: &str) -> bool {
    let mut pieces = tag.split('/');
    let head = pieces.next().unwrap_or_default();
    let job_ok = match (pieces.next(), pieces.next(), pieces.next()) {
        (None, _, _) => true,
        (Some(job), Some(number), None) => {
            all(job, is_name_char) && all(number, |c| c.is_ascii_digit())
        }
        _ => false,
    };
    job_ok && is_name_version_build(head)
}

/// `name-version-build[.commit]`.
fn is_name_version_build(head: &str) -> bool {
    let Some((name_version, build)) = head.rsplit_once('-') else {
        return false;
    };
    let Some((name, version)) = name_version.rsplit_once('-') else {
        return false;
    };
    let (build, commit) = match build.split_once('.') {
        Some((build, commit)) => (build, Some(commit)),
        None => (build, None),
    };
    all(name, is_name_char)
        && all(version, |c| {
            c.is_ascii_alphanumeric() || c == '.' || c == '~'
        })
        && all(build, is_word_char)
        && commit.is_none_or(|c| all(c, is_word_char))
}

/// Non-empty and made only of `allowed` characters (a regex `[...]+`).
fn all(s: &str, allowed: impl Fn(char) -> bool) -> bool {
    !s.is_empty() && s.chars().all(allowed)
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn is_name_char(c: char) -> bool {
    is_word_char(c) || matches!(c, '-' | '.' | '~' | '^')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn request(build: &str, commit: &str, job: &str) -> BakeRequest {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
        BakeRequest {
            build_number: some(build),
            commit_hash: some(commit),
            job: some(job),
            ..BakeRequest::default()
        }
    }

    fn tag(kind: PackageType, token: &str, req: &BakeRequest) -> Option<String> {
        app_version(req, Some(&kind.parse(token)), kind)
    }

    #[test]
    fn deb_and_rpm_packages_give_the_same_rosco_appversion() {
        let req = request("12", "170cdbd", "");
        let expected = Some("nflx-djangobase-enhanced-0.1-h12.170cdbd".to_string());
        assert_eq!(
            tag(
                PackageType::Deb,
                "nflx-djangobase-enhanced_0.1-h12.170cdbd_all",
                &req
            ),
            expected
        );
        assert_eq!(
            tag(
                PackageType::Rpm,
                "nflx-djangobase-enhanced-0.1-h12.170cdbd.all",
                &req
            ),
            expected
        );
    }

    #[test]
    fn a_job_adds_itself_and_the_build_number_with_slashes_made_hyphens() {
        let deb = "nflx-djangobase-enhanced_0.1-h123.170cdbd_all";
        assert_eq!(
            tag(
                PackageType::Deb,
                deb,
                &request("123", "170cdbd", "some-job-name")
            )
            .as_deref(),
            Some("nflx-djangobase-enhanced-0.1-h123.170cdbd/some-job-name/123")
        );
        assert_eq!(
            tag(
                PackageType::Deb,
                deb,
                &request("123", "170cdbd", "compose/job/name")
            )
            .as_deref(),
            Some("nflx-djangobase-enhanced-0.1-h123.170cdbd/compose-job-name/123")
        );
    }

    #[test]
    fn a_package_without_a_version_has_no_appversion() {
        assert_eq!(
            tag(
                PackageType::Deb,
                "reno-server",
                &request("12", "abc", "job")
            ),
            None
        );
        assert_eq!(
            tag(PackageType::Rpm, "reno-server", &request("", "", "")),
            None
        );
        assert_eq!(
            app_version(&request("12", "", ""), None, PackageType::Deb),
            None
        );
        let nameless = OsPackageName {
            version: Some("1.0".into()),
            ..OsPackageName::default()
        };
        assert_eq!(
            app_version(&request("12", "", ""), Some(&nameless), PackageType::Deb),
            None
        );
    }

    #[test]
    fn commit_and_job_need_a_build_number() {
        let req = request("", "170cdbd", "some-job");
        // `name-0.1` reads as name `nflx-djangobase`, version `enhanced`, build `0.1` to frigga.
        assert_eq!(
            tag(PackageType::Deb, "nflx-djangobase-enhanced_0.1-3_all", &req).as_deref(),
            Some("nflx-djangobase-enhanced-0.1")
        );
        assert_eq!(tag(PackageType::Deb, "hello_1.0-3_all", &req), None);
        assert_eq!(
            tag(PackageType::Deb, "hello_1.0-3_all", &request("7", "", "")).as_deref(),
            Some("hello-1.0-h7")
        );
    }

    #[test]
    fn nupkg_separators_rarely_make_a_frigga_appversion_as_in_rosco() {
        let req = request("12", "abc", "");
        assert_eq!(tag(PackageType::Nupkg, "billinggateway.1.0.1", &req), None);
        assert_eq!(
            tag(
                PackageType::Nupkg,
                "billinggateway.1.0.1",
                &request("12", "", "")
            ),
            None
        );
        assert_eq!(
            tag(
                PackageType::Nupkg,
                "nflx-djangobase-enhanced.1.0.1-rc1",
                &request("12", "", "")
            )
            .as_deref(),
            Some("nflx-djangobase-enhanced.1.0.1-12")
        );
    }

    #[test]
    fn frigga_reads_netflix_style_appversions() {
        for good in [
            "subscriberha-1.0.0-586499",
            "subscriberha-1.0.0-586499.h150",
            "subscriberha-1.0.0-586499.h150/WE-WAPP-subscriberha/150",
            "subscriberha-1.0.0-h150.586499/WE-WAPP-subscriberha/150",
            "nflx-djangobase-enhanced-0.1-h12.170cdbd",
            "nflx-djangobase-enhanced-0.1-h123.170cdbd/some-job-name/123",
            "a-b-c",
            "a--b-c",
            "app^x~y.z_1-1~rc.2-h1/jo.b_~^/1",
            "app-1.0-h1/job/1",
            "app-1.0-under_score",
        ] {
            assert!(is_frigga_app_version(good), "{good}");
        }
    }

    #[test]
    fn frigga_refuses_what_its_pattern_does_not_match() {
        for bad in [
            "",
            "reno-server",
            "-a-b",
            "app-1_0-h1",
            "app-1.0-h1.abc.def",
            "app-1.0-h1.",
            "app-1.0-.abc",
            "app-1.0-",
            "app-1.0-h1/job",
            "app-1.0-h1/job/12a",
            "app-1.0-h1/job/",
            "app-1.0-h1//1",
            "app-1.0-h1/job/1/2",
            "app-1.0-h1/jo b/1",
            "billinggateway.1.0.1-12+abc",
            "app-1.0+x-h1",
            "appé-1.0-h1",
            "app-1.0-h1 ",
        ] {
            assert!(!is_frigga_app_version(bad), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn frigga_reads_any_tag_built_from_its_groups(
            name in "[-a-zA-Z0-9._~^]{0,12}[a-zA-Z0-9._~^]",
            version in "[0-9.a-zA-Z~]{1,10}",
            build in "[a-zA-Z0-9_]{1,8}",
            commit in proptest::option::of("[a-zA-Z0-9_]{1,8}"),
            job in proptest::option::of(("[-a-zA-Z0-9._~^]{1,12}", "[0-9]{1,5}")),
        ) {
            let commit = commit.map(|c| format!(".{c}")).unwrap_or_default();
            let job = job.map(|(j, n)| format!("/{j}/{n}")).unwrap_or_default();
            let tag = format!("{name}-{version}-{build}{commit}{job}");
            prop_assert!(is_frigga_app_version(&tag), "{}", tag);
        }

        #[test]
        fn frigga_refuses_any_tag_with_a_character_outside_its_classes(
            head in "[a-z0-9-]{0,10}", bad in "[+ !:@#,]", tail in "[a-z0-9-]{0,10}",
        ) {
            let tag = format!("{head}{bad}{tail}-1.0-h1");
            prop_assert!(!is_frigga_app_version(&tag), "{}", tag);
        }
    }
}
