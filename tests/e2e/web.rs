//! The web page in headless Chromium (Debian's `chromium`), driven over the Chrome DevTools
//! protocol on a pipe (`--remote-debugging-pipe`: no port, no WebSocket client needed). The
//! pages render real bakes: an AMI baked by real Packer against moto, and a long-running bake
//! whose Packer is the fake in `drip` mode (a line every 0.3 s until stopped), for the live log
//! and cancel. Screenshots are kept under `target/web-shots/`.

use crate::harness::*;
use browser::Browser;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

const SECRET: &str = "kilnWebTestSecret/DoNotLeak+0123456789";

fn shots() -> PathBuf {
    let dir = PathBuf::from(REPO).join("target/web-shots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The JavaScript text of a string literal (JSON is a subset of JavaScript).
fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

#[test]
fn the_page_lists_real_bakes_shows_one_starts_a_bake_from_bake_options_and_shows_the_system() {
    let moto = Moto::start();
    let seed = moto.seed();
    let data = tempfile::tempdir().unwrap();
    let kiln = Kiln::start(data.path(), &moto_config(&moto, &seed, SECRET, ""));
    // What the page's form sends, so the form's request is answered by this bake.
    let body = json!({"package": "hello_1.0-h4.abc123_all", "base_os": "ubuntu",
        "cloud_provider_type": "aws"});
    let id = kiln.bake_id("us-east-1", &body);
    let status = kiln.wait(&id, Duration::from_secs(180));
    assert_eq!(status["result"], "SUCCESS", "log: {}", kiln.log(&id));
    let ami = kiln.get(&format!("/api/v1/us-east-1/bake/{id}")).json()["ami"]
        .as_str()
        .unwrap()
        .to_string();

    let mut b = Browser::start();
    let base = format!("http://{}", kiln.addr);

    // The list: the bake, newest first, with its package and AMI.
    b.goto(&format!("{base}/#/"));
    let row = format!("document.querySelector('#bakes tr[data-id={}]')", js(&id));
    b.wait_for(&format!("{row} !== null"), "the bake in the list");
    assert_eq!(
        b.eval(&format!("{row}.querySelector('.package').textContent")),
        json!("hello_1.0-h4.abc123_all")
    );
    assert!(b.text(&row).contains(&ami), "{}", b.text(&row));
    assert!(b.text(&row).contains("succeeded"));
    b.wait_for(
        "document.getElementById('health').textContent.includes('UP')",
        "the health pill",
    );
    b.screenshot("list.png");

    // Filters: a state that matches nothing; then request data that is HTML stays text.
    b.goto(&format!("{base}/#/?state=running"));
    b.wait_for(
        "document.getElementById('no-bakes') !== null",
        "an empty list",
    );
    b.goto(&format!("{base}/#/?state=%3Cimg%20src%3Dx%20id%3Dpwned%3E"));
    b.wait_for(
        "document.querySelector('#bake-list .error') !== null",
        "the API's 400 on the page",
    );
    assert!(
        b.text("document.querySelector('#bake-list .error')")
            .contains("<img src=x id=pwned>")
    );
    assert_eq!(b.eval("document.getElementById('pwned')"), Value::Null);

    // The bake page: state, image, identity, inputs, recipe with masked variables, the log.
    b.goto(&format!("{base}/#/bake/{id}"));
    b.wait_for(
        "document.querySelector('#bake-summary [data-phase=succeeded]') !== null",
        "the bake page",
    );
    assert!(b.text("document.getElementById('images')").contains(&ami));
    let page = b.text("document.getElementById('bake-view')");
    let view = kiln.get(&format!("/api/kiln/v1/bakes/{id}")).json();
    for shown in [
        view["identity"].as_str().unwrap(),
        view["recipe"]["name"].as_str().unwrap(),
        "Variables (secrets masked)",
        "aws_region",
        // The real bake's timeline, as the view has it.
        view["timeline"][0]["phase"].as_str().expect("a timeline"),
    ] {
        assert!(page.contains(shown), "'{shown}' not on the page");
    }
    assert!(!page.contains(SECRET), "the secret is on the page");
    assert_eq!(
        b.eval("document.getElementById('cancel').hidden"),
        json!(true)
    );
    b.wait_for(
        "document.getElementById('log-state').textContent.startsWith('complete')",
        "the whole log",
    );
    let log = b.text("document.getElementById('log')");
    assert!(
        log.contains("Creating AMI") || log.contains("ami-"),
        "{log}"
    );
    b.screenshot("bake.png");

    // The timeline and the diagnosis, when a view has them (another part of kiln fills them in;
    // here the page's own renderer gets a real view with both added, hostile text included).
    b.eval(&format!(
        "(async () => {{
           const v = await (await fetch('/api/kiln/v1/bakes/' + {id})).json();
           v.timeline = [
             {{phase: 'launch', started_ms: v.created_ms, ended_ms: v.created_ms + 4000, seconds: 4}},
             {{phase: 'provision <img src=x id=pwned2>', started_ms: v.created_ms, ended_ms: null, seconds: null}}];
           v.diagnosis = {{code: 'ssh_timeout', summary: 'SSH never answered <b id=pwned3>',
             hint: 'check the security group'}};
           document.getElementById('bake-summary').replaceChildren(...bakeSummary(v)[0].flat());
         }})()",
        id = js(&id)
    ));
    let timeline = b.text("document.getElementById('timeline')");
    assert!(
        timeline.contains("launch") && timeline.contains("4.0 s"),
        "{timeline}"
    );
    assert!(
        timeline.contains("provision <img src=x id=pwned2>"),
        "{timeline}"
    );
    let diagnosis = b.text("document.getElementById('diagnosis')");
    assert!(
        diagnosis.contains("SSH never answered <b id=pwned3>"),
        "{diagnosis}"
    );
    assert!(diagnosis.contains("check the security group") && diagnosis.contains("ssh_timeout"));
    assert_eq!(
        b.eval("[document.getElementById('pwned2'), document.getElementById('pwned3')]"),
        json!([null, null])
    );

    // A new bake from the base images in bakeOptions: the same request is answered by the
    // existing bake, and the page says why.
    b.goto(&format!("{base}/#/new"));
    b.wait_for(
        "document.querySelector('#new-base-os option[value=ubuntu]') !== null",
        "the base images from /bakeOptions",
    );
    assert_eq!(
        b.eval("document.getElementById('new-region').value"),
        json!("us-east-1")
    );
    b.eval("document.getElementById('new-package').value = 'hello_1.0-h4.abc123_all'");
    b.screenshot("new.png");
    b.eval("document.querySelector('#new-bake button[type=submit]').click()");
    b.wait_for(
        "location.hash.startsWith('#/bake/')",
        "the bake page of the bake that answered",
    );
    assert_eq!(b.eval("location.hash"), json!(format!("#/bake/{id}")));
    b.wait_for(
        "(document.getElementById('reuse') || {textContent: ''}).textContent.includes('existing bake')",
        "the reuse explanation",
    );
    // A request kiln refuses is shown with kiln's message, naming the field.
    b.goto(&format!("{base}/#/new"));
    b.wait_for(
        "document.getElementById('new-package') !== null",
        "the form",
    );
    b.eval("document.getElementById('new-package').value = 'nginx {{user `x`}}'");
    b.eval("document.querySelector('#new-bake button[type=submit]').click()");
    b.wait_for(
        "document.querySelector('#new-outcome .error') !== null",
        "the refusal",
    );
    assert!(
        b.text("document.getElementById('new-outcome')")
            .contains("400")
    );

    // Health, instances and metrics.
    b.goto(&format!("{base}/#/system"));
    b.wait_for(
        "document.querySelector('#system-health .pill') !== null && \
         document.querySelector('#system-instances table') !== null && \
         document.getElementById('metrics') !== null",
        "the system panel",
    );
    assert_eq!(
        b.text("document.querySelector('#system-health .pill')"),
        "UP"
    );
    assert!(
        b.text("document.getElementById('system-instances')")
            .contains("IDLE")
    );
    assert!(
        b.text("document.getElementById('metrics')")
            .contains("kiln_")
    );
    b.screenshot("system.png");
}

