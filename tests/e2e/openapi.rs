//! `/openapi.json` against a live kiln: schemathesis (from the test venv; `scripts/test` installs
//! it) generates requests for every described operation from the document, bounded in examples
//! and time, and checks that kiln never answers 5xx and every answer matches what the document
//! says (status, content type, schema). Packer is the fake in `fail` mode: the fuzzer starts many
//! bakes, and a real Packer run per generated request would need a cloud; every one fails at once.

use crate::harness::{Kiln, REPO, stand_in_config, venv};
use std::process::Command;

#[test]
fn schemathesis_finds_no_server_error_and_no_answer_that_breaks_the_document() {
    let schemathesis = venv().join("bin/schemathesis");
    assert!(
        schemathesis.exists(),
        "{} is missing: scripts/test installs schemathesis into the test venv \
         (pip install schemathesis)",
        schemathesis.display()
    );
    let data = tempfile::tempdir().unwrap();
    let yaml = stand_in_config(&format!("{REPO}/tests/support/fake-packer"), "");
    std::fs::create_dir_all(data.path()).unwrap();
    let config = data.path().join("kiln.yml");
    std::fs::write(&config, yaml).unwrap();
    let kiln = Kiln::start_env(data.path(), &config, &[("FAKE_PACKER_MODE", "fail")]);
    // From a file: given the document's URL, schemathesis leaves that operation out.
    let doc = kiln.get("/openapi.json");
    assert_eq!(doc.status, 200);
    let file = data.path().join("openapi.json");
    std::fs::write(&file, &doc.body).unwrap();
    let base = format!("http://{}", kiln.addr);
    let out = Command::new(&schemathesis)
        .current_dir(data.path())
        .args([
            "run",
            file.to_str().unwrap(),
            "--url",
            &base,
            // The manifest bake runs renderers this kiln has none of: every well-formed request
            // is Rosco's documented 500. tests/e2e/manifests.rs covers it with real renderers.
            "--exclude-path",
            "/api/v2/manifest/bake/{type}",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "25",
            "--max-time",
            "90",
            // One worker: with two, Python 3.11's `ast` (which Hypothesis uses to describe its
            // strategies) failed once between threads ("AST constructor recursion depth
            // mismatch", a CPython bug), an error of the tool's and not of kiln's.
            "--workers",
            "1",
            "--request-timeout",
            "15",
            "--seed",
            "17",
            "--no-color",
        ])
        .output()
        .expect("run schemathesis");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every operation the document describes was exercised.
    let doc = doc.json();
    let operations: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum::<usize>()
        // The manifest bake, left out above.
        - 1;
    assert!(
        report.contains(&format!("Tested: {operations}")),
        "not every one of the {operations} operations was tested:\n{report}"
    );
    // kiln is still there and healthy after the run.
    assert_eq!(kiln.get("/health").status, 200);
}
