//! Hostile input (issue 7): files and registries built to crash, hang or fool the checker.
//! None may panic, hang, or report ok.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::harness::*;

#[test]
fn a_file_larger_than_a_manifest_can_be_is_a_finding() {
    let w = Workdir::new();
    let f = std::fs::File::create(w.path().join("huge.yaml")).unwrap();
    f.set_len(100 << 20).unwrap(); // 100 MB, sparse
    let run = w.run(&OFFLINE_JSON);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let files = run.json()["files"].clone();
    assert_eq!(files[0]["code"], "unreadable-file", "{files}");
    assert!(
        files[0]["message"]
            .as_str()
            .unwrap()
            .contains("larger than")
    );
}

#[test]
fn deep_nesting_and_alias_bombs_end_quickly() {
    let w = Workdir::new();
    let deep = format!(
        "apiVersion: v1\nkind: Pod\nspec: {}{}\n",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    w.write("deep.yaml", &deep);
    let mut bomb = String::from(
        "apiVersion: example.com/v1\nkind: Bomb\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n",
    );
    for i in 1..12 {
        let p = i - 1;
        bomb.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    w.write("bomb.yaml", &bomb);
    let start = Instant::now();
    let run = w.run(&OFFLINE_JSON);
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    assert!(start.elapsed() < Duration::from_secs(30), "bounded time");
}

#[cfg(unix)]
#[test]
fn symlink_loops_and_non_utf8_paths() {
    use std::os::unix::ffi::OsStrExt;
    let w = Workdir::new();
    std::fs::create_dir_all(w.path().join("a")).unwrap();
    std::os::unix::fs::symlink("..", w.path().join("a/loop")).unwrap();
    std::os::unix::fs::symlink("missing.yaml", w.path().join("dangling.yaml")).unwrap();
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9.yaml");
    std::fs::write(w.path().join(name), deployment("x", &["Bad/Upper"])).unwrap();
    let run = w.run(&OFFLINE_JSON);
    assert_eq!(
        run.code, 1,
        "the invalid reference in the odd-named file: {}",
        run.stdout
    );
    let refs = run.json()["references"].clone();
    assert_eq!(refs.as_array().unwrap().len(), 1, "{refs}");
    assert!(refs[0]["file"].as_str().unwrap().starts_with("caf"));
}

fn check_one(host: &str, extra: &[&str]) -> (Run, String, Workdir) {
    let image = format!("{host}/hostile/app:1");
    let w = one_image(&image);
    let mut args = vec!["check", "--all", "--format", "json", "--no-suggest"];
    args.extend_from_slice(extra);
    let run = w.run(&args);
    (run, image, w)
}

#[test]
fn a_redirect_loop_is_undecided() {
    // Why fake: distribution never redirects a manifest HEAD to itself.
    let reg = Scripted::start(|path, _| {
        if path == "/v2/" {
            http("200 OK", &[], b"")
        } else {
            http("307 Temporary Redirect", &[("Location", path)], b"")
        }
    });
    let (run, image, _w) = check_one(&reg.host, &["--deadline", "20"]);
    assert_eq!(run.code, 3, "{}", run.stdout);
    assert_eq!(run.statuses()[&image], "unreachable");
}

#[test]
fn a_redirect_to_another_host_drops_the_credentials() {
    // Why fake: a real registry redirects blob downloads, not manifest HEADs, and never to a
    // host the test controls.
    let other = Scripted::yes_to_everything();
    let target = format!("http://{}/elsewhere", other.host);
    let reg = Scripted::start(move |path, _| {
        if path == "/v2/" {
            basic_challenge()
        } else {
            http("307 Temporary Redirect", &[("Location", &target)], b"")
        }
    });
    let w = Workdir::new();
    let secret = "redirect-s3cret";
    w.docker_login(&reg.host, "user", secret);
    let image = format!("{}/hostile/app:1", reg.host);
    w.write("a.yaml", &deployment("a", &[&image]));
    let run = w.run(&["check", "--all", "--format", "json"]);
    assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret));
    let seen = other.seen.lock().unwrap().clone();
    assert!(!seen.is_empty(), "the redirect was followed");
    for req in &seen {
        assert!(
            !req.to_ascii_lowercase().contains("authorization:"),
            "credentials leaked to another host:\n{req}"
        );
    }
    // The registry itself did get them.
    assert!(
        reg.seen
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.to_ascii_lowercase().contains("authorization: basic"))
    );
}

#[test]
fn a_failing_token_endpoint_is_undecided() {
    // Why fake: distribution's token issuer is external; a failing one must be scripted.
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let token = Scripted::start(move |_, _| {
        counted.fetch_add(1, Ordering::SeqCst);
        http("500 Internal Server Error", &[], b"boom")
    });
    let realm = format!("Bearer realm=\"http://{}/token\",service=\"x\"", token.host);
    let reg = Scripted::start(move |path, _| {
        if path == "/v2/" {
            http("401 Unauthorized", &[("WWW-Authenticate", &realm)], b"")
        } else {
            http("401 Unauthorized", &[], b"")
        }
    });
    let (run, image, _w) = check_one(&reg.host, &[]);
    assert_eq!(run.code, 3, "{}", run.stdout);
    assert_eq!(run.statuses()[&image], "registry-error");
    assert_eq!(calls.load(Ordering::SeqCst), 4, "retried, then given up");
}

#[test]
fn a_ten_megabyte_token_answer_is_refused_not_read() {
    // Why fake: no real token service answers 10 MB.
    let big = vec![b'x'; 10 << 20];
    let token =
        Scripted::start(move |_, _| http("200 OK", &[("Content-Type", "application/json")], &big));
    let realm = format!("Bearer realm=\"http://{}/token\"", token.host);
    let reg = Scripted::start(move |path, _| {
        if path == "/v2/" {
            http("401 Unauthorized", &[("WWW-Authenticate", &realm)], b"")
        } else {
            http("404 Not Found", &[], b"")
        }
    });
    let (run, image, _w) = check_one(&reg.host, &[]);
    assert_eq!(run.code, 3, "{}", run.stdout);
    assert_eq!(run.statuses()[&image], "registry-error");
    let msg = run.json()["references"][0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("unreadable") || msg.contains("larger"),
        "{msg}"
    );
}
