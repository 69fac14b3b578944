//! Hostile requests against the real binary, real Packer 1.6.6 and moto: Packer template
//! syntax in any field is refused naming the field, near-misses bake with their text printed
//! literally and the secret (nor a transformation of it) nowhere; the operator's variables,
//! option-like package names, control characters, limits beyond the operator's and non-object
//! bodies are 400s that say what to fix; spellings of one template are one template.

use crate::harness::*;
use serde_json::{Value, json};
use std::time::Duration;

const SECRET: &str = "kilnHostileSecret/0123456789abcdefXYZ";

/// The no-SSH test template, with a `note` variable, the request's values as tags, and a
/// shell-local step that prints every value Packer received.
fn echo_template() -> String {
    let text = std::fs::read_to_string(format!("{REPO}/tests/fixtures/packer/aws-ebs-nossh.json"))
        .unwrap();
    let mut t: Value = serde_json::from_str(&text).unwrap();
    t["variables"]["note"] = json!("");
    t["builders"][0]["tags"]["note"] = json!("{{user `note`}}");
    let names = [
        "build_host",
        "build_info_url",
        "appversion",
        "aws_target_ami",
        "note",
        "repository",
        "packages",
    ];
    t["provisioners"][0]["environment_vars"] = names
        .iter()
        .map(|n| json!(format!("{n}={{{{user `{n}`}}}}")))
        .collect();
    let echo: String = names
        .iter()
        .map(|n| format!("echo \"ECHO {n}=[${n}]\"; "))
        .collect();
    t["provisioners"][0]["inline"] = json!([echo]);
    t.to_string()
}

fn start() -> (Moto, tempfile::TempDir, Kiln) {
    let moto = Moto::start();
    let seed = moto.seed();
    let data = tempfile::tempdir().unwrap();
    let yaml = moto_config(&moto, &seed, SECRET, "").replacen(
        "files: {",
        &format!(
            "files: {{\"profiles__rosco__packer__echo.json\": {}, ",
            serde_json::to_string(&echo_template()).unwrap()
        ),
        1,
    );
    let kiln = Kiln::start(data.path(), &yaml);
    (moto, data, kiln)
}

fn request() -> Value {
    json!({"package": "hello", "base_os": "ubuntu", "cloud_provider_type": "aws",
           "template_file_name": "echo.json", "ami_suffix": "1"})
}

/// The v1 create answer for `body`.
fn post(kiln: &Kiln, body: &Value) -> Response {
    kiln.post("/api/v1/us-east-1/bake", body)
}

fn assert_refused(r: &Response, field: &str, what: &str) {
    assert_eq!(r.status, 400, "{field}: {}", r.body);
    let message = r.json()["message"].as_str().unwrap_or_default().to_string();
    assert!(
        message.contains(field) && message.contains(what),
        "{field}: wanted '{what}', got {message}"
    );
}

/// `body` with `value` placed at `field` (a dotted path; `[0]` indexes artifacts).
fn with(field: &str, value: Value) -> Value {
    let mut body = request();
    match field.split_once('.') {
        None => body[field] = value,
        Some(("extended_attributes", k)) => body["extended_attributes"] = json!({ k: value }),
        Some(("package_artifacts[0]", k)) => {
            body["package_artifacts"] =
                json!([{"type": "deb", "name": "hello_1.0_all.deb", k: value}])
        }
        Some(_) => unreachable!("{field}"),
    }
    body
}

#[test]
fn packer_template_syntax_in_any_field_is_refused_naming_the_field() {
    let (_moto, _data, kiln) = start();
    let attacks = [
        r#"{{env "AWS_SECRET_ACCESS_KEY"}}"#,
        r#"x{{printf "%x" (env "AWS_SECRET_ACCESS_KEY")}}"#,
        r#"{{ env "AWS_SECRET_ACCESS_KEY" | upper }}"#,
        "{{user `aws_secret_key`}}",
        "{{aws_secretsmanager `prod/db` `password`}}",
        "{{- vault `secret/x` `y` -}}",
    ];
    let fields = [
        "package",
        "base_label",
        "base_name",
        "base_os",
        "base_ami",
        "build_host",
        "build_info_url",
        "job",
        "build_number",
        "commit_hash",
        "ami_name",
        "ami_suffix",
        "user",
        "vm_type",
        "instance_type",
        "template_file_name",
        "var_file_name",
        "account_name",
        "organization",
        "custom_managed_image_name",
        "request_id",
        "spinnaker_execution_id",
        "cloud_provider_type",
        "store_type",
        "publisher",
        "offer",
        "sku",
        "os_type",
        "package_type",
        "extended_attributes.note",
        "extended_attributes.repository",
        "extended_attributes.aws_subnet_id",
        "package_artifacts[0].reference",
        "package_artifacts[0].name",
        "package_artifacts[0].version",
        "package_artifacts[0].location",
        "package_artifacts[0].type",
        "package_artifacts[0].uuid",
    ];
    for (i, field) in fields.iter().enumerate() {
        let attack = attacks[i % attacks.len()];
        let r = post(&kiln, &with(field, json!(attack)));
        assert_refused(&r, &format!("field {field}: "), "template syntax");
    }
    // Attribute names, nested values and headers too.
    let mut body = request();
    body["extended_attributes"] = json!({ "{{env `HOME`}}": "x" });
    assert_refused(
        &post(&kiln, &body),
        "extended_attributes key",
        "template syntax",
    );
    let mut body = request();
    body["package_artifacts"] = json!([{"metadata": {"build": ["{{env `HOME`}}"]}}]);
    assert_refused(
        &post(&kiln, &body),
        "package_artifacts[0].metadata.build[0]",
        "template syntax",
    );
    let r = http(
        &kiln.addr,
        "POST",
        "/api/v1/us-east-1/bake",
        &[(
            "X-SPINNAKER-EXECUTION-ID",
            "{{env `AWS_SECRET_ACCESS_KEY`}}",
        )],
        request().to_string().as_bytes(),
    );
    assert_refused(&r, "X-SPINNAKER-EXECUTION-ID", "template syntax");
    // The kiln API refuses the same way, and nothing was baked.
    let r = kiln.post(
        "/api/kiln/v1/us-east-1/bakes",
        &with("build_host", json!(attacks[0])),
    );
    assert_refused(&r, "field build_host", "template syntax");
}

