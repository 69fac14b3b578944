//! The name of the baked image, following Rosco's behaviour: `ami_name` (else the first
//! package's name), the package's arch (else `all`), `ami_suffix` (else the bake's start time in
//! epoch milliseconds) and `base_os`, empty parts dropped, joined with `-`. Also the check that
//! the name is one AWS accepts, so a bad name is a 400 naming the fix, not a failed Packer run.

use super::package::OsPackageName;
use crate::bake::{BakeRequest, present};

/// Punctuation AWS allows in an AMI name, besides ASCII letters and digits.
const AMI_NAME_PUNCTUATION: &str = "()[]./-'@_ ";
const AMI_NAME_LENGTH: std::ops::RangeInclusive<usize> = 3..=128;

/// The image name for a bake of `first` that started at `suffix_millis`.
pub fn image_name(req: &BakeRequest, first: Option<&OsPackageName>, suffix_millis: i64) -> String {
    let suffix = present(&req.ami_suffix)
        .map(str::to_string)
        .unwrap_or_else(|| suffix_millis.to_string());
    named(req, first, &suffix)
}

/// The image name with its suffix left open (`kato-all-{suffix}-trusty`): what the bake's
/// identity keeps of the name. The suffix (`ami_suffix`, else the clock) only names the image:
/// Orca sends a fresh `ami_suffix` on every pipeline run, and Rosco's key leaves it out too.
pub fn image_name_pattern(req: &BakeRequest, first: Option<&OsPackageName>) -> String {
    named(req, first, SUFFIX)
}

/// The placeholder of the suffix in [`image_name_pattern`].
pub const SUFFIX: &str = "{suffix}";

fn named(req: &BakeRequest, first: Option<&OsPackageName>, suffix: &str) -> String {
    let base = present(&req.ami_name)
        .or_else(|| first.and_then(|p| present(&p.name)))
        .unwrap_or_default();
    let arch = first.and_then(|p| present(&p.arch)).unwrap_or("all");
    let base_os = present(&req.base_os).unwrap_or_default();
    let parts = [base, arch, suffix, base_os];
    let kept: Vec<&str> = parts.into_iter().filter(|p| !p.is_empty()).collect();
    kept.join("-")
}

