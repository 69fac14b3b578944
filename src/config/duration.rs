//! Durations as operators write them: `90s`, `45m`, `2h`, `1h30m`, `500ms`; a bare number is
//! seconds. Parsing is humantime's (overflow-checked), plus bare seconds, which humantime
//! refuses but Rosco-era configs use.

use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// Parses `90s`, `45m`, `2h`, `1h30m`, `500ms` or a bare number of seconds. Negative and
/// overflowing values are errors.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| bad(text));
    }
    humantime::parse_duration(t).map_err(|_| bad(text))
}

fn bad(text: &str) -> String {
    format!(
        "{} is not a duration (write e.g. 90s, 45m, 2h or 1h30m)",
        crate::telemetry::escaped(text)
    )
}

/// A duration read from config or a request attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationText(pub Duration);

impl<'de> Deserialize<'de> for DurationText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_norway::Value::deserialize(d)?;
        let text = match v {
            serde_norway::Value::Number(n) => n.to_string(),
            serde_norway::Value::String(s) => s,
            other => {
                return Err(serde::de::Error::custom(format!(
                    "expected a duration such as 90s or 45m, found {other:?}"
                )));
            }
        };
        parse_duration(&text)
            .map(DurationText)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_write_durations_with_units() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("45m").unwrap(), Duration::from_secs(2700));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("12").unwrap(), Duration::from_secs(12));
    }

    #[test]
    fn a_bad_duration_says_how_to_write_one() {
        let e = parse_duration("ten minutes").unwrap_err();
        assert!(e.contains("45m"), "{e}");
        assert!(parse_duration("5x").is_err());
    }

    #[test]
    fn overflow_and_signs_are_errors_not_panics() {
        for bad in [
            "-5s",
            "99999999999999999999",
            "18446744073709551615h",
            "9999999999999999999999999s",
            "+3s",
            "s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_duration("1h 30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
    }
}
