//! The trust boundary (issue 13): the repository under check, its manifests and its
//! `.imagegate.yaml`, is written by the person being checked. Each test reproduces one row
//! of the issue's attack table against the real registry or a scripted loopback server, and
//! fails on the code before the trust model.

use std::path::Path;

use base64::Engine;

use crate::harness::*;

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A file outside any repository the test builds (kept while the directory lives).
fn outside_file(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

/// An executable shell script that touches `marker` when it runs.
#[cfg(unix)]
fn tripwire(path: &Path, marker: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        path,
        format!("#!/bin/sh\ntouch '{}'\necho '{{}}'\n", marker.display()),
    )
    .unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[cfg(unix)]
#[test]
fn row01_a_repository_helper_is_a_bare_name_never_a_committed_file() {
    let reg = Registry::anonymous();
    reg.push_image("app", "1", DOCKER_MANIFEST);
    let w = Workdir::new();
    let outside = tempfile::tempdir().unwrap();
    let marker = outside.path().join("pwned");
    // The change commits a helper and names it by a path.
    tripwire(&w.path().join("docker-credential-x/pwn"), &marker);
    w.write(
        ".imagegate.yaml",
        &format!(
            "registries:\n  {}:\n    credentials:\n      helper: x/pwn\n",
            reg.host
        ),
    );
    w.write(
        "a.yaml",
        &deployment("a", &[&format!("{}/app:1", reg.host)]),
    );
    let run = w.run(&["check", "--all", "--no-cache"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("not a bare helper name"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(".imagegate.yaml:4:15"),
        "{}",
        run.stderr
    );
    assert!(!marker.exists(), "the committed helper ran");

    // A bare name is looked up on PATH, never through a relative entry into the repository.
    tripwire(&w.path().join("docker-credential-evil"), &marker);
    w.write(
        ".imagegate.yaml",
        &format!(
            "registries:\n  {}:\n    credentials:\n      helper: evil\n",
            reg.host
        ),
    );
    let path = format!(".:{}", std::env::var("PATH").unwrap());
    let run = w.run_env(&["check", "--all", "--no-cache"], &[("PATH", &path)]);
    assert!(
        !marker.exists(),
        "a relative PATH entry ran the repository's file"
    );
    assert_eq!(run.code, 0, "anonymous access still works: {}", run.stderr);
}

#[test]
fn row02_a_repository_config_cannot_send_an_environment_secret_to_its_host() {
    const SECRET: &str = "row2-s3cret-token";
    let reg = Registry::htpasswd("ci", SECRET);
    reg.push_image("app", "1", DOCKER_MANIFEST);
    let (w, images) = app_workdir(&reg.host, "app", ["1", "1"]);
    // The attacker's host stands here as a real registry that logs every request.
    w.write(
        ".imagegate.yaml",
        &format!(
            "registries:\n  {}:\n    credentials:\n      env: GITHUB_TOKEN\n",
            reg.host
        ),
    );
    reg.reset_log();
    let token = format!("ci:{SECRET}");
    let run = w.run_env(
        &["check", "--all", "--no-cache"],
        &[("GITHUB_TOKEN", &token)],
    );
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("credentials.env"), "{}", run.stderr);
    assert!(run.stderr.contains("trusted config"), "{}", run.stderr);
    assert!(!run.stderr.contains(SECRET) && !run.stdout.contains(SECRET));
    assert!(
        reg.requests().is_empty(),
        "nothing was sent: {:?}",
        reg.requests()
    );

    // The same binding from a trusted config is honoured.
    let trusted = tempfile::tempdir().unwrap();
    let path = trusted.path().join("trusted.yaml");
    std::fs::write(
        &path,
        format!(
            "registries:\n  {}:\n    credentials:\n      env: GITHUB_TOKEN\n",
            reg.host
        ),
    )
    .unwrap();
    std::fs::remove_file(w.path().join(".imagegate.yaml")).unwrap();
    let run = w.run_env(
        &[
            "check",
            "--all",
            "--no-cache",
            "--format",
            "json",
            "--config",
            path.to_str().unwrap(),
        ],
        &[("GITHUB_TOKEN", &token)],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.statuses()[&images[0]], "ok");
}

#[test]
fn row03_look_alike_hosts_never_share_an_environment_secret() {
    // Why fake: the look-alike host must be a public name, and only a loopback proxy can
    // answer for one here; it plays the attacker's registry and records what it is sent.
    const SECRET: &str = "row3-s3cret";
    let proxy = Scripted::start(|path, _| {
        if path.ends_with("/v2/") {
            basic_challenge()
        } else if path.contains("/manifests/") {
            http("404 Not Found", &[], b"")
        } else {
            http("403 Forbidden", &[], b"")
        }
    });
    let w = Workdir::new();
    w.write("a.yaml", &deployment("a", &["registry-corp.example/app:1"]));
    let proxy_url = format!("http://{}", proxy.host);
    let run_with = |var: &str| {
        proxy.seen.lock().unwrap().clear();
        let pair = format!("ci:{SECRET}");
        let run = w.run_env(
            &[
                "check",
                "--all",
                "--no-cache",
                "--no-suggest",
                "--insecure-registry",
                "registry-corp.example",
                "--deadline",
                "30",
            ],
            &[
                (var, pair.as_str()),
                ("HTTP_PROXY", &proxy_url),
                ("http_proxy", &proxy_url),
                ("HTTPS_PROXY", &proxy_url),
                ("https_proxy", &proxy_url),
                ("NO_PROXY", ""),
                ("no_proxy", ""),
            ],
        );
        assert!(!run.stdout.contains(SECRET) && !run.stderr.contains(SECRET));
        let sent = proxy
            .seen
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.contains(&b64(&format!("ci:{SECRET}"))));
        let asked = !proxy.seen.lock().unwrap().is_empty();
        (sent, asked)
    };
    // The secret is meant for registry.corp.example; the manifest names registry-corp.example.
    let (sent, asked) = run_with("IMAGEGATE_AUTH_REGISTRY_CORP_EXAMPLE");
    assert!(asked, "the look-alike host was asked (through the proxy)");
    assert!(
        !sent,
        "the secret of registry.corp.example went to registry-corp.example"
    );
    // Control: the look-alike's own variable does reach it, so the test can see a leak.
    let (sent, _) = run_with("IMAGEGATE_AUTH_REGISTRY__CORP_EXAMPLE");
    assert!(sent, "the host's own variable is sent");
}

#[test]
fn row04_variables_files_outside_the_repository_are_never_read() {
    const SECRET: &str = "row4-s3cret-value";
    let (_outside, secret_file) = outside_file(
        "secret.yaml",
        &format!("apiVersion: v1\nkind: Secret\nstringData:\n  TAG: {SECRET}\n"),
    );
    let w = Workdir::new();
    git(w.path(), &["init", "-q", "-b", "main"]);
    w.write("a.yaml", &deployment("a", &["ghcr.io/acme/web:${TAG}"]));
    #[cfg(unix)]
    std::os::unix::fs::symlink(&secret_file, w.path().join("linked.yaml")).unwrap();
    w.write(
        ".imagegate.yaml",
        &format!(
            "variables:\n  - {}\n  - ../../{}\n  - linked.yaml\n",
            secret_file.display(),
            secret_file.display()
        ),
    );
    let run = w.run(&OFFLINE_JSON);
    assert!(!run.stdout.contains(SECRET), "{}", run.stdout);
    assert!(!run.stderr.contains(SECRET), "{}", run.stderr);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let files = run.json()["files"].clone();
    let escapes: Vec<_> = files
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "path-escape")
        .collect();
    let expected = if cfg!(unix) { 3 } else { 2 };
    assert_eq!(escapes.len(), expected, "{files}");
    assert_eq!(escapes[0]["file"], ".imagegate.yaml", "{files}");
    assert_eq!(escapes[0]["line"], 2, "{files}");
}