#[test]
fn near_misses_bake_through_real_packer_printed_literally_and_the_secret_nowhere() {
    let (moto, data, kiln) = start();
    let note = r#"{ {env "AWS_SECRET_ACCESS_KEY"} } }} {x} $(id) `id` ${HOME} 'q' "d""#;
    let mut body = request();
    body["build_host"] = json!("{ {env `AWS_SECRET_ACCESS_KEY`} }");
    body["build_info_url"] = json!("https://ci.example/job/}}/{x}/$(id)");
    body["ami_name"] = json!("hostile (v1) [x]");
    body["extended_attributes"] =
        json!({"note": note, "repository": "https://r.example/apt $(id) main"});
    let id = kiln.bake_id("us-east-1", &body);
    let s = kiln.wait(&id, Duration::from_secs(180));
    let log = kiln.log(&id);
    assert_eq!(s["state"], "COMPLETED", "{log}");

    // Packer printed every value as given: nothing was evaluated.
    for (name, value) in [
        ("build_host", "{ {env `AWS_SECRET_ACCESS_KEY`} }"),
        ("build_info_url", "https://ci.example/job/}}/{x}/$(id)"),
        ("note", note),
        ("repository", "https://r.example/apt $(id) main"),
        ("packages", "hello"),
    ] {
        let line = format!("ECHO {name}=[{value}]");
        assert!(log.contains(&line), "{line} not in log: {log}");
    }
    let bake = kiln.get(&format!("/api/v1/us-east-1/bake/{id}")).json();
    let ami = bake["ami"].as_str().unwrap();
    let image = moto.inspect("image", &["us-east-1", ami]);
    assert_eq!(image["name"], "hostile (v1) [x]-all-1-ubuntu");
    assert_eq!(image["tags"]["note"], note);
    assert_eq!(
        image["tags"]["build_host"],
        "{ {env `AWS_SECRET_ACCESS_KEY`} }"
    );

    // The secret, and the forms a template could have turned it into, are nowhere.
    let hex: String = SECRET.bytes().map(|b| format!("{b:02x}")).collect();
    let view = kiln.get(&format!("/api/kiln/v1/bakes/{id}")).body;
    for form in [
        SECRET.to_string(),
        SECRET.to_uppercase(),
        SECRET.to_lowercase(),
        hex,
    ] {
        for (what, text) in [
            ("log", &log),
            ("image", &image.to_string()),
            ("view", &view),
        ] {
            assert!(!text.contains(&form), "{form} in the {what}");
        }
    }
    let stderr = std::fs::read_to_string(&kiln.stderr).unwrap_or_default();
    assert!(!stderr.contains(SECRET), "secret in kiln's log");
    assert!(
        files_containing(data.path(), SECRET)
            .iter()
            .all(|f| f.ends_with("kiln.yml"))
    );

    // Item 14: another spelling of the template is the same bake.
    let mut again = body.clone();
    again["template_file_name"] = json!("./sub/../echo.json");
    let r = post(&kiln, &again);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["id"], id, "one template, one identity");
    assert!(r.header("X-Kiln-Reused").is_some());
    let view = kiln.get(&format!("/api/kiln/v1/bakes/{id}")).json();
    assert_eq!(view["recipe"]["template"], "echo.json");
}

