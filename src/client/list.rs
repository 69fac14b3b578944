//! `kiln bakes list [--state S] [--package P] [--region R] [--provider C] [--limit N] [--all]
//! [--json] [--server URL]`: one page of bakes, newest first, as a table (or the API's JSON);
//! `--all` follows the cursor to the oldest bake.

use anyhow::anyhow;
use clap::Args;
use serde_json::Value;
use std::process::ExitCode;

/// The most pages `--all` reads (100 bakes each): a bound, not a limit anyone should meet.
const MAX_PAGES: usize = 1000;

#[derive(Debug, Args, Clone, Default)]
pub struct ListArgs {
    /// Only bakes in this phase: queued, running, succeeded, failed or canceled.
    #[arg(long)]
    pub state: Option<String>,
    /// Only bakes whose package list holds this package name.
    #[arg(long)]
    pub package: Option<String>,
    /// Only bakes in this region.
    #[arg(long)]
    pub region: Option<String>,
    /// Only bakes of this provider (aws, qemu).
    #[arg(long)]
    pub provider: Option<String>,
    /// Bakes per page (1 to 100).
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Start after this cursor (a `next_cursor` an earlier page printed).
    #[arg(long)]
    pub cursor: Option<String>,
    /// Every page, to the oldest bake.
    #[arg(long)]
    pub all: bool,
    /// The API's JSON pages, one a line.
    #[arg(long)]
    pub json: bool,
    /// kiln's URL.
    #[arg(long, env = "KILN_SERVER", default_value = "http://127.0.0.1:8087")]
    pub server: String,
}

