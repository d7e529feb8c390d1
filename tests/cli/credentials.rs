//! Credentials found the way docker and podman find them, against the real registry:
//! a real credential helper on PATH, podman auth files with namespace keys,
//! `DOCKER_AUTH_CONFIG`, `IMAGEGATE_AUTH_<HOST>`, GitLab's CI variables, identity tokens,
//! `imagegate auth`, and a sentinel secret that must never appear in any output. Issue 6.

use base64::Engine;

use crate::harness::*;

const USER: &str = "robot";
const PASSWORD: &str = "pa55-for-robot";

/// An htpasswd registry with one image, and a workdir that references it and a missing tag.
fn setup() -> (Registry, Workdir, [String; 2]) {
    let reg = Registry::htpasswd(USER, PASSWORD);
    reg.push_image("team/app", "1.0", OCI_MANIFEST);
    reg.push_image("other/app", "1.0", OCI_MANIFEST);
    let (w, images) = app_workdir(&reg.host, "team/app", ["1.0", "9.9"]);
    (reg, w, images)
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn check(w: &Workdir, env: &[(&str, &str)]) -> Run {
    w.run_env(&["check", "--all", "--format", "json", "--no-cache"], env)
}

/// The logged-in verdicts: the image is ok and the typo is not found (exit 1). Anonymous
/// or rejected credentials would give not-found-or-denied (exit 3) instead.
fn assert_logged_in(run: &Run, images: &[String; 2]) {
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let s = run.statuses();
    assert_eq!(s[&images[0]], "ok");
    assert_eq!(s[&images[1]], "not-found");
}

/// Writes `docker-credential-test` into `dir`: the helper protocol (`get`, server URL on
/// stdin, JSON on stdout), answering for `host` only and "not found" for anything else.
fn write_helper(dir: &std::path::Path, host: &str, user: &str, secret: &str) {
    let script = format!(
        "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread -r server\nif [ \"$server\" = \"{host}\" ]; then\n  printf '{{\"ServerURL\":\"%s\",\"Username\":\"{user}\",\"Secret\":\"{secret}\"}}' \"$server\"\nelse\n  echo 'credentials not found in native keychain'\n  exit 1\nfi\n"
    );
    write_executable(&dir.join("docker-credential-test"), &script);
}

/// Writes an executable through a child process, so that no thread of this test binary
/// holds a writable descriptor to it when another forks (which makes exec fail with
/// "text file busy").
fn write_executable(path: &std::path::Path, text: &str) {
    let out = output_with_stdin(
        std::process::Command::new("sh")
            .arg("-c")
            .arg("cat > \"$1.tmp\" && chmod 755 \"$1.tmp\" && mv \"$1.tmp\" \"$1\"")
            .arg("sh")
            .arg(path),
        text,
    );
    assert!(out.status.success());
}

fn path_with(dir: &std::path::Path) -> String {
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn a_credential_helper_from_cred_helpers_is_run() {
    let (reg, w, images) = setup();
    let bin = w.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    write_helper(&bin, &reg.host, USER, PASSWORD);
    let config = serde_json::json!({ "credHelpers": { reg.host.clone(): "test" } });
    std::fs::write(w.docker_config.join("config.json"), config.to_string()).unwrap();
    let path = path_with(&bin);
    assert_logged_in(&check(&w, &[("PATH", &path)]), &images);

    // A credsStore that says "not found" for this host means anonymous, not an error.
    let config = serde_json::json!({ "credsStore": "test" });
    std::fs::write(w.docker_config.join("config.json"), config.to_string()).unwrap();
    write_helper(&bin, "some-other-host", USER, PASSWORD);
    let run = check(&w, &[("PATH", &path)]);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.statuses()[&images[0]], "not-found-or-denied");
    assert!(!run.stdout.contains("failed"), "{}", run.stdout);
}

#[test]
fn podman_auth_files_with_namespace_keys_pick_the_longest_match() {
    let (reg, w, images) = setup();
    // The host key is wrong; the namespace key for `team` is right. `team/*` resolves with
    // the namespace's credentials, `other/*` falls back to the host's and is refused.
    let auth = serde_json::json!({ "auths": {
        reg.host.clone(): { "auth": b64("robot:wrong") },
        format!("{}/team", reg.host): { "auth": b64(&format!("{USER}:{PASSWORD}")) },
    }});
    let file = w.write("podman/auth.json", &auth.to_string());
    let other = format!("{}/other/app:1.0", reg.host);
    w.write("other.yaml", &deployment("other", &[other.as_str()]));
    let run = check(&w, &[("REGISTRY_AUTH_FILE", file.to_str().unwrap())]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let s = run.statuses();
    assert_eq!(s[&images[0]], "ok");
    assert_eq!(s[&images[1]], "not-found");
    assert_eq!(s[&other], "not-found-or-denied");

    // The same file found at $XDG_RUNTIME_DIR/containers/auth.json, before the Docker config.
    std::fs::remove_file(w.path().join("other.yaml")).unwrap();
    let runtime = w.path().join("run");
    std::fs::create_dir_all(runtime.join("containers")).unwrap();
    std::fs::copy(&file, runtime.join("containers/auth.json")).unwrap();
    w.docker_login(&reg.host, USER, "also-wrong");
    assert_logged_in(
        &check(&w, &[("XDG_RUNTIME_DIR", runtime.to_str().unwrap())]),
        &images,
    );
}

#[test]
fn docker_auth_config_imagegate_auth_and_gitlab_variables() {
    let (reg, w, images) = setup();
    let doc = serde_json::json!({ "auths": { reg.host.clone(): {
        "auth": b64(&format!("{USER}:{PASSWORD}")) } } })
    .to_string();
    assert_logged_in(&check(&w, &[("DOCKER_AUTH_CONFIG", &doc)]), &images);

    let var = format!(
        "IMAGEGATE_AUTH_{}",
        reg.host
            .replace('.', "_")
            .replace(':', "___")
            .to_uppercase()
    );
    let pair = format!("{USER}:{PASSWORD}");
    assert_logged_in(&check(&w, &[(&var, &pair)]), &images);

    assert_logged_in(
        &check(
            &w,
            &[
                ("CI_REGISTRY", &reg.host),
                ("CI_REGISTRY_USER", USER),
                ("CI_REGISTRY_PASSWORD", PASSWORD),
            ],
        ),
        &images,
    );
    // The variables only serve $CI_REGISTRY.
    let run = check(
        &w,
        &[
            ("CI_REGISTRY", "registry.gitlab.example"),
            ("CI_REGISTRY_USER", USER),
            ("CI_REGISTRY_PASSWORD", PASSWORD),
        ],
    );
    assert_eq!(run.code, 3, "{}", run.stdout);

    // A DOCKER_AUTH_CONFIG that is not JSON says so, without its content.
    let run = check(&w, &[("DOCKER_AUTH_CONFIG", "{\"auths\": secret-garbage")]);
    assert_eq!(run.code, 3);
    assert!(run.stdout.contains("$DOCKER_AUTH_CONFIG is not valid JSON"));
    assert!(!run.stdout.contains("secret-garbage"));
}

#[test]
fn the_ci_job_token_logs_in_as_gitlab_ci_token() {
    let reg = Registry::htpasswd("gitlab-ci-token", "job-token-123");
    reg.push_image("group/app", "1", OCI_MANIFEST);
    let w = Workdir::new();
    let image = format!("{}/group/app:1", reg.host);
    w.write("d.yaml", &deployment("d", &[image.as_str()]));
    let run = check(
        &w,
        &[
            ("CI_REGISTRY", &reg.host),
            ("CI_JOB_TOKEN", "job-token-123"),
        ],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
}

#[test]
fn identity_tokens_are_exchanged_with_the_refresh_token_grant() {
    let issuer = TokenIssuer::start(&[], &[("azure-user", "unused")]);
    let reg = Registry::token(issuer.clone());
    reg.push_image("team/app", "1.0", OCI_MANIFEST);
    let (w, images) = app_workdir(&reg.host, "team/app", ["1.0", "9.9"]);
    let config = serde_json::json!({ "auths": { reg.host.clone(): {
        "identitytoken": TokenIssuer::refresh_token("azure-user") } } });
    std::fs::write(w.docker_config.join("config.json"), config.to_string()).unwrap();
    assert_logged_in(&check(&w, &[]), &images);

    let run = w.run(&["auth", &format!("{}/team/app", reg.host)]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("identity token"), "{}", run.stdout);
    assert!(run.stdout.contains("accepted"), "{}", run.stdout);
}

#[test]
fn auth_names_the_source_and_says_whether_it_works() {
    let (reg, w, _) = setup();
    w.docker_login(&reg.host, USER, PASSWORD);
    let run = w.run(&["auth", &reg.host]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("Docker config"), "{}", run.stdout);
    assert!(run.stdout.contains("accepted"), "{}", run.stdout);

    w.docker_login(&reg.host, USER, "wrong");
    let run = w.run(&["auth", &reg.host, "--format", "json"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json()["result"], "rejected");

    std::fs::remove_file(w.docker_config.join("config.json")).unwrap();
    let run = w.run(&["auth", &reg.host]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("anonymous"), "{}", run.stdout);
}

/// Every byte of every output, in every format and verbosity, with a rejected secret, a
/// failing helper and the reports written to files: the secret never appears.
#[test]
fn a_sentinel_secret_never_appears_in_any_output() {
    const SENTINEL: &str = "S3NTINEL-never-print-me";
    let (reg, w, _) = setup();
    w.docker_login(&reg.host, USER, SENTINEL);
    let encoded = b64(&format!("{USER}:{SENTINEL}"));
    let mut outputs = Vec::new();
    for format in [
        "human", "json", "github", "gitlab", "sarif", "junit", "markdown",
    ] {
        for verbosity in ["-q", "-v", "-vv"] {
            let report = w.path().join(format!("report-{format}{verbosity}"));
            let r = format!("{format}={}", report.display());
            let run = w.run(&[
                "check",
                "--all",
                "--no-cache",
                "--format",
                format,
                verbosity,
                "--report",
                &r,
            ]);
            assert_eq!(run.code, 3, "rejected credentials are undecided");
            outputs.push(run.stdout);
            outputs.push(run.stderr);
            outputs.push(std::fs::read_to_string(&report).unwrap());
        }
    }
    for args in [
        vec!["auth".to_string(), reg.host.clone()],
        vec![
            "auth".into(),
            reg.host.clone(),
            "--format".into(),
            "json".into(),
        ],
        vec!["inspect".into(), format!("{}/team/app:1.0", reg.host)],
        vec![
            "inspect".into(),
            "--format".into(),
            "json".into(),
            format!("{}/team/app:1.0", reg.host),
        ],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = w.run(&args);
        outputs.push(run.stdout);
        outputs.push(run.stderr);
    }
    // The same secret from the environment and a helper that fails loudly.
    let var = format!(
        "IMAGEGATE_AUTH_{}",
        reg.host
            .replace('.', "_")
            .replace(':', "___")
            .to_uppercase()
    );
    let pair = format!("{USER}:{SENTINEL}");
    let run = w.run_env(&["check", "--all", "-vv", "--no-cache"], &[(&var, &pair)]);
    outputs.push(run.stdout);
    outputs.push(run.stderr);
    let bin = w.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    write_executable(
        &bin.join("docker-credential-leaky"),
        &format!(
            "#!/bin/sh\nread -r server\necho 'fatal: {SENTINEL}' >&2\necho '{SENTINEL}'\nexit 1\n"
        ),
    );
    let config = serde_json::json!({ "credHelpers": { reg.host.clone(): "leaky" } });
    std::fs::write(w.docker_config.join("config.json"), config.to_string()).unwrap();
    let path = path_with(&bin);
    let run = w.run_env(
        &["check", "--all", "-vv", "--no-cache", "--format", "json"],
        &[("PATH", &path)],
    );
    assert_eq!(run.code, 3);
    assert!(
        run.stdout
            .contains("credential helper `docker-credential-leaky` failed"),
        "{}",
        run.stdout
    );
    outputs.push(run.stdout);
    outputs.push(run.stderr);

    assert!(outputs.len() > 60);
    for out in &outputs {
        assert!(!out.contains(SENTINEL), "the secret leaked:\n{out}");
        assert!(!out.contains(&encoded), "the encoded secret leaked:\n{out}");
    }
}