#[test]
fn the_live_log_grows_while_a_bake_runs_following_stops_and_cancel_asks_first() {
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(data.path()).unwrap();
    let config = data.path().join("kiln.yml");
    std::fs::write(&config, fake_packer_config("    maxConcurrent: 1\n")).unwrap();
    let kiln = Kiln::start_env(
        data.path(),
        &config,
        &[
            ("FAKE_PACKER_MODE", "drip"),
            ("FAKE_PACKER_MAX_SECONDS", "90"),
        ],
    );
    let body = json!({"package": "nginx", "base_os": "ubuntu", "cloud_provider_type": "aws"});
    let id = kiln.bake_id("us-east-1", &body);
    // One slot: a second bake waits, first in the queue.
    let other = json!({"package": "curl", "base_os": "ubuntu", "cloud_provider_type": "aws"});
    let waiting = kiln.bake_id("us-east-1", &other);

    let mut b = Browser::start();
    b.goto(&format!("http://{}/#/bake/{waiting}", kiln.addr));
    b.wait_for(
        "document.querySelector('#bake-summary [data-phase=queued]') !== null",
        "a queued bake",
    );
    let state = b.text("document.querySelector('#bake-summary dl')");
    assert!(state.contains("Queue position1"), "{state}");
    b.goto(&format!("http://{}/#/", kiln.addr));
    let row = format!(
        "document.querySelector('#bakes tr[data-id={}]')",
        js(&waiting)
    );
    b.wait_for(&format!("{row} !== null"), "the queued bake in the list");
    assert!(b.text(&row).contains("queued #1"), "{}", b.text(&row));

    b.goto(&format!("http://{}/#/bake/{id}", kiln.addr));
    b.wait_for(
        "document.querySelector('#bake-summary [data-phase=running]') !== null",
        "a running bake",
    );
    let events = |b: &mut Browser| {
        b.eval("Number(document.getElementById('log').getAttribute('data-events'))")
            .as_u64()
            .unwrap()
    };
    b.wait_for(
        "document.getElementById('log').textContent.includes('step 3')",
        "the log streaming",
    );
    let before = (
        events(&mut b),
        b.text("document.getElementById('log')").len(),
    );
    std::thread::sleep(Duration::from_secs(2));
    let after = (
        events(&mut b),
        b.text("document.getElementById('log')").len(),
    );
    assert!(
        after.0 > before.0 && after.1 > before.1,
        "{before:?} → {after:?}"
    );
    // Following keeps the newest line in view.
    b.wait_for(
        "(l => l.scrollHeight > l.clientHeight && l.scrollTop + l.clientHeight >= l.scrollHeight - 4)\
         (document.getElementById('log'))",
        "the log scrolled to its end",
    );
    b.screenshot("bake-running.png");
    // The README's picture (docs/web-page.png is a copy of it).
    b.screenshot_scaled("readme-bake-running.png", 0.6);

    // Stop following: the log keeps growing, the view stays where it is.
    b.eval("document.getElementById('follow').click()");
    assert_eq!(b.text("document.getElementById('follow')"), "Follow");
    let top = b.eval("document.getElementById('log').scrollTop");
    let grown = events(&mut b) + 3;
    b.wait_for(
        &format!("Number(document.getElementById('log').getAttribute('data-events')) >= {grown}"),
        "more log",
    );
    assert_eq!(b.eval("document.getElementById('log').scrollTop"), top);

    // Cancel asks first: declined, nothing happens.
    b.answer_dialogs(false);
    b.eval("document.getElementById('cancel').click()");
    b.wait_for(
        "document.getElementById('cancel-result').textContent === 'not canceled'",
        "the declined cancel",
    );
    let asked = b.dialogs();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(
        asked[0].contains(&format!("Cancel bake {id}?")),
        "{asked:?}"
    );
    assert_eq!(
        kiln.get(&format!("/api/kiln/v1/bakes/{id}")).json()["phase"],
        "running"
    );
    // Accepted: the bake is canceled, the page and the API say so, and the log ends.
    b.answer_dialogs(true);
    b.eval("document.getElementById('cancel').click()");
    b.wait_for(
        "document.querySelector('#bake-summary [data-phase=canceled]') !== null",
        "the canceled bake on the page",
    );
    assert_eq!(b.dialogs().len(), 2);
    assert_eq!(
        kiln.get(&format!("/api/kiln/v1/bakes/{id}")).json()["phase"],
        "canceled"
    );
    b.wait_for(
        "document.getElementById('log-state').textContent.startsWith('complete')",
        "the end of the log stream",
    );
    assert!(
        b.text("document.getElementById('log')")
            .contains("Cancelling build")
    );
    b.screenshot("bake-canceled.png");
    // The waiting bake ran once the slot was free; it is not left running.
    let r = kiln.get(&format!("/api/v1/us-east-1/cancel/{waiting}"));
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn many_bakes_page_with_older_and_newest_links() {
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(data.path()).unwrap();
    let config = data.path().join("kiln.yml");
    std::fs::write(&config, fake_packer_config("")).unwrap();
    let kiln = Kiln::start_env(data.path(), &config, &[("FAKE_PACKER_MODE", "fail")]);
    let mut ids = Vec::new();
    for i in 0..5 {
        let body = json!({"package": format!("pkg{i}"), "base_os": "ubuntu",
            "cloud_provider_type": "aws"});
        ids.push(kiln.bake_id("us-east-1", &body));
        std::thread::sleep(Duration::from_millis(5));
    }
    for id in &ids {
        kiln.wait(id, Duration::from_secs(60));
    }
    let mut b = Browser::start();
    let rows = "Array.from(document.querySelectorAll('#bakes tbody tr')).map(r => r.dataset.id)";
    b.goto(&format!("http://{}/#/?limit=2", kiln.addr));
    let mut seen: Vec<String> = Vec::new();
    for page in 0..3 {
        b.wait_for(
            &format!(
                "document.querySelectorAll('#bakes tbody tr').length > 0 && {rows}[0] !== {}",
                js(seen.last().map_or("", String::as_str))
            ),
            "a page of bakes",
        );
        let ids: Vec<String> = serde_json::from_value(b.eval(rows)).unwrap();
        seen.extend(ids);
        if page < 2 {
            b.eval("location.hash = document.getElementById('older').getAttribute('href')");
        }
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);
    assert_eq!(b.eval("document.getElementById('older')"), Value::Null);
    b.eval("document.getElementById('newest').click()");
    b.wait_for(
        &format!("{rows}[0] === {}", js(&ids[4])),
        "the newest page again",
    );
}

/// A headless Chromium driven over the DevTools protocol on fds 3 and 4.
mod browser {
    use base64::Engine;
    use serde_json::{Value, json};
    use std::fs::File;
    use std::io::{BufRead, BufReader, Write};
    use std::os::fd::{FromRawFd, RawFd};
    use std::os::unix::process::CommandExt;
    use std::process::{Child, Command, Stdio};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    const WAIT: Duration = Duration::from_secs(30);
    /// How long a fresh Chromium may take to answer its first command (more on a loaded CI
    /// machine with TCG guests running beside it).
    const FIRST_ANSWER: Duration = Duration::from_secs(60);

    /// The writing end towards Chromium, shared with the reader thread (which answers dialogs).
    struct Link {
        to: Mutex<File>,
        next_id: AtomicU64,
    }

    impl Link {
        fn send(&self, method: &str, params: Value, session: Option<&str>) -> u64 {
            self.try_send(method, params, session)
                .expect("write to chromium")
        }

        fn try_send(
            &self,
            method: &str,
            params: Value,
            session: Option<&str>,
        ) -> std::io::Result<u64> {
            let id = self.next_id.fetch_add(1, Ordering::SeqCst);
            let mut msg = json!({"id": id, "method": method, "params": params});
            if let Some(s) = session {
                msg["sessionId"] = json!(s);
            }
            let mut bytes = msg.to_string().into_bytes();
            bytes.push(0);
            self.to.lock().unwrap().write_all(&bytes)?;
            Ok(id)
        }
    }

    #[derive(Default)]
    struct Dialogs {
        accept: bool,
        seen: Vec<String>,
    }

    pub struct Browser {
        child: Child,
        link: Arc<Link>,
        replies: Receiver<Value>,
        session: String,
        dialogs: Arc<Mutex<Dialogs>>,
        _profile: tempfile::TempDir,
    }

    /// A pipe whose ends are close-on-exec and numbered 10 or above (so they never collide with
    /// the 3 and 4 the child gets).
    fn pipe() -> (RawFd, RawFd) {
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two fds into the array we own.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        let high = |fd: RawFd| {
            // SAFETY: duplicating and closing fds this function just made.
            unsafe {
                let h = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10);
                assert!(h >= 10);
                libc::close(fd);
                h
            }
        };
        (high(fds[0]), high(fds[1]))
    }

    impl Browser {
        /// Starts Chromium and opens a page. A Chromium that does not answer at all (seen once
        /// on a loaded CI machine) is stopped and started again, twice at most.
        pub fn start() -> Browser {
            let mut failures = Vec::new();
            for _ in 0..3 {
                match Browser::launch() {
                    Ok(b) => return b,
                    Err(e) => failures.push(e),
                }
            }
            panic!("chromium did not start:\n{}", failures.join("\n"));
        }

        fn launch() -> Result<Browser, String> {
            let exe = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
                .into_iter()
                .find(|p| std::path::Path::new(p).exists())
                .expect("chromium is not installed: apt-get install chromium (scripts/test does)");
            let profile = tempfile::tempdir().unwrap();
            let (child_in, to_child) = pipe();
            let (from_child, child_out) = pipe();
            let mut cmd = Command::new(exe);
            cmd.args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-pipe",
                "--window-size=1280,900",
                "--hide-scrollbars",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(profile.path().join("stderr")).unwrap());
            // SAFETY: only async-signal-safe dup2 calls between fork and exec; dup2 clears
            // close-on-exec on the new fds, so exactly 3 and 4 reach Chromium.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::dup2(child_in, 3) < 0 || libc::dup2(child_out, 4) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let child = cmd.spawn().expect("start chromium");
            // SAFETY: closing our copies of the child's ends, and owning ours from here on.
            let (to, from) = unsafe {
                libc::close(child_in);
                libc::close(child_out);
                (File::from_raw_fd(to_child), File::from_raw_fd(from_child))
            };
            let link = Arc::new(Link {
                to: Mutex::new(to),
                next_id: AtomicU64::new(1),
            });
            let dialogs = Arc::new(Mutex::new(Dialogs::default()));
            let (tx, replies) = channel();
            {
                let (link, dialogs) = (link.clone(), dialogs.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(from);
                    let mut buf = Vec::new();
                    while reader.read_until(0, &mut buf).is_ok_and(|n| n > 0) {
                        buf.pop();
                        let Ok(msg) = serde_json::from_slice::<Value>(&buf) else {
                            buf.clear();
                            continue;
                        };
                        buf.clear();
                        if msg["method"] == "Page.javascriptDialogOpening" {
                            let accept = {
                                let mut d = dialogs.lock().unwrap();
                                d.seen
                                    .push(msg["params"]["message"].as_str().unwrap_or("").into());
                                d.accept
                            };
                            link.send(
                                "Page.handleJavaScriptDialog",
                                json!({"accept": accept}),
                                msg["sessionId"].as_str(),
                            );
                        } else if msg.get("id").is_some() && tx.send(msg).is_err() {
                            return;
                        }
                    }
                });
            }
            let mut b = Browser {
                child,
                link,
                replies,
                session: String::new(),
                dialogs,
                _profile: profile,
            };
            let target = b
                .try_call_in(
                    None,
                    "Target.createTarget",
                    json!({"url": "about:blank"}),
                    FIRST_ANSWER,
                )
                .map_err(|e| {
                    let stderr = std::fs::read_to_string(b._profile.path().join("stderr"));
                    format!("{e}; its stderr: {}", stderr.unwrap_or_default().trim())
                })?;
            let attached = b.call_in(
                None,
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            );
            b.session = attached["sessionId"].as_str().unwrap().to_string();
            b.call("Page.enable", json!({}));
            b.call("Runtime.enable", json!({}));
            Ok(b)
        }

        fn call_in(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
            self.try_call_in(session, method, params, WAIT)
                .unwrap_or_else(|e| panic!("{e}"))
        }

        fn try_call_in(
            &mut self,
            session: Option<&str>,
            method: &str,
            params: Value,
            wait: Duration,
        ) -> Result<Value, String> {
            let id = self
                .link
                .try_send(method, params, session)
                .map_err(|e| format!("chromium went away ({method}): {e}"))?;
            let deadline = Instant::now() + wait;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match self.replies.recv_timeout(left) {
                    Ok(msg) if msg["id"] == id => {
                        assert!(msg.get("error").is_none(), "{method}: {msg}");
                        return Ok(msg["result"].clone());
                    }
                    Ok(_) => {}
                    Err(RecvTimeoutError::Timeout) => {
                        return Err(format!("chromium did not answer {method} in {wait:?}"));
                    }
                    Err(RecvTimeoutError::Disconnected) => {
                        return Err(format!("chromium went away ({method})"));
                    }
                }
            }
        }

        pub fn call(&mut self, method: &str, params: Value) -> Value {
            let session = self.session.clone();
            self.call_in(Some(&session), method, params)
        }

        /// Loads `url` and waits until the document has loaded.
        pub fn goto(&mut self, url: &str) {
            self.call("Page.navigate", json!({"url": url}));
            // A hash change alone is no navigation: give the page's router a moment.
            std::thread::sleep(Duration::from_millis(150));
            self.wait_for("document.readyState === 'complete'", "the page to load");
        }

        /// Evaluates an expression in the page (awaiting a promise) and returns its value.
        pub fn eval(&mut self, expression: &str) -> Value {
            let r = self.call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            );
            assert!(
                r.get("exceptionDetails").is_none(),
                "{expression}: {}",
                r["exceptionDetails"]
            );
            r["result"]["value"].clone()
        }

        /// The text of the element an expression names.
        pub fn text(&mut self, element: &str) -> String {
            self.eval(&format!("({element}).textContent"))
                .as_str()
                .unwrap_or_default()
                .to_string()
        }

        /// Waits until `condition` (a JavaScript expression) is true.
        pub fn wait_for(&mut self, condition: &str, what: &str) {
            let deadline = Instant::now() + WAIT;
            let guarded = format!(
                "(() => {{ try {{ return !!({condition}); }} catch (_) {{ return false; }} }})()"
            );
            while self.eval(&guarded) != Value::Bool(true) {
                if Instant::now() > deadline {
                    let at = self.eval("location.href");
                    let page = self.eval("document.body ? document.body.innerText : ''");
                    panic!("waited 30 s for {what} at {at}; the page shows:\n{page}");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }

        /// Whether the page's next dialogs (`confirm`) are accepted.
        pub fn answer_dialogs(&mut self, accept: bool) {
            self.dialogs.lock().unwrap().accept = accept;
        }

        /// The messages of the dialogs the page opened so far.
        pub fn dialogs(&self) -> Vec<String> {
            self.dialogs.lock().unwrap().seen.clone()
        }

        /// Saves a PNG of the viewport under `target/web-shots/`.
        pub fn screenshot(&mut self, name: &str) {
            self.save_shot(name, json!({"format": "png"}));
        }

        /// Saves a PNG of the top 1280×800 of the page at `scale` (a small one for the README).
        pub fn screenshot_scaled(&mut self, name: &str, scale: f64) {
            let clip = json!({"x": 0, "y": 0, "width": 1280, "height": 800, "scale": scale});
            self.save_shot(name, json!({"format": "png", "clip": clip}));
        }

        fn save_shot(&mut self, name: &str, params: Value) {
            let shot = self.call("Page.captureScreenshot", params);
            let png = base64::engine::general_purpose::STANDARD
                .decode(shot["data"].as_str().unwrap())
                .unwrap();
            assert!(png.starts_with(b"\x89PNG"));
            std::fs::write(super::shots().join(name), png).unwrap();
        }
    }

    impl Drop for Browser {
        fn drop(&mut self) {
            // Asked to close, Chromium ends its renderers too; killed only if it does not.
            let _ = self.link.try_send("Browser.close", json!({}), None);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