pub fn run(args: &ListArgs) -> ExitCode {
    let server = args.server.trim_end_matches('/').to_string();
    let get = |path: &str| super::get_json(&server, path);
    let mut out = std::io::stdout().lock();
    match list(args, &get, &mut out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kiln bakes list: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The listing's path for one page.
fn page_path(args: &ListArgs, cursor: Option<&str>) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (name, value) in [
        ("state", &args.state),
        ("package", &args.package),
        ("region", &args.region),
        ("provider", &args.provider),
    ] {
        if let Some(v) = value {
            q.append_pair(name, v);
        }
    }
    q.append_pair("limit", &args.limit.to_string());
    if let Some(c) = cursor {
        q.append_pair("cursor", c);
    }
    format!("/api/kiln/v1/bakes?{}", q.finish())
}

/// Reads the pages through `get` and writes them to `out`.
pub fn list(
    args: &ListArgs,
    get: &dyn Fn(&str) -> anyhow::Result<(u16, Value)>,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<()> {
    let mut cursor = args.cursor.clone();
    for page_number in 0..MAX_PAGES {
        let (status, page) = get(&page_path(args, cursor.as_deref()))?;
        if status != 200 {
            let why = page["message"]
                .as_str()
                .map_or_else(|| page.to_string(), String::from);
            return Err(anyhow!("HTTP {status}: {}", printable(&why)));
        }
        if args.json {
            writeln!(out, "{page}")?;
        } else {
            if page_number == 0 {
                writeln!(
                    out,
                    "{}",
                    row([
                        "ID", "STATE", "PACKAGE", "PROVIDER", "REGION", "CREATED", "IMAGE"
                    ]
                    .map(String::from))
                )?;
            }
            for b in page["bakes"].as_array().into_iter().flatten() {
                writeln!(out, "{}", row(columns(b)))?;
            }
        }
        cursor = page["next_cursor"].as_str().map(String::from);
        match (&cursor, args.all) {
            (None, _) => return Ok(()),
            (Some(_), true) => {}
            (Some(next), false) => {
                if !args.json {
                    writeln!(out, "more: --cursor {next}")?;
                }
                return Ok(());
            }
        }
    }
    Err(anyhow!("stopped after {MAX_PAGES} pages"))
}

/// One bake's columns, each printable on a terminal (request data is the requester's).
fn columns(b: &Value) -> [String; 7] {
    let s = |v: &Value| printable(v.as_str().unwrap_or("-"));
    let created = b["created_ms"]
        .as_i64()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map_or_else(
            || "-".to_string(),
            |t| t.strftime("%Y-%m-%d %H:%M:%S").to_string(),
        );
    let mut images: Vec<String> = b["details"]["artifacts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| {
            Some(format!(
                "{}:{}",
                a["location"].as_str()?,
                a["reference"].as_str()?
            ))
        })
        .collect();
    if images.is_empty()
        && let Some(ami) = b["details"]["ami"].as_str()
    {
        images.push(ami.to_string());
    }
    if let Some(path) = b["image"]["image"].as_str() {
        images.push(path.to_string());
    }
    [
        s(&b["id"]),
        s(&b["phase"]),
        s(&b["request"]["package"]),
        s(&b["provider"]),
        s(&b["region"]),
        created,
        printable(&images.join(",")),
    ]
}

fn row(cells: [String; 7]) -> String {
    let widths = [36, 9, 24, 8, 12, 19, 0];
    cells
        .iter()
        .zip(widths)
        .map(|(c, w)| format!("{c:<w$}"))
        .collect::<Vec<_>>()
        .join("  ")
        .trim_end()
        .to_string()
}

/// Text with control characters (terminal escape sequences included) shown as `?`.
fn printable(s: &str) -> String {
    let cut: String = s.chars().take(200).collect();
    cut.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::cell::RefCell;

    fn bake(id: &str, package: &str) -> Value {
        json!({"id": id, "phase": "succeeded", "provider": "aws", "region": "us-east-1",
            "created_ms": 1_700_000_000_000i64, "request": {"package": package},
            "details": {"ami": "ami-0123"}, "image": null})
    }

    #[test]
    fn all_follows_the_cursor_and_a_page_says_how_to_go_on() {
        let asked = RefCell::new(Vec::new());
        let get = |path: &str| {
            asked.borrow_mut().push(path.to_string());
            Ok(if path.contains("cursor=c1") {
                (
                    200,
                    json!({"bakes": [bake("b1", "curl")], "next_cursor": null}),
                )
            } else {
                (
                    200,
                    json!({"bakes": [bake("b2", "nginx")], "next_cursor": "c1"}),
                )
            })
        };
        let args = ListArgs {
            state: Some("succeeded".into()),
            package: Some("a b".into()),
            limit: 1,
            all: true,
            ..ListArgs::default()
        };
        let mut out = Vec::new();
        list(&args, &get, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("ID"), "{text}");
        assert!(
            lines[1].starts_with("b2") && lines[1].contains("nginx"),
            "{text}"
        );
        assert!(
            lines[2].starts_with("b1") && lines[2].contains("ami-0123"),
            "{text}"
        );
        assert_eq!(
            asked.borrow()[0],
            "/api/kiln/v1/bakes?state=succeeded&package=a+b&limit=1"
        );
        let one = ListArgs { all: false, ..args };
        let mut out = Vec::new();
        list(&one, &get, &mut out).unwrap();
        assert!(
            String::from_utf8(out)
                .unwrap()
                .ends_with("more: --cursor c1\n")
        );
    }

    #[test]
    fn a_refusal_is_an_error_with_kilns_message_and_escapes_never_reach_the_terminal() {
        let get = |_: &str| Ok((400, json!({"message": "query parameter 'state' must be…"})));
        let err = list(&ListArgs::default(), &get, &mut Vec::new()).unwrap_err();
        assert!(
            err.to_string()
                .contains("HTTP 400: query parameter 'state'"),
            "{err}"
        );
        let hostile = bake("b\u{1b}[2J", "x\u{7}");
        let cells = columns(&hostile);
        assert_eq!(cells[0], "b?[2J");
        assert_eq!(cells[2], "x?");
    }
}
