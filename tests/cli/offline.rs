//! `check --all --offline`: the fast local lint, with no registry. Exercises file walking,
//! globs, .gitignore, the bundled fixtures and the exit codes (issue 2).

use std::path::{Path, PathBuf};

use crate::harness::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

#[test]
fn bundled_valid_fixtures_pass_offline_with_exact_positions() {
    let w = Workdir::new();
    let dir = fixtures().join("k8s");
    let run = w.run(&[
        "check",
        "--all",
        "--offline",
        "--format",
        "json",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let json = run.json();
    let mut got: Vec<String> = json["references"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let file = Path::new(r["file"].as_str().unwrap());
            format!(
                "{}:{}:{} {} {}",
                file.file_name().unwrap().to_str().unwrap(),
                r["line"],
                r["column"],
                r["status"].as_str().unwrap(),
                r["canonical"].as_str().unwrap()
            )
        })
        .collect();
    got.sort();
    let want = [
        "cronjob.yaml:14:22 skipped registry.k8s.io/busybox:1.36",
        "deployment.yaml:17:18 skipped ghcr.io/acme/web-migrate:v1.4.9",
        "deployment.yaml:20:18 skipped ghcr.io/acme/web:v1.4.9",
        "deployment.yaml:23:18 skipped docker.io/envoyproxy/envoy:v1.30.1",
        "deployment.yaml:27:24 skipped quay.io/acme/models:2024-06",
        "list-and-custom.yaml:10:44 skipped ghcr.io/acme/seed:1.0.0",
        "list-and-custom.yaml:21:16 skipped ghcr.io/acme/worker:0.9.1",
        "pod-crlf-bom.yaml:11:14 skipped docker.io/nicolaka/netshoot:v0.13",
        "pod-crlf-bom.yaml:8:14 skipped docker.io/library/alpine:3.20",
        "workloads.yaml:10:39 skipped docker.io/library/postgres:16.3",
        "workloads.yaml:10:39 skipped docker.io/library/postgres:16.3",
        "workloads.yaml:23:18 skipped gcr.io/acme-prod/node-agent@sha256:0d4a5b3c6f8e9a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293",
        "workloads.yaml:34:18 skipped ghcr.io/acme/checkout:2.3.0",
        "workloads.yaml:44:18 skipped ghcr.io/knative/helloworld-go:latest",
    ];
    assert_eq!(got, want);
}

#[test]
fn broken_fixtures_are_findings_with_positions_never_a_crash() {
    // Inside the checked repository: a chart's `Chart.yaml` is read through the repository
    // reader, which never reads outside the repository (issue 16's `{{` rule).
    let w = Workdir::new();
    for f in [
        "chart/Chart.yaml",
        "chart/templates/deployment.yaml",
        "invalid.yaml",
        "typos.yaml",
    ] {
        let text = std::fs::read_to_string(fixtures().join("broken").join(f)).unwrap();
        w.write(&format!("broken/{f}"), &text);
    }
    let run = w.run(&[
        "check",
        "--all",
        "--offline",
        "--format",
        "github",
        "broken",
    ]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    let has = |prefix: &str, code: &str| {
        lines
            .iter()
            .any(|l| l.starts_with(prefix) && l.contains(&format!("title=imagegate {code}::")))
    };
    assert!(has("::error", "invalid-reference"), "{}", run.stdout);
    assert!(has("::error", "non-string-image"));
    assert!(has("::error", "empty-image"));
    assert!(has("::warning", "unresolved-variable"));
    assert!(has("::error", "invalid-yaml"));
    assert!(has("::notice", "helm-template"));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("typos.yaml,line=12,col=18,endColumn=22,")),
        "the float image at its exact place: {}",
        run.stdout
    );
}