/// Checks `name` against AWS's AMI-name rule: 3 to 128 characters, letters, digits, spaces and
/// `( ) [ ] . / - ' @ _`. The error says what is wrong and which request field fixes it.
pub fn check_aws_image_name(name: &str) -> Result<(), String> {
    let mut problems = Vec::new();
    let offending = offending_chars(name);
    if !offending.is_empty() {
        let listed: Vec<String> = offending
            .iter()
            .map(|c| format!("'{}'", c.escape_debug()))
            .collect();
        let verb = if offending.len() == 1 { "is" } else { "are" };
        problems.push(format!(
            "{} {verb} not allowed (AMI names use letters, digits, spaces and ( ) [ ] . / - ' @ _)",
            listed.join(", ")
        ));
    }
    let length = name.chars().count();
    if !AMI_NAME_LENGTH.contains(&length) {
        problems.push(format!(
            "it is {length} characters long and AMI names are 3 to 128 characters"
        ));
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(format!(
        "image name '{name}' is not a valid AMI name: {}; set ami_name or ami_suffix to fix it",
        problems.join(" and ")
    ))
}

/// The characters AWS refuses, each once, in order of appearance.
fn offending_chars(name: &str) -> Vec<char> {
    let mut found = Vec::new();
    for c in name.chars() {
        let allowed = c.is_ascii_alphanumeric() || AMI_NAME_PUNCTUATION.contains(c);
        if !allowed && !found.contains(&c) {
            found.push(c);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::PackageType;

    fn request(ami_name: &str, ami_suffix: &str, base_os: &str) -> BakeRequest {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
        BakeRequest {
            ami_name: some(ami_name),
            ami_suffix: some(ami_suffix),
            base_os: some(base_os),
            ..BakeRequest::default()
        }
    }

    #[test]
    fn the_image_is_named_after_package_arch_time_and_base_os_as_in_rosco() {
        let first = PackageType::Deb.parse("nflx-djangobase-enhanced_0.1-h12.170cdbd_all");
        let cases = [
            (
                request("", "", "ubuntu"),
                "nflx-djangobase-enhanced-all-123456-ubuntu",
            ),
            (
                request("nflx-base", "", "ubuntu"),
                "nflx-base-all-123456-ubuntu",
            ),
            (
                request("", "1.0", "ubuntu"),
                "nflx-djangobase-enhanced-all-1.0-ubuntu",
            ),
            (request("nflx-base", "1.0", ""), "nflx-base-all-1.0"),
        ];
        for (req, expected) in cases {
            assert_eq!(image_name(&req, Some(&first), 123456), expected);
        }
    }

    #[test]
    fn without_packages_or_arch_the_name_falls_back_to_all_and_drops_empty_parts() {
        let req = request("", "", "trusty");
        assert_eq!(image_name(&req, None, 42), "all-42-trusty");
        let bare = PackageType::Deb.parse("kato");
        assert_eq!(image_name(&req, Some(&bare), 42), "kato-all-42-trusty");
        let blank = BakeRequest {
            ami_name: Some(String::new()),
            ..request("", "", "trusty")
        };
        assert_eq!(image_name(&blank, Some(&bare), 42), "kato-all-42-trusty");
    }

    #[test]
    fn the_arch_comes_from_the_first_package() {
        let rpm = PackageType::Rpm.parse("hello-2.3-h4.abc123.noarch.rpm");
        assert_eq!(
            image_name(&request("", "", "centos"), Some(&rpm), 7),
            "hello-noarch-7-centos"
        );
    }

    #[test]
    fn the_pattern_leaves_the_suffix_open_whether_given_or_the_clock() {
        let first = PackageType::Deb.parse("kato_1.0-h2.abc_all");
        let pattern = "kato-all-{suffix}-ubuntu";
        assert_eq!(
            image_name_pattern(&request("", "20260101120000", "ubuntu"), Some(&first)),
            pattern
        );
        assert_eq!(
            image_name_pattern(&request("", "", "ubuntu"), Some(&first)),
            pattern
        );
        assert_eq!(
            image_name_pattern(&request("app", "", ""), None),
            "app-all-{suffix}"
        );
    }

    #[test]
    fn aws_accepts_letters_digits_and_its_punctuation() {
        for name in [
            "abc",
            "nflx-base-all-123456-ubuntu",
            "my app (v1) [x]./-'@_",
            &"a".repeat(128),
        ] {
            assert_eq!(check_aws_image_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn a_forbidden_character_is_named_with_the_fix() {
        assert_eq!(
            check_aws_image_name("my app!"),
            Err("image name 'my app!' is not a valid AMI name: '!' is not allowed (AMI names use \
                 letters, digits, spaces and ( ) [ ] . / - ' @ _); set ami_name or ami_suffix to fix it"
                .to_string())
        );
    }

    #[test]
    fn forbidden_characters_are_listed_once_in_order_of_appearance() {
        let err = check_aws_image_name("a:b+c:d+é\t").unwrap_err();
        assert!(
            err.contains(": ':', '+', 'é', '\\t' are not allowed ("),
            "{err}"
        );
    }

    #[test]
    fn a_name_outside_3_to_128_characters_says_its_length() {
        let err = check_aws_image_name("ab").unwrap_err();
        assert_eq!(
            err,
            "image name 'ab' is not a valid AMI name: it is 2 characters long and AMI names are 3 \
             to 128 characters; set ami_name or ami_suffix to fix it"
        );
        let long = "a".repeat(129);
        assert!(
            check_aws_image_name(&long)
                .unwrap_err()
                .contains("it is 129 characters long")
        );
        let both = check_aws_image_name("a!").unwrap_err();
        assert!(
            both.contains("'!' is not allowed") && both.contains("it is 2 characters long"),
            "{both}"
        );
    }
}
