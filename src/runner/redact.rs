//! Masking secrets in text before kiln stores or shows it: Packer output (the supervisor masks
//! every line before it reaches `output.log`) and the command lines kept with a bake.
//!
//! Values shorter than [`MIN_SECRET_LEN`] are not masked: replacing every `"1"` or `"ab"` would
//! mangle logs while hiding nothing worth hiding.

use std::borrow::Cow;

/// What a masked secret reads as.
pub const MASK: &str = "******";

/// Secrets shorter than this are left alone.
pub const MIN_SECRET_LEN: usize = 4;

/// Replaces known secret values with [`MASK`].
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Longest first, so a secret that contains another is masked whole.
    secrets: Vec<String>,
}

impl Redactor {
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .filter(|s| s.chars().count() >= MIN_SECRET_LEN)
            .collect();
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        Redactor { secrets }
    }

    /// Whether there is nothing to mask.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// `text` with every occurrence of every secret replaced by [`MASK`]; borrowed when nothing
    /// matched.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), MASK));
            }
        }
        out
    }

    /// Like [`redact`](Self::redact), for text that was cut off mid-way: a secret that started
    /// before the cut left only its beginning, so a trailing beginning of any secret is dropped
    /// too (along with a character broken by the cut).
    pub fn redact_cut(&self, text: &str) -> String {
        let redacted = self.redact(text);
        let mut kept = redacted.trim_end_matches(char::REPLACEMENT_CHARACTER);
        for secret in &self.secrets {
            let prefixes = secret.char_indices().skip(1).map(|(i, _)| &secret[..i]);
            if let Some(prefix) = prefixes.filter(|p| kept.ends_with(p)).last() {
                kept = &kept[..kept.len() - prefix.len()];
            }
        }
        kept.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redactor(secrets: &[&str]) -> Redactor {
        Redactor::new(secrets.iter().map(|s| s.to_string()))
    }

    #[test]
    fn masks_every_occurrence_of_every_secret() {
        let r = redactor(&["wJalrXUtnFEMI", "AKIAFAKE"]);
        assert_eq!(
            r.redact("key=AKIAFAKE secret=wJalrXUtnFEMI again wJalrXUtnFEMI"),
            "key=****** secret=****** again ******"
        );
    }

    #[test]
    fn leaves_clean_text_borrowed() {
        let r = redactor(&["hunter22"]);
        assert!(matches!(r.redact("nothing to see"), Cow::Borrowed(_)));
    }

    #[test]
    fn ignores_empty_and_short_values() {
        let r = redactor(&["", "a", "abc"]);
        assert!(r.is_empty());
        assert_eq!(r.redact("a abc"), "a abc");
    }

    #[test]
    fn masks_a_secret_containing_another_whole() {
        let r = redactor(&["pass", "password123"]);
        assert_eq!(r.redact("password123 pass"), "****** ******");
    }

    #[test]
    fn handles_non_ascii_secrets() {
        let r = redactor(&["päßwörd"]);
        assert_eq!(r.redact("→päßwörd←"), "→******←");
    }

    #[test]
    fn a_cut_drops_a_trailing_beginning_of_a_secret() {
        let r = redactor(&["SECRETVALUE"]);
        assert_eq!(
            r.redact_cut("token=SECRETVALUE next=SECR"),
            "token=****** next="
        );
        assert_eq!(r.redact_cut("plain text"), "plain text");
        let r = redactor(&["päßwörd"]);
        assert_eq!(r.redact_cut("x=pä\u{FFFD}"), "x=");
    }

    #[test]
    fn duplicates_are_harmless() {
        let r = redactor(&["same-secret", "same-secret"]);
        assert_eq!(r.redact("same-secret"), MASK);
    }
}
