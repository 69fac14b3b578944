//! A bake's total and no-output limits. The operator sets them (`kiln.jobs.*`, per base image
//! `timeout`/`idleTimeout`); a request may shorten them with the extended attributes
//! `kiln_timeout` and `kiln_idle_timeout`, never lengthen or disable them: a requester must not
//! be able to hold a concurrency slot longer than the operator allows.

use super::recipe::BakeError;
use crate::bake::BakeRequest;
use crate::config::{BaseImage, Settings, parse_duration};
use std::time::Duration;

/// The shortest limit a request may ask for.
const MIN_REQUESTED: Duration = Duration::from_secs(1);
/// The longest limit a request may ask for when the operator set none: a week keeps every
/// deadline computable (no overflow) and is far beyond any real bake.
const MAX_UNLIMITED: Duration = Duration::from_secs(7 * 24 * 3600);

/// `(total, idle)`: the operator's limits (base image over bakery), shortened by the request.
pub fn limits(
    req: &BakeRequest,
    image: &BaseImage,
    settings: &Settings,
) -> Result<(Option<Duration>, Option<Duration>), BakeError> {
    let attrs = req.extended_attributes();
    let nonzero = |d: Option<Duration>| d.filter(|d| !d.is_zero());
    let operator_total = nonzero(image.timeout.map(|d| d.0).or(settings.job_timeout()));
    let operator_idle = nonzero(image.idle_timeout.map(|d| d.0).or(settings.idle_timeout()));
    let total = requested(
        attrs.get("kiln_timeout"),
        "kiln_timeout",
        operator_total,
        "the bakery's total limit",
    )?
    .or(operator_total);
    // Without an operator idle limit a request may set one up to its total limit: being idle
    // longer than the bake may run means nothing.
    let (idle_ceiling, why) = match operator_idle {
        Some(d) => (Some(d), "the bakery's idle limit"),
        None => (total, "the bake's total limit"),
    };
    let idle = requested(
        attrs.get("kiln_idle_timeout"),
        "kiln_idle_timeout",
        idle_ceiling,
        why,
    )?
    .or(operator_idle);
    Ok((total, idle))
}

/// A requested limit: a duration from 1s up to `ceiling` (a week when there is none).
fn requested(
    text: Option<&String>,
    name: &str,
    ceiling: Option<Duration>,
    why: &str,
) -> Result<Option<Duration>, BakeError> {
    let Some(text) = text else {
        return Ok(None);
    };
    let (max, why) = match ceiling {
        Some(c) => (c, why),
        None => (
            MAX_UNLIMITED,
            "kiln's ceiling when the bakery sets no limit",
        ),
    };
    let range = format!(
        "use a duration between {} and {} ({why}); a request may shorten the bakery's limits, \
         never lengthen or disable them",
        humantime::format_duration(MIN_REQUESTED),
        humantime::format_duration(max)
    );
    let shown = crate::telemetry::escaped(text);
    let d = parse_duration(text)
        .map_err(|e| BakeError::Invalid(format!("extended attribute '{name}': {e}; {range}")))?;
    if d < MIN_REQUESTED || d > max {
        return Err(BakeError::Invalid(format!(
            "extended attribute '{name}' is {shown}: {range}"
        )));
    }
    Ok(Some(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(yaml: &str) -> Settings {
        crate::config::load_str(yaml, &|_| None).unwrap().settings
    }

    fn request(attrs: serde_json::Value) -> BakeRequest {
        BakeRequest::from_json(
            serde_json::json!({ "extended_attributes": attrs })
                .to_string()
                .as_bytes(),
        )
        .unwrap()
    }

    fn of(
        yaml: &str,
        attrs: serde_json::Value,
    ) -> Result<(Option<Duration>, Option<Duration>), String> {
        limits(&request(attrs), &BaseImage::default(), &settings(yaml)).map_err(|e| e.to_string())
    }

    const MIN: fn(u64) -> Option<Duration> = |m| Some(Duration::from_secs(m * 60));

    #[test]
    fn a_request_may_shorten_the_operators_limits() {
        let yaml = "kiln:\n  jobs:\n    timeout: 30m\n    idleTimeout: 10m\n";
        assert_eq!(of(yaml, serde_json::json!({})), Ok((MIN(30), MIN(10))));
        assert_eq!(
            of(
                yaml,
                serde_json::json!({"kiln_timeout": "5m", "kiln_idle_timeout": 60})
            ),
            Ok((MIN(5), MIN(1)))
        );
        assert_eq!(
            of(yaml, serde_json::json!({"kiln_timeout": "30m"})),
            Ok((MIN(30), MIN(10)))
        );
    }

    #[test]
    fn a_request_cannot_lengthen_disable_or_overflow_them() {
        let yaml = "kiln:\n  jobs:\n    timeout: 30m\n    idleTimeout: 10m\n";
        for (name, bad) in [
            ("kiln_timeout", "0"),
            ("kiln_timeout", "31m"),
            ("kiln_timeout", "-5m"),
            ("kiln_timeout", "18446744073709551615h"),
            ("kiln_timeout", "99999999999999999999999"),
            ("kiln_timeout", "500ms"),
            ("kiln_timeout", "soon"),
            ("kiln_idle_timeout", "11m"),
            ("kiln_idle_timeout", "0s"),
        ] {
            let e = of(yaml, serde_json::json!({ name: bad })).unwrap_err();
            assert!(
                e.contains(name) && e.contains("use a duration between 1s and"),
                "{bad}: {e}"
            );
        }
        let e = of(yaml, serde_json::json!({"kiln_timeout": "2h"})).unwrap_err();
        assert!(e.contains("between 1s and 30m"), "{e}");
    }

    #[test]
    fn without_an_operator_idle_limit_a_request_may_set_one_up_to_the_total() {
        let yaml = "kiln:\n  jobs:\n    timeout: 30m\n";
        assert_eq!(of(yaml, serde_json::json!({})), Ok((MIN(30), None)));
        assert_eq!(
            of(yaml, serde_json::json!({"kiln_idle_timeout": "2m"})),
            Ok((MIN(30), MIN(2)))
        );
        let e = of(yaml, serde_json::json!({"kiln_idle_timeout": "31m"})).unwrap_err();
        assert!(
            e.contains("between 1s and 30m (the bake's total limit)"),
            "{e}"
        );
        let unlimited = "kiln:\n  jobs:\n    timeout: 0\n";
        assert_eq!(
            of(unlimited, serde_json::json!({"kiln_timeout": "3h"})),
            Ok((MIN(180), None))
        );
        let e = of(unlimited, serde_json::json!({"kiln_timeout": "8days"})).unwrap_err();
        assert!(e.contains("between 1s and 7days"), "{e}");
    }
}