/// A repository on `main` with a config, and a branch that changes an image and the config.
fn branch_with_config(
    base_config: &str,
    image: &str,
    head_config: &str,
    new_image: &str,
) -> Workdir {
    let w = Workdir::new();
    git(w.path(), &["init", "-q", "-b", "main"]);
    w.write(".imagegate.yaml", base_config);
    w.write("a.yaml", &deployment("a", &[image]));
    git(w.path(), &["add", "-A"]);
    git(w.path(), &["commit", "-q", "-m", "base"]);
    git(w.path(), &["checkout", "-q", "-b", "feature"]);
    w.write(".imagegate.yaml", head_config);
    w.write("a.yaml", &deployment("a", &[new_image]));
    git(w.path(), &["add", "-A"]);
    git(w.path(), &["commit", "-q", "-m", "change"]);
    w
}

#[test]
fn row05_a_change_cannot_loosen_the_config_that_judges_it() {
    let reg = Registry::anonymous();
    reg.push_image("app", "1", DOCKER_MANIFEST);
    // A mirror that answers 200 to everything.
    let liar = Scripted::yes_to_everything();
    let good = format!("{}/app:1", reg.host);
    let typo = format!("{}/app:1-typo", reg.host);
    let head_config = format!(
        "skip: ['**']\nexclude: ['**']\npolicy:\n  allowed-registries: ['**']\nregistries:\n  {}:\n    mirrors: [{}]\n",
        reg.host, liar.host
    );
    let w = branch_with_config(
        "policy:\n  allowed-registries: ['127.0.0.1:*']\n",
        &good,
        &head_config,
        &typo,
    );
    let run = w.run(&["check", "--base", "main", "--format", "json", "--no-cache"]);
    assert_eq!(
        run.code, 1,
        "the typo still fails:\n{}\n{}",
        run.stdout, run.stderr
    );
    assert_eq!(run.statuses()[&typo], "not-found");
    assert!(
        liar.seen.lock().unwrap().is_empty(),
        "the PR's mirror was asked"
    );
    let note = run
        .file_findings("config-changed")
        .pop()
        .unwrap_or_else(|| panic!("no config-changed note: {}", run.stdout));
    let message = note["message"].as_str().unwrap();
    for key in [
        "skip",
        "exclude",
        "policy.allowed-registries",
        "registries.",
    ] {
        assert!(message.contains(key), "{message}");
    }
    assert_eq!(note["severity"], "note", "{note}");
    assert_eq!(note["line"], 1, "at the first changed key: {note}");

    // The pre-push hook reads the merge base's config too.
    let bare = tempfile::tempdir().unwrap();
    git(w.path(), &["checkout", "-q", "main"]);
    add_origin(&w, &bare.path().join("origin.git"));
    git(w.path(), &["checkout", "-q", "feature"]);
    let head = git(w.path(), &["rev-parse", "HEAD"]);
    let line = format!(
        "refs/heads/feature {} refs/heads/feature {}\n",
        head.trim(),
        "0".repeat(40)
    );
    let run = w.run_stdin(&["pre-push", "origin", "url", "--no-cache"], &line);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("1-typo"), "{}", run.stdout);
}

