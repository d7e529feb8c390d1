//! Registry faults a real registry cannot be made to produce on demand: 429 with
//! Retry-After, 5xx followed by success, a registry that never answers, and garbage replies.
//! These use a scripted HTTP server on loopback, and only for these faults (issue 2).

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::*;

/// What the scripted server sends for the n-th manifest request (0-based), given the
/// request line; other requests (tag lists) get n = usize::MAX.
type Script = dyn Fn(usize, &str) -> Reply + Send + Sync;

fn response(code: u16, headers: &[(&'static str, String)], body: &str) -> String {
    let mut s = format!(
        "HTTP/1.1 {code} Scripted\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    s.push_str("\r\n");
    s.push_str(body);
    s
}

#[derive(Clone)]
enum Reply {
    Status(u16, Vec<(&'static str, String)>),
    Body(u16, Vec<(&'static str, String)>, String),
    /// Accept, read the request, never answer.
    Hang,
    Raw(Vec<u8>),
}

struct FakeRegistry {
    host: String,
    manifest_requests: Arc<AtomicUsize>,
    times: Arc<Mutex<Vec<Instant>>>,
}

impl FakeRegistry {
    /// `/v2/` always answers 200 (anonymous); manifest requests follow the script.
    fn start(script: Box<Script>) -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
        let manifest_requests = Arc::new(AtomicUsize::new(0));
        let times = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Script> = Arc::from(script);
        let (n, t) = (manifest_requests.clone(), times.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let (script, n, t) = (script.clone(), n.clone(), t.clone());
                std::thread::spawn(move || serve(stream, &*script, &n, &t));
            }
        });
        FakeRegistry {
            host,
            manifest_requests,
            times,
        }
    }
}

fn serve(mut stream: TcpStream, script: &Script, n: &AtomicUsize, times: &Mutex<Vec<Instant>>) {
    let Some(head) = read_request_head(&mut stream) else {
        return;
    };
    let line = head.lines().next().unwrap_or("").to_string();
    let reply = if head.contains("/manifests/") {
        times.lock().unwrap().push(Instant::now());
        script(n.fetch_add(1, Ordering::SeqCst), &line)
    } else if head.contains("/tags/list") {
        script(usize::MAX, &line)
    } else {
        Reply::Status(200, vec![])
    };
    match reply {
        Reply::Status(code, headers) => {
            let _ = stream.write_all(response(code, &headers, "").as_bytes());
        }
        Reply::Body(code, headers, body) => {
            let _ = stream.write_all(response(code, &headers, &body).as_bytes());
        }
        Reply::Hang => std::thread::sleep(Duration::from_secs(60)),
        Reply::Raw(bytes) => {
            let _ = stream.write_all(&bytes);
        }
    }
}

fn found() -> Reply {
    Reply::Status(
        200,
        vec![(
            "Docker-Content-Digest",
            format!("sha256:{}", "a".repeat(64)),
        )],
    )
}

fn check(reg: &FakeRegistry, extra: &[&str]) -> (Run, String) {
    let w = Workdir::new();
    let image = format!("{}/fault/app:1", reg.host);
    w.write("a.yaml", &deployment("a", &[&image]));
    let mut args = vec!["check", "--all", "--format", "json"];
    args.extend_from_slice(extra);
    (w.run(&args), image)
}

#[test]
fn retry_after_is_honoured_on_429() {
    let reg = FakeRegistry::start(Box::new(|n, _| {
        if n == 0 {
            Reply::Status(429, vec![("Retry-After", "1".into())])
        } else {
            found()
        }
    }));
    let (run, image) = check(&reg, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.statuses()[&image], "ok");
    assert_eq!(reg.manifest_requests.load(Ordering::SeqCst), 2);
    let times = reg.times.lock().unwrap();
    assert!(
        times[1] - times[0] >= Duration::from_millis(950),
        "waited {:?}, Retry-After said 1 s",
        times[1] - times[0]
    );
}

#[test]
fn a_500_then_200_is_retried_to_success() {
    let reg = FakeRegistry::start(Box::new(|n, _| {
        if n == 0 {
            Reply::Status(500, vec![])
        } else {
            found()
        }
    }));
    let (run, image) = check(&reg, &[]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(run.statuses()[&image], "ok");
    assert_eq!(
        run.json()["summary"]["requests"]["retries"].as_u64(),
        Some(1)
    );
}

#[test]
fn a_429_storm_ends_rate_limited_and_undecided() {
    let reg = FakeRegistry::start(Box::new(|_, _| {
        Reply::Status(429, vec![("Retry-After", "0".into())])
    }));
    let (run, image) = check(&reg, &[]);
    assert_eq!(run.code, 3, "never a pass: {}", run.stdout);
    assert_eq!(run.statuses()[&image], "rate-limited");
    // Bounded: the first try plus three retries.
    assert_eq!(reg.manifest_requests.load(Ordering::SeqCst), 4);
}

#[test]
fn a_registry_that_never_answers_cannot_hang_the_tool() {
    let reg = FakeRegistry::start(Box::new(|_, _| Reply::Hang));
    let start = Instant::now();
    let (run, image) = check(&reg, &["--timeout", "1", "--deadline", "3"]);
    assert_eq!(run.code, 3, "{}", run.stdout);
    assert_eq!(run.statuses()[&image], "unreachable");
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "the deadline holds"
    );
}

#[test]
fn garbage_replies_are_undecided_not_a_crash() {
    let reg = FakeRegistry::start(Box::new(|_, _| {
        Reply::Raw(b"\x00\xffNOT HTTP AT ALL\r\n\r\n".to_vec())
    }));
    let (run, image) = check(&reg, &["--timeout", "2"]);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.statuses()[&image], "unreachable");
}

#[test]
fn an_unexpected_status_is_a_registry_error() {
    let reg = FakeRegistry::start(Box::new(|_, _| Reply::Status(418, vec![])));
    let (run, image) = check(&reg, &[]);
    assert_eq!(run.code, 3);
    assert_eq!(run.statuses()[&image], "registry-error");
}

#[test]
fn a_200_without_digest_still_proves_existence() {
    let reg = FakeRegistry::start(Box::new(|_, _| Reply::Status(200, vec![])));
    let (run, image) = check(&reg, &[]);
    assert_eq!(run.code, 0);
    assert_eq!(run.statuses()[&image], "ok");
    assert!(run.json()["references"][0]["digest"].is_null());
}

#[test]
fn a_refused_connection_is_unreachable() {
    let port = free_port();
    let w = Workdir::new();
    let image = format!("127.0.0.1:{port}/gone/app:1");
    w.write("a.yaml", &deployment("a", &[&image]));
    let run = w.run(&["check", "--all", "--format", "json", "--deadline", "10"]);
    assert_eq!(run.code, 3);
    assert_eq!(run.statuses()[&image], "unreachable");
}

#[test]
fn a_refused_tag_list_just_means_no_suggestion() {
    // Issue 8: a registry that refuses the tag list gets no suggestion, never an error.
    let reg = FakeRegistry::start(Box::new(|_, line| {
        let code = if line.contains("/tags/list") {
            403
        } else {
            404
        };
        Reply::Status(code, vec![])
    }));
    let (run, image) = check(&reg, &[]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!(run.statuses()[&image], "not-found");
    let r = &run.json()["references"][0];
    assert!(r["suggestions"].is_null(), "{r}");
    assert_eq!(
        run.json()["summary"]["requests"]["tag_lists"].as_u64(),
        Some(1)
    );
}

#[test]
fn tag_lists_follow_link_pagination() {
    // Issue 8. Debian's distribution 2.8 ignores `n` and returns every tag in one page, so
    // the Link pagination of newer registries (distribution 3, GHCR, Harbor) is scripted.
    let reg = FakeRegistry::start(Box::new(|_, line| {
        if !line.contains("/tags/list") {
            Reply::Status(404, vec![])
        } else if line.contains("last=") {
            Reply::Body(
                200,
                vec![],
                r#"{"name":"fault/app","tags":["2.0.0","2.0.1"]}"#.into(),
            )
        } else {
            Reply::Body(
                200,
                vec![(
                    "Link",
                    "</v2/fault/app/tags/list?n=200&last=1.9.9>; rel=\"next\"".into(),
                )],
                r#"{"name":"fault/app","tags":["0.1","1.9.9"]}"#.into(),
            )
        }
    }));
    let w = Workdir::new();
    let image = format!("{}/fault/app:2.0.2", reg.host);
    w.write("a.yaml", &deployment("a", &[&image]));
    let run = w.run(&["check", "--all", "--format", "json"]);
    assert_eq!(run.code, 1);
    let json = run.json();
    assert_eq!(
        json["references"][0]["suggestions"][0], "2.0.1",
        "from page 2: {json}"
    );
    assert_eq!(json["summary"]["requests"]["tag_lists"].as_u64(), Some(2));
}

/// `count` images in one file, checked one request at a time.
fn check_many(reg: &FakeRegistry, count: usize, extra: &[&str]) -> (Run, Vec<String>) {
    let w = Workdir::new();
    let images: Vec<String> = (0..count)
        .map(|i| format!("{}/fault/app{i}:1", reg.host))
        .collect();
    let refs: Vec<&str> = images.iter().map(String::as_str).collect();
    w.write("a.yaml", &deployment("a", &refs));
    let mut args = vec![
        "check",
        "--all",
        "--format",
        "json",
        "--no-cache",
        "--concurrency",
        "1",
    ];
    args.extend_from_slice(extra);
    (w.run(&args), images)
}

/// Issue 7: pacing. No requests left, and the budget resets in 1 s: the host pauses.
#[test]
fn an_exhausted_ratelimit_remaining_pauses_the_host_until_reset() {
    let reg = FakeRegistry::start(Box::new(|n, _| {
        let mut reply = found();
        if n == 0
            && let Reply::Status(_, headers) = &mut reply
        {
            headers.push(("RateLimit-Remaining", "0;w=1".into()));
            headers.push(("RateLimit-Reset", "1".into()));
        }
        reply
    }));
    let (run, images) = check_many(&reg, 3, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    for image in &images {
        assert_eq!(run.statuses()[image], "ok");
    }
    let times = reg.times.lock().unwrap();
    assert_eq!(times.len(), 3);
    assert!(
        times[1] - times[0] >= Duration::from_millis(900),
        "the second request came {:?} after the first; the budget reset in 1 s",
        times[1] - times[0]
    );
}

/// Issue 7: a budget that resets only after the deadline ends rate-limited at once, not
/// unreachable at the deadline, and never ok.
#[test]
fn an_exhausted_budget_past_the_deadline_is_rate_limited_at_once() {
    let reg = FakeRegistry::start(Box::new(|n, _| {
        let mut reply = found();
        if n == 0
            && let Reply::Status(_, headers) = &mut reply
        {
            headers.push(("RateLimit-Remaining", "0".into()));
            headers.push(("RateLimit-Reset", "3600".into()));
        }
        reply
    }));
    let (run, images) = check_many(&reg, 3, &["--deadline", "30"]);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    let s = run.statuses();
    assert_eq!(s[&images[0]], "ok");
    assert_eq!(s[&images[1]], "rate-limited");
    assert_eq!(s[&images[2]], "rate-limited");
    assert!(
        run.stdout.contains("past the overall deadline"),
        "{}",
        run.stdout
    );
    assert_eq!(
        reg.manifest_requests.load(Ordering::SeqCst),
        1,
        "nothing more is sent to a host with no budget left"
    );
}