#[test]
fn globs_and_gitignore_pick_the_files() {
    let w = Workdir::new();
    let bad = deployment("x", &["Bad/Upper"]);
    w.write("apps/a.yaml", &bad);
    w.write("apps/b.yml", &bad);
    w.write("apps/c.json", &bad);
    w.write("vendor/d.yaml", &bad);
    w.write("ignored/e.yaml", &bad);
    w.write(".gitignore", "ignored/\n");
    let files = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["check", "--all", "--offline", "--format", "json"];
        all.extend_from_slice(args);
        let run = w.run(&all);
        let mut f: Vec<String> = run.json()["references"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["file"].as_str().unwrap().to_string())
            .collect();
        f.sort();
        f
    };
    assert_eq!(files(&[]), ["apps/a.yaml", "apps/b.yml", "vendor/d.yaml"]);
    assert_eq!(
        files(&["--exclude", "vendor/**"]),
        ["apps/a.yaml", "apps/b.yml"]
    );
    assert_eq!(files(&["--include", "*.json"]), ["apps/c.json"]);
    assert_eq!(
        files(&["apps/c.json"]),
        ["apps/c.json"],
        "a named file is always checked"
    );
}

#[test]
fn tool_failures_exit_2_with_a_clear_message() {
    let w = Workdir::new();
    let run = w.run(&["check", "--all", "no-such-dir"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("no-such-dir"), "{}", run.stderr);
    let run = w.run(&["check", "--all", "--include", "a[", "."]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("invalid glob"), "{}", run.stderr);
    let run = w.run(&["check", "--all", "--format", "nope"]);
    assert_eq!(run.code, 2);
    let run = w.run(&["check", "."]);
    assert_eq!(run.code, 2, "no diff mode yet, and no silent pass");
    assert!(run.stderr.contains("--all"), "{}", run.stderr);
}

#[test]
fn help_documents_the_exit_codes() {
    let w = Workdir::new();
    let run = w.run(&["check", "--help"]);
    assert_eq!(run.code, 0);
    for line in [
        "0  every reference resolves",
        "1  at least one error",
        "2  imagegate could not run",
        "3  at least one reference could not be decided",
    ] {
        assert!(run.stdout.contains(line), "{line}\n{}", run.stdout);
    }
}

#[test]
fn binary_and_non_utf8_files_are_reported_not_fatal() {
    let w = Workdir::new();
    std::fs::write(w.path().join("bin.yaml"), b"\x00\x01\x02binary").unwrap();
    std::fs::write(
        w.path().join("latin1.yaml"),
        b"apiVersion: v1\nkind: Pod\n# caf\xe9\n",
    )
    .unwrap();
    w.write("ok.yaml", &deployment("ok", &["nginx:1.27"]));
    let run = w.run(&OFFLINE_JSON);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let codes = run.file_codes();
    assert!(codes.contains(&"binary-file".to_string()), "{codes:?}");
    assert!(codes.contains(&"invalid-yaml".to_string()), "{codes:?}");
    assert_eq!(run.statuses()["nginx:1.27"], "skipped");
}

#[test]
fn output_to_a_closed_pipe_is_not_a_failure() {
    let w = Workdir::new();
    for i in 0..200 {
        w.write(&format!("f{i}.yaml"), &deployment("x", &["Bad/Upper"]));
    }
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} check --all --offline | head -c 10 >/dev/null; echo ${{PIPESTATUS:-}}",
            env!("CARGO_BIN_EXE_imagegate")
        ))
        .current_dir(w.path())
        .output()
        .unwrap();
    assert!(status.status.success());
    assert!(!String::from_utf8_lossy(&status.stderr).contains("panicked"));
}

#[test]
fn the_config_file_sets_rules_and_its_errors_point_into_it() {
    // Issue 5 (the action's `config` input) with the first keys of the config file (issue 6).
    let w = Workdir::new();
    git(w.path(), &["init", "-q"]);
    let bad = deployment("x", &["Bad/Upper"]);
    w.write("apps/a.yaml", &bad);
    w.write("vendor/b.yaml", &bad);
    w.write(".imagegate.yaml", "exclude: ['vendor/**']\n");
    let run = w.run(&OFFLINE_JSON);
    let files: Vec<String> = run.json()["references"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["file"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        files,
        ["apps/a.yaml"],
        "found at the repository root and applied"
    );
    w.write("other.yaml", "exlcude: ['apps/**']\n");
    let run = w.run(&["check", "--all", "--offline", "--config", "other.yaml"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("other.yaml:1:1: unknown key `exlcude`; did you mean `exclude`?"),
        "{}",
        run.stderr
    );
}