#[test]
fn row06_answers_from_a_mirror_are_never_reused_for_the_registry() {
    let reg = Registry::anonymous();
    reg.push_image("app", "1", DOCKER_MANIFEST);
    let liar = Scripted::yes_to_everything();
    let (w, images) = app_workdir(&reg.host, "app", ["1", "9-missing"]);
    let mirror = format!("{}={}", reg.host, liar.host);
    // A run with a hostile mirror fills the cache (outside CI the cache is on).
    let run = w.run(&["check", "--all", "--format", "json", "--mirror", &mirror]);
    assert_eq!(run.code, 0, "the mirror says yes: {}", run.stdout);
    // A later run that asks the registry itself must not trust those answers.
    reg.reset_log();
    let run = w.run(&["check", "--all", "--format", "json", "--no-suggest"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.statuses()[&images[1]], "not-found");
    assert!(
        reg.requests()
            .iter()
            .any(|(_, uri)| uri.contains("/manifests/9-missing")),
        "the registry itself was asked"
    );
}

#[test]
fn row07_a_repository_config_cannot_weaken_tls_for_a_host_with_credentials() {
    let reg = Registry::htpasswd("ci", "row7-pass");
    reg.push_image("app", "1", DOCKER_MANIFEST);
    let ca = tempfile::tempdir().unwrap();
    for config in [
        format!("insecure-registries: [{}]\n", reg.host),
        format!("registries:\n  {}:\n    insecure: true\n", reg.host),
        format!("registries:\n  {}:\n    ca-file: ca.pem\n", reg.host),
    ] {
        let (w, _) = app_workdir(&reg.host, "app", ["1", "1"]);
        w.write("ca.pem", "not checked before the rule\n");
        w.docker_login(&reg.host, "ci", "row7-pass");
        w.write(".imagegate.yaml", &config);
        reg.reset_log();
        let run = w.run(&["check", "--all", "--no-cache"]);
        assert_eq!(run.code, 2, "{config}: {}\n{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains("weakens the transport"),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains(".imagegate.yaml:"), "{}", run.stderr);
        assert!(reg.requests().is_empty(), "{config}: nothing is sent");
    }
    // A host with no credentials may be reached insecurely from the repository's config.
    let open = Registry::anonymous();
    open.push_image("app", "1", DOCKER_MANIFEST);
    let (w, _) = app_workdir(&open.host, "app", ["1", "1"]);
    w.write(
        ".imagegate.yaml",
        &format!("insecure-registries: [{}]\n", open.host),
    );
    let run = w.run(&["check", "--all", "--no-cache"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    drop(ca);
}

#[test]
fn row08_pagination_links_never_lead_credentials_to_another_host() {
    // Why fake: distribution's Link headers always point at itself.
    let other = Scripted::start(|_, _| http("200 OK", &[], br#"{"tags":["1-stolen"]}"#));
    let other_host = other.host.clone();
    let own: std::sync::Arc<std::sync::OnceLock<String>> = Default::default();
    let own_host = own.clone();
    let reg = Scripted::start(move |path, _| {
        if path == "/v2/" {
            basic_challenge()
        } else if path.contains("/tags/list") {
            // The userinfo trick: starts with the registry's own base URL.
            let me = own_host.get().cloned().unwrap_or_default();
            let link =
                format!("<http://{me}@{other_host}/v2/app/tags/list?n=200&last=1>; rel=\"next\"");
            http("200 OK", &[("Link", &link)], br#"{"tags":["1"]}"#)
        } else {
            http("404 Not Found", &[], b"")
        }
    });
    own.set(reg.host.clone()).unwrap();
    let w = Workdir::new();
    w.docker_login(&reg.host, "ci", "row8-pass");
    let image = format!("{}/app:2", reg.host);
    w.write("a.yaml", &deployment("a", &[&image]));
    let run = w.run(&CHECK_JSON);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        reg.seen
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.contains("/tags/list")),
        "the tag list was asked"
    );
    assert!(
        other.seen.lock().unwrap().is_empty(),
        "a pagination link led to another host: {:?}",
        other.seen.lock().unwrap()
    );
}

#[test]
fn row08_a_link_on_the_same_origin_is_followed() {
    // Why fake: distribution pages only past 100 tags; this keeps the control small.
    let reg = Scripted::start(move |path, _| {
        if path == "/v2/" {
            http("200 OK", &[], b"")
        } else if path.contains("/tags/list") && path.contains("last=") {
            http("200 OK", &[], br#"{"tags":["2.0.1"]}"#)
        } else if path.contains("/tags/list") {
            let link = "</v2/app/tags/list?n=200&last=1>; rel=\"next\"";
            http("200 OK", &[("Link", link)], br#"{"tags":["1"]}"#)
        } else {
            http("404 Not Found", &[], b"")
        }
    });
    let image = format!("{}/app:2.0.0", reg.host);
    let w = one_image(&image);
    let run = w.run(&CHECK_JSON);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout.contains("2.0.1"),
        "the second page's tag is suggested: {}",
        run.stdout
    );
}

#[test]
fn row09_destinations_are_decided_before_any_request() {
    let reg = Registry::anonymous();
    reg.push_image("app", "1", DOCKER_MANIFEST);
    let internal = format!("{}/app:1", reg.host);
    let w = Workdir::new();
    w.write(
        "a.yaml",
        &deployment(
            "a",
            &[
                &internal,
                "169.254.169.254/latest/meta-data:1",
                "metadata.google.internal/compute-metadata:v1",
            ],
        ),
    );
    // The repository's config tries to widen the trusted allowed list.
    w.write(
        ".imagegate.yaml",
        "policy:\n  allowed-registries: ['**', '127.0.0.1:*']\n",
    );
    reg.reset_log();
    let run = w.run(&[
        "check",
        "--all",
        "--no-cache",
        "--format",
        "json",
        "--allowed-registry",
        "ghcr.io",
    ]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let codes = run.by_image("code");
    assert_eq!(codes[&internal], "policy-registry", "{}", run.stdout);
    assert_eq!(
        codes["169.254.169.254/latest/meta-data:1"],
        "denied-destination"
    );
    assert_eq!(
        codes["metadata.google.internal/compute-metadata:v1"],
        "denied-destination"
    );
    assert!(
        reg.requests().is_empty(),
        "the registry was contacted: {:?}",
        reg.requests()
    );

    // A trusted deny list can rule out loopback too.
    let run = w.run(&[
        "check",
        "--all",
        "--no-cache",
        "--format",
        "json",
        "--deny-destination",
        "private",
    ]);
    assert_eq!(
        run.by_image("code")[&internal],
        "denied-destination",
        "{}",
        run.stdout
    );
    assert!(reg.requests().is_empty());

    // A mirror that leads to a metadata address is refused before the run.
    let run = w.run(&[
        "check",
        "--all",
        "--mirror",
        &format!("{}=169.254.169.254", reg.host),
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
}

#[test]
fn row09_token_realms_get_credentials_only_on_the_registry_site() {
    // Why fake: distribution's token realm is fixed by its config; the attacker's registry
    // names its own realm, here on another site (localhost, not 127.0.0.1) and then at a
    // metadata address.
    let token = Scripted::start(|_, _| http("200 OK", &[], br#"{"token":"t"}"#));
    let realm = format!(
        "Bearer realm=\"http://localhost:{}/token\",service=\"x\"",
        token.host.rsplit(':').next().unwrap()
    );
    let reg = Scripted::start(move |path, _| {
        if path == "/v2/" {
            http("401 Unauthorized", &[("WWW-Authenticate", &realm)], b"")
        } else {
            http("404 Not Found", &[], b"")
        }
    });
    let w = Workdir::new();
    w.docker_login(&reg.host, "ci", "row9-pass");
    w.write(
        "a.yaml",
        &deployment("a", &[&format!("{}/app:1", reg.host)]),
    );
    let run = w.run(&["check", "--all", "--no-cache", "--no-suggest"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let seen = token.seen.lock().unwrap().clone();
    assert!(!seen.is_empty(), "the token was asked for");
    for r in &seen {
        assert!(
            !r.to_ascii_lowercase().contains("authorization:"),
            "credentials went to another site's realm:\n{r}"
        );
    }

    let metadata = Scripted::start(|path, _| {
        if path == "/v2/" {
            http(
                "401 Unauthorized",
                &[(
                    "WWW-Authenticate",
                    "Bearer realm=\"http://169.254.169.254/latest/meta-data/iam\"",
                )],
                b"",
            )
        } else {
            http("401 Unauthorized", &[], b"")
        }
    });
    let image = format!("{}/app:1", metadata.host);
    let w = one_image(&image);
    let run = w.run(&CHECK_JSON);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        run.by_image("code")[&image],
        "denied-destination",
        "{}",
        run.stdout
    );
}

#[test]
fn row10_a_pinned_digest_must_be_the_digest_the_registry_answers() {
    // Why fake: distribution never answers a digest with another one.
    let asked = format!("sha256:{}", "a".repeat(64));
    let other = format!("sha256:{}", "b".repeat(64));
    for (answer, code, exit) in [
        (other.as_str(), "digest-mismatch", 1),
        ("garbage", "digest-mismatch", 1),
        (asked.as_str(), "", 0),
    ] {
        let reply = answer.to_string();
        let reg = Scripted::start(move |path, _| {
            if path == "/v2/" {
                http("200 OK", &[], b"")
            } else {
                http("200 OK", &[("Docker-Content-Digest", &reply)], b"")
            }
        });
        let image = format!("{}/app@{asked}", reg.host);
        let w = one_image(&image);
        let run = w.run(&CHECK_JSON);
        assert_eq!(run.code, exit, "answered {answer}: {}", run.stdout);
        assert_eq!(
            run.by_image("code")[&image],
            code,
            "answered {answer}: {}",
            run.stdout
        );
    }
}

#[cfg(unix)]
#[test]
fn row12_a_committed_link_in_resources_never_reads_outside() {
    const SECRET: &str = "row12-outside-image";
    let (_outside, target) = outside_file(
        "deploy.yaml",
        &deployment("x", &[&format!("ghcr.io/acme/{SECRET}:1")]),
    );
    let w = Workdir::new();
    git(w.path(), &["init", "-q", "-b", "main"]);
    std::fs::create_dir_all(w.path().join("app")).unwrap();
    std::os::unix::fs::symlink(&target, w.path().join("app/evil.yaml")).unwrap();
    w.write(
        "app/kustomization.yaml",
        "resources:\n  - evil.yaml\nimages:\n  - name: nginx\n    newTag: '1.27'\n",
    );
    let run = w.run(&OFFLINE_JSON);
    assert!(!run.stdout.contains(SECRET), "{}", run.stdout);
    let escape = run
        .file_findings("path-escape")
        .pop()
        .unwrap_or_else(|| panic!("no path-escape finding: {}", run.stdout));
    assert_eq!(escape["file"], "app/kustomization.yaml", "{escape}");
    assert_eq!(escape["line"], 2, "{escape}");
    assert_eq!(run.code, 1, "{}", run.stdout);
}
