//! Clouddriver, for what Rosco asks it: an Amazon image by name
//! (`GET {baseUrl}/aws/images/find?q=&account=&region=`, Rosco's `ClouddriverService`).
//!
//! Rosco's retry is kept: three tries, three seconds apart; a 4xx is not retried.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Rosco's `retrySupport.retry(…, 3, Duration.ofSeconds(3), false)`.
pub const TRIES: u32 = 3;
pub const RETRY_DELAY: Duration = Duration::from_secs(3);
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Clouddriver's `AWSNamedImage` (the fields Rosco reads).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NamedImage {
    pub image_name: Option<String>,
    pub attributes: ImageAttributes,
    /// Image ids per region.
    pub amis: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ImageAttributes {
    pub virtualization_type: Option<String>,
    /// ISO 8601 (sorts as text, as Rosco's `max` does).
    pub creation_date: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("Clouddriver at {base_url}: images/find for '{name}': {detail}")]
pub struct ClouddriverError {
    pub base_url: String,
    pub name: String,
    pub detail: String,
}

/// A Clouddriver at `base_url` (`services.clouddriver.baseUrl`).
#[derive(Debug, Clone)]
pub struct Clouddriver {
    base_url: String,
    agent: ureq::Agent,
    retry_delay: Duration,
}

impl Clouddriver {
    pub fn new(base_url: &str) -> Clouddriver {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(CALL_TIMEOUT))
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .new_agent();
        Clouddriver {
            base_url: base_url.trim().trim_end_matches('/').to_string(),
            agent,
            retry_delay: RETRY_DELAY,
        }
    }

    /// The same, retrying after `delay` instead of Rosco's three seconds (tests).
    pub fn with_retry_delay(mut self, delay: Duration) -> Clouddriver {
        self.retry_delay = delay;
        self
    }

    /// `GET /aws/images/find?q=<name>&account=<account>&region=<region>`. Blocking: call it
    /// from a blocking thread.
    pub fn find_amazon_images(
        &self,
        name: &str,
        account: Option<&str>,
        region: &str,
    ) -> Result<Vec<NamedImage>, ClouddriverError> {
        let error = |detail: String| ClouddriverError {
            base_url: self.base_url.clone(),
            name: name.to_string(),
            detail,
        };
        let url = format!("{}/aws/images/find", self.base_url);
        let mut last = String::new();
        for attempt in 1..=TRIES {
            if attempt > 1 {
                std::thread::sleep(self.retry_delay);
            }
            let mut req = self
                .agent
                .get(&url)
                .query("q", name)
                .query("region", region);
            if let Some(account) = account {
                req = req.query("account", account);
            }
            match req.header("accept", "application/json").call() {
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    let body = resp
                        .body_mut()
                        .with_config()
                        .limit(16 * 1024 * 1024)
                        .read_to_string();
                    match (status, body) {
                        (200..=299, Ok(text)) => {
                            return serde_json::from_str(&text)
                                .map_err(|e| error(format!("unreadable answer: {e}")));
                        }
                        (400..=499, body) => {
                            let text = body.unwrap_or_default();
                            return Err(error(format!("HTTP {status}: {}", snippet(&text))));
                        }
                        (_, body) => {
                            last = format!("HTTP {status}: {}", snippet(&body.unwrap_or_default()))
                        }
                    }
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(error(format!("{last} (after {TRIES} tries)")))
    }
}

/// A failed `PUT /artifacts/fetch/`: Clouddriver's HTTP status when it answered one (Rosco
/// answers the bake with it, as a 404 for a missing artifact), and what went wrong.
#[derive(Debug, thiserror::Error)]
#[error("Clouddriver at {base_url}: artifacts/fetch: {detail}")]
pub struct FetchArtifactError {
    pub base_url: String,
    pub status: Option<u16>,
    pub detail: String,
}

/// Rosco's `ArtifactDownloaderImpl`: five tries, a second apart.
pub const FETCH_TRIES: u32 = 5;
const FETCH_RETRY_DELAY: Duration = Duration::from_secs(1);

impl Clouddriver {
    /// `PUT {baseUrl}/artifacts/fetch/` with the artifact as JSON; the artifact's bytes, at
    /// most `max_bytes` of them. A 4xx is not retried, nor is anything once `deadline` has
    /// passed. Blocking: call it from a blocking thread.
    pub fn fetch_artifact(
        &self,
        artifact: &serde_json::Value,
        max_bytes: u64,
        deadline: std::time::Instant,
    ) -> Result<Vec<u8>, FetchArtifactError> {
        let error = |status, detail: String| FetchArtifactError {
            base_url: self.base_url.clone(),
            status,
            detail,
        };
        let url = format!("{}/artifacts/fetch/", self.base_url);
        let body = artifact.to_string();
        let mut last = (None, String::new());
        for attempt in 1..=FETCH_TRIES {
            if attempt > 1 {
                std::thread::sleep(self.retry_delay.min(FETCH_RETRY_DELAY));
                if std::time::Instant::now() >= deadline {
                    break;
                }
            }
            let sent = self
                .agent
                .put(&url)
                .header("content-type", "application/json")
                .send(body.as_bytes());
            match sent {
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    let read = resp.body_mut().with_config().limit(max_bytes).read_to_vec();
                    match (status, read) {
                        (200..=299, Ok(bytes)) => return Ok(bytes),
                        (200..=299, Err(e)) => {
                            return Err(error(
                                Some(status),
                                format!(
                                    "the artifact is over {max_bytes} bytes or unreadable: {e}"
                                ),
                            ));
                        }
                        (400..=499, body) => {
                            let text =
                                String::from_utf8_lossy(&body.unwrap_or_default()).into_owned();
                            return Err(error(
                                Some(status),
                                format!("HTTP {status}: {}", snippet(&text)),
                            ));
                        }
                        (_, body) => {
                            let text =
                                String::from_utf8_lossy(&body.unwrap_or_default()).into_owned();
                            last = (Some(status), format!("HTTP {status}: {}", snippet(&text)));
                        }
                    }
                }
                Err(e) => last = (None, e.to_string()),
            }
        }
        Err(error(
            last.0,
            format!("{} (after {FETCH_TRIES} tries)", last.1),
        ))
    }
}