#[test]
fn what_the_operator_owns_and_what_packer_cannot_take_are_400s_that_say_what_to_fix() {
    let (_moto, _data, kiln) = start();
    let attr = |k: &str, v: Value| {
        let mut b = request();
        b["extended_attributes"] = json!({ k: v });
        b
    };
    // Item 2: the operator's variables.
    for owned in [
        "configDir",
        "aws_access_key",
        "aws_secret_key",
        "aws_session_token",
    ] {
        let r = post(&kiln, &attr(owned, json!("/tmp")));
        assert_refused(&r, owned, "bakery operator's setting");
    }
    assert_refused(
        &post(&kiln, &attr("a=b", json!("x"))),
        "extended_attributes key",
        "not a Packer variable name",
    );
    assert_refused(
        &post(&kiln, &attr("-var", json!("x"))),
        "extended_attributes key",
        "not a Packer variable name",
    );
    // Item 3: package names are package names, from any source.
    for bad in [
        "-oAPT::Update::Pre-Invoke::=id",
        "hello;id",
        "$(id)",
        "a'b",
        "--allow-unauthenticated",
    ] {
        let mut b = request();
        b["package"] = json!(format!("hello {bad}"));
        assert_refused(&post(&kiln, &b), "package", "package");
    }
    assert_refused(
        &post(&kiln, &attr("packages", json!("hello -y"))),
        "extended_attributes.packages",
        "must start with a letter or digit",
    );
    assert_refused(
        &post(
            &kiln,
            &attr(
                "repository",
                json!("deb [trusted=yes] http://evil.example/ x main"),
            ),
        ),
        "extended_attributes.repository",
        "options are the bakery operator's",
    );
    // Item 4: control characters and sizes.
    for bad in ["a\u{0}b", "a\nb", "a\u{1b}[31mb", "a\rb"] {
        assert_refused(
            &post(&kiln, &with("build_host", json!(bad))),
            "field build_host",
            "control character",
        );
    }
    assert_refused(
        &post(&kiln, &with("build_host", json!("a".repeat(140_000)))),
        "field build_host",
        "128 KiB",
    );
    // Item 6: limits only shorten the operator's.
    for bad in ["0", "-1s", "2h", "18446744073709551615h", "forever"] {
        assert_refused(
            &post(&kiln, &attr("kiln_timeout", json!(bad))),
            "kiln_timeout",
            "use a duration between 1s and 30m",
        );
    }
    // Item 8: the body is a JSON object.
    for body in ["[1,2]", "\"hello\"", "42", "null"] {
        let r = http(
            &kiln.addr,
            "POST",
            "/api/v1/us-east-1/bake",
            &[],
            body.as_bytes(),
        );
        assert_refused(&r, "the bake request must be a JSON object", "not");
    }
}

#[test]
fn a_command_line_beyond_arg_max_is_a_400_not_a_bake_that_fails_later() {
    let moto = Moto::start();
    let seed = moto.seed();
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("kiln.yml");
    std::fs::write(&config, moto_config(&moto, &seed, SECRET, "")).unwrap();
    // Packer inherits kiln's environment: 1.5 MB of it leaves less than 600 KB of ARG_MAX's
    // 2 MiB for the variables, which a request within the 1 MiB body limit can exceed.
    // (One environment string may not exceed 128 KiB either, hence twelve.)
    let ballast = "x".repeat(120_000);
    let names: Vec<String> = (0..12).map(|i| format!("KILN_TEST_BALLAST_{i}")).collect();
    let env: Vec<(&str, &str)> = names
        .iter()
        .map(|n| (n.as_str(), ballast.as_str()))
        .collect();
    let kiln = Kiln::start_env(data.path(), &config, &env);
    let big: serde_json::Map<String, Value> = (0..7)
        .map(|i| (format!("big_{i}"), json!("x".repeat(100_000))))
        .collect();
    let mut b = json!({"package": "hello", "base_os": "ubuntu"});
    b["extended_attributes"] = Value::Object(big);
    let r = post(&kiln, &b);
    assert_refused(&r, "Packer's command line", "ARG_MAX");
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("extended_attributes.big_"),
        "{}",
        r.body
    );
}

#[test]
fn request_values_cannot_forge_kilns_log_lines() {
    let (_moto, _data, kiln) = start();
    let forged = "kiln: FORGED bake succeeded";
    for field in [
        "build_host",
        "ami_name",
        "extended_attributes.note",
        "request_id",
    ] {
        let r = post(&kiln, &with(field, json!(format!("x\n{forged}\u{1b}[2J"))));
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(
            !r.body.contains('\u{1b}'),
            "raw escape in the answer: {}",
            r.body
        );
    }
    // A region in the URL is request text too.
    let r = http(
        &kiln.addr,
        "POST",
        "/api/v1/us%0A-east-1/bake",
        &[],
        request().to_string().as_bytes(),
    );
    assert_refused(&r, "region (in the URL path)", "control character");
    let stderr = std::fs::read_to_string(&kiln.stderr).unwrap_or_default();
    assert!(
        !stderr.contains(forged) && !stderr.contains("\u{1b}[2J"),
        "{stderr}"
    );
}
