//! The CI integrations (issue 5): action.yml and the GitLab template validate against their
//! published schemas, their shell passes shellcheck, and their script steps run here under
//! bash, with the environment GitHub's pull_request event and GitLab's merge request
//! pipelines set, against a fixture repository and the real registry.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use imagegate::manifest::yaml;
use imagegate::source::SourceFile;

use crate::harness::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tool(name: &str, install: &str) -> PathBuf {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "`{name}` is needed for this test and is not installed: {install} (scripts/test does this)"
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

#[test]
fn action_template_and_workflows_validate_against_their_schemas() {
    let cj = tool("check-jsonschema", "pip install check-jsonschema");
    for (schema, file) in [
        ("vendor.github-actions", "action.yml"),
        ("vendor.gitlab-ci", ".gitlab-ci-template.yml"),
        ("vendor.github-workflows", ".github/workflows/ci.yml"),
        ("vendor.github-workflows", ".github/workflows/release.yml"),
    ] {
        let out = Command::new(&cj)
            .args(["--builtin-schema", schema, file])
            .current_dir(root())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{file} against {schema}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The `before_script` and `script` blocks of the template's hidden job, as one script.
fn gitlab_blocks(keys: &[&str]) -> String {
    let text = std::fs::read_to_string(root().join(".gitlab-ci-template.yml")).unwrap();
    let source = SourceFile::new("t.yml".into(), text.as_str());
    let parsed = yaml::parse(&source);
    assert!(parsed.error.is_none());
    let doc = &parsed.documents[0];
    let job = doc.get(doc.root.unwrap(), ".imagegate").unwrap();
    let mut script = String::from("#!/usr/bin/env bash\nset -eo pipefail\n");
    for key in keys {
        let list = doc.get(job, key).unwrap();
        for &item in doc.items(list) {
            script.push_str(doc.scalar(item).unwrap());
            script.push('\n');
        }
    }
    script
}

#[test]
fn shell_passes_shellcheck() {
    let sc = tool("shellcheck", "apt-get install -y shellcheck");
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("gitlab-template.sh");
    std::fs::write(&template, gitlab_blocks(&["before_script", "script"])).unwrap();
    let mut files: Vec<PathBuf> = [
        "scripts/action-install.sh",
        "scripts/action-check.sh",
        "scripts/test",
        "scripts/demo",
        ".ci/run",
        "benches/diff-scale.sh",
    ]
    .iter()
    .map(|f| root().join(f))
    .collect();
    files.push(template);
    let out = Command::new(sc).args(&files).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Every run step of the action only calls a script: no input is pasted into shell.
    let action = std::fs::read_to_string(root().join("action.yml")).unwrap();
    for line in action
        .lines()
        .filter(|l| l.trim_start().starts_with("run:"))
    {
        assert!(!line.contains("${{"), "an expression inside run: {line}");
    }
}

/// A repository whose `feature` branch bumps a tag to one that does not exist, with an
/// `origin` holding `main`, as actions/checkout leaves it.
fn pr_repository(image_ok: &str, image_bad: &str) -> Workdir {
    let w = Workdir::new();
    git(w.path(), &["init", "-q", "-b", "main"]);
    w.write("deploy/web.yaml", &deployment("web", &[image_ok]));
    git(w.path(), &["add", "-A"]);
    git(w.path(), &["commit", "-q", "-m", "base"]);
    add_origin(&w, &w.path().join(".origin.git"));
    git(w.path(), &["checkout", "-q", "-b", "feature"]);
    w.write("deploy/web.yaml", &deployment("web", &[image_bad]));
    git(w.path(), &["commit", "-q", "-am", "bump"]);
    git(w.path(), &["checkout", "-q", "--detach"]);
    w
}

fn bash(script: &Path, w: &Workdir, env: &[(&str, String)]) -> Run {
    let mut cmd = Command::new("bash");
    cmd.arg(script)
        .current_dir(w.path())
        .env("DOCKER_CONFIG", &w.docker_config)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    for var in CI_VARIABLES {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn the_action_check_step_annotates_the_pull_request() {
    let reg = Registry::anonymous();
    reg.push_image("acme/web", "1.4.9", DOCKER_MANIFEST);
    reg.push_image("acme/web", "1.5.0", DOCKER_MANIFEST);
    let h = &reg.host;
    let w = pr_repository(
        &format!("{h}/acme/web:1.4.9"),
        &format!("{h}/acme/web:1.5.0-typo"),
    );
    let out = w.path().join(".gh");
    std::fs::create_dir_all(&out).unwrap();
    let summary = out.join("summary.md");
    let outputs = out.join("outputs");
    let pwned = out.join("pwned");
    let env = |extra: &[(&'static str, String)]| -> Vec<(&'static str, String)> {
        let mut v: Vec<(&'static str, String)> = vec![
            ("GITHUB_ACTIONS", "true".to_string()),
            ("CI", "true".into()),
            ("GITHUB_EVENT_NAME", "pull_request".into()),
            ("GITHUB_BASE_REF", "main".into()),
            ("GITHUB_HEAD_REF", "feature".into()),
            ("GITHUB_STEP_SUMMARY", summary.display().to_string()),
            ("GITHUB_OUTPUT", outputs.display().to_string()),
            ("RUNNER_TEMP", out.display().to_string()),
            ("IMAGEGATE_BIN", env!("CARGO_BIN_EXE_imagegate").into()),
            // An input that would run a command if it were pasted into the script.
            (
                "INPUT_PATHS",
                format!("deploy/*.yaml $(touch {})", pwned.display()),
            ),
            ("INPUT_FAIL_ON_UNDECIDED", "true".into()),
        ];
        v.extend_from_slice(extra);
        v
    };
    let script = root().join("scripts/action-check.sh");
    let run = bash(&script, &w, &env(&[]));
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let annotation = run
        .stdout
        .lines()
        .find(|l| l.starts_with("::error "))
        .unwrap_or_default();
    assert!(
        annotation.starts_with("::error file=deploy/web.yaml,line=10,col=16,"),
        "{}",
        run.stdout
    );
    assert!(
        annotation.contains("existing tags nearby: `1.5.0`"),
        "{annotation}"
    );
    assert!(!pwned.exists(), "an input was executed");
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.starts_with("### imagegate: ❌"), "{md}");
    assert!(md.contains("`deploy/web.yaml:10`"), "{md}");
    let outs = std::fs::read_to_string(&outputs).unwrap();
    for want in ["exit-code=1", "references=1", "errors=1", "undecided=0"] {
        assert!(outs.contains(want), "{want} in {outs}");
    }

    // fail-on-undecided: false turns an undecided run (registry gone) into a warning.
    drop(reg);
    let run = bash(
        &script,
        &w,
        &env(&[
            ("INPUT_FAIL_ON_UNDECIDED", "false".into()),
            ("INPUT_ARGS", "--deadline 5 --no-suggest".into()),
        ]),
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("fail-on-undecided is false"),
        "{}",
        run.stdout
    );
    assert!(
        std::fs::read_to_string(&outputs)
            .unwrap()
            .contains("exit-code=3")
    );
}

#[test]
fn the_action_install_step_verifies_the_checksum() {
    let target = match std::env::consts::ARCH {
        "x86_64" => "x86_64-unknown-linux-musl",
        "aarch64" => "aarch64-unknown-linux-musl",
        other => panic!("no release target for {other}"),
    };
    let w = Workdir::new();
    let release = w.path().join("release");
    std::fs::create_dir_all(&release).unwrap();
    let staging = w.path().join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_imagegate"), staging.join("imagegate")).unwrap();
    let archive = format!("imagegate-{target}.tar.gz");
    let status = Command::new("tar")
        .args([
            "-czf",
            release.join(&archive).to_str().unwrap(),
            "-C",
            staging.to_str().unwrap(),
            "imagegate",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let sum = sha256(&std::fs::read(release.join(&archive)).unwrap());
    let sums = release.join("SHA256SUMS");
    std::fs::write(
        &sums,
        format!("{}  {archive}\n", sum.trim_start_matches("sha256:")),
    )
    .unwrap();
    let path_file = w.path().join("github_path");
    let env = |cache: &str| {
        vec![
            ("IMAGEGATE_VERSION", "v9.9.9".to_string()),
            (
                "IMAGEGATE_RELEASE_URL",
                format!("file://{}", release.display()),
            ),
            (
                "IMAGEGATE_TOOL_CACHE",
                w.path().join(cache).display().to_string(),
            ),
            ("GITHUB_PATH", path_file.display().to_string()),
        ]
    };
    let script = root().join("scripts/action-install.sh");
    let run = bash(&script, &w, &env("cache"));
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let installed = w.path().join("cache/imagegate/v9.9.9/imagegate");
    assert!(installed.exists());
    assert!(
        std::fs::read_to_string(&path_file)
            .unwrap()
            .contains("cache/imagegate/v9.9.9")
    );

    std::fs::write(&sums, format!("{}  {archive}\n", "0".repeat(64))).unwrap();
    let run = bash(&script, &w, &env("cache2"));
    assert_eq!(
        run.code, 1,
        "a wrong checksum must not install: {}",
        run.stdout
    );
    assert!(run.stderr.contains("checksum mismatch"), "{}", run.stderr);
    assert!(!w.path().join("cache2/imagegate/v9.9.9/imagegate").exists());
}

#[test]
fn the_gitlab_job_writes_code_quality_and_junit_reports() {
    let secret = "gl-registry-s3cret";
    let reg = Registry::htpasswd("gitlab-ci-token", secret);
    reg.push_image("group/app", "2.0", DOCKER_MANIFEST);
    let h = &reg.host;
    let w = pr_repository(&format!("{h}/group/app:2.0"), &format!("{h}/group/app:2.1"));
    let base = git(w.path(), &["rev-parse", "main"]);
    let bin = w.path().join(".bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_imagegate"), bin.join("imagegate")).unwrap();
    let script = w.path().join(".gitlab-job.sh");
    std::fs::write(&script, gitlab_blocks(&["script"])).unwrap();
    let home = w.path().join(".home");
    let run = bash(
        &script,
        &w,
        &[
            (
                "PATH",
                format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
            ),
            ("HOME", home.display().to_string()),
            ("DOCKER_CONFIG", home.join(".docker").display().to_string()),
            ("GITLAB_CI", "true".into()),
            ("CI", "true".into()),
            ("CI_PIPELINE_SOURCE", "merge_request_event".into()),
            ("CI_MERGE_REQUEST_DIFF_BASE_SHA", base),
            ("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "main".into()),
            ("CI_REGISTRY", h.clone()),
            ("CI_REGISTRY_USER", "gitlab-ci-token".into()),
            ("CI_REGISTRY_PASSWORD", secret.into()),
            ("IMAGEGATE_ARGS", "--no-suggest".into()),
        ],
    );
    assert_eq!(
        run.code, 1,
        "the missing tag fails the job:\n{}\n{}",
        run.stdout, run.stderr
    );
    assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret));
    let quality: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(w.path().join("gl-code-quality-report.json")).unwrap(),
    )
    .unwrap();
    let issue = &quality[0];
    assert_eq!(issue["check_name"], "not-found", "{quality}");
    assert_eq!(issue["location"]["path"], "deploy/web.yaml");
    assert_eq!(issue["location"]["lines"]["begin"], 10);
    assert_eq!(issue["severity"], "critical");
    let junit = std::fs::read_to_string(w.path().join("imagegate-junit.xml")).unwrap();
    assert!(junit.contains("failures=\"1\""), "{junit}");
    assert!(junit.contains(&format!("{h}/group/app:2.1")), "{junit}");
}