fn snippet(text: &str) -> String {
    text.chars()
        .take(300)
        .collect::<String>()
        .escape_debug()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    /// A stand-in Clouddriver on loopback: answers each request with the next canned reply and
    /// records the request lines.
    fn stand_in(replies: Vec<(u16, &'static str)>) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for (reply, stream) in replies.into_iter().zip(listener.incoming()) {
                let mut stream = stream.unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                log.lock().unwrap().push(line.trim().to_string());
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
                        break;
                    }
                }
                let (status, body) = reply;
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        (format!("http://{addr}"), seen)
    }

    const IMAGES: &str = r#"[{"imageName": "jammy-base-1", "attributes": {"virtualizationType": "hvm", "creationDate": "2026-01-01T00:00:00.000Z"}, "amis": {"us-east-1": ["ami-111"]}, "tagsByImageId": {}}]"#;

    #[test]
    fn images_are_found_with_roscos_query() {
        let (url, seen) = stand_in(vec![(200, IMAGES)]);
        let images = Clouddriver::new(&url)
            .find_amazon_images("jammy-base-*", Some("prod"), "us-east-1")
            .unwrap();
        assert_eq!(images.len(), 1);
        assert_eq!(images[0].amis["us-east-1"], vec!["ami-111"]);
        assert_eq!(
            images[0].attributes.virtualization_type.as_deref(),
            Some("hvm")
        );
        let line = seen.lock().unwrap()[0].clone();
        assert!(
            line.starts_with("GET /aws/images/find?q=jammy-base-*&region=us-east-1&account=prod ")
                || line.starts_with(
                    "GET /aws/images/find?q=jammy-base-%2A&region=us-east-1&account=prod "
                ),
            "{line}"
        );
    }

    #[test]
    fn artifacts_are_fetched_with_a_put_and_a_404_is_not_retried() {
        let later = std::time::Instant::now() + Duration::from_secs(30);
        let (url, seen) = stand_in(vec![(503, "busy"), (200, "kind: A")]);
        let cd = Clouddriver::new(&url).with_retry_delay(Duration::from_millis(10));
        let a = serde_json::json!({"type": "s3/object", "reference": "s3://b/k"});
        assert_eq!(cd.fetch_artifact(&a, 100, later).unwrap(), b"kind: A");
        assert_eq!(seen.lock().unwrap()[1], "PUT /artifacts/fetch/ HTTP/1.1");

        let (url, seen) = stand_in(vec![(404, "no such artifact"), (200, "x")]);
        let cd = Clouddriver::new(&url).with_retry_delay(Duration::from_millis(10));
        let e = cd.fetch_artifact(&a, 100, later).unwrap_err();
        assert_eq!(e.status, Some(404));
        assert_eq!(seen.lock().unwrap().len(), 1);

        let (url, _) = stand_in(vec![(200, "0123456789")]);
        let e = Clouddriver::new(&url)
            .fetch_artifact(&a, 5, later)
            .unwrap_err();
        assert!(e.detail.contains("over 5 bytes"), "{e}");
    }

    #[test]
    fn server_errors_are_retried_three_times_and_client_errors_not() {
        let (url, seen) = stand_in(vec![(503, "busy"), (502, "bad"), (200, "[]")]);
        let cd = Clouddriver::new(&url).with_retry_delay(Duration::from_millis(10));
        assert_eq!(cd.find_amazon_images("x", None, "r").unwrap(), Vec::new());
        assert_eq!(seen.lock().unwrap().len(), 3);

        let (url, seen) = stand_in(vec![(500, "a"), (500, "b"), (500, "c"), (200, "[]")]);
        let cd = Clouddriver::new(&url).with_retry_delay(Duration::from_millis(10));
        let e = cd
            .find_amazon_images("x", None, "r")
            .unwrap_err()
            .to_string();
        assert!(e.contains("after 3 tries") && e.contains("HTTP 500"), "{e}");
        assert_eq!(seen.lock().unwrap().len(), 3);

        let (url, seen) = stand_in(vec![(404, "nope"), (200, "[]")]);
        let cd = Clouddriver::new(&url).with_retry_delay(Duration::from_millis(10));
        let e = cd
            .find_amazon_images("x", None, "r")
            .unwrap_err()
            .to_string();
        assert!(e.contains("HTTP 404"), "{e}");
        assert_eq!(seen.lock().unwrap().len(), 1);
    }
}
