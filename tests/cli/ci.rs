//! The CI integrations (issues 5 and 18): action.yml, the workflows and the GitLab template
//! validate against their published schemas, no workflow names a retired runner, the shell
//! passes shellcheck, and the script steps run here with the environment GitHub's
//! pull_request event and GitLab's merge request, merged results and branch pipelines set,
//! against real git repositories (a shallow clone among them) and the real registry.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use imagegate::manifest::yaml;
use imagegate::source::SourceFile;

use crate::harness::*;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn tool(name: &str, install: &str) -> PathBuf {
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

fn workflows() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root().join(".github/workflows"))
        .unwrap()
        .map(|e| {
            format!(
                ".github/workflows/{}",
                e.unwrap().file_name().to_string_lossy()
            )
        })
        .collect();
    v.sort();
    assert!(v.len() >= 2, "{v:?}");
    v
}

#[test]
fn action_template_and_workflows_validate_against_their_schemas() {
    let cj = tool("check-jsonschema", "pip install check-jsonschema");
    let mut files = vec![
        ("vendor.github-actions", "action.yml".to_string()),
        ("vendor.gitlab-ci", ".gitlab-ci-template.yml".to_string()),
    ];
    files.extend(
        workflows()
            .into_iter()
            .map(|w| ("vendor.github-workflows", w)),
    );
    for (schema, file) in &files {
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

/// The blocks of the template's hidden job under `keys`, as one script.
fn gitlab_blocks(keys: &[&str]) -> String {
    let text = std::fs::read_to_string(root().join(".gitlab-ci-template.yml")).unwrap();
    let source = SourceFile::new("t.yml".into(), text.as_str());
    let parsed = yaml::parse(&source);
    assert!(parsed.error.is_none());
    let doc = &parsed.documents[0];
    let job = doc.get(doc.root.unwrap(), ".imagegate").unwrap();
    let mut script = String::new();
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
    std::fs::write(&template, gitlab_blocks(&["script"])).unwrap();
    let mut files: Vec<PathBuf> = [
        "scripts/action-install.sh",
        "scripts/action-check.sh",
        "scripts/test",
        "scripts/demo",
        "scripts/release-archive",
        "scripts/gitlab-check.sh",
        "scripts/pre-commit-hook",
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

/// Runner labels GitHub has retired; a job naming one waits for a runner that never comes.
const RETIRED_RUNNERS: [&str; 10] = [
    "macos-13",
    "macos-13-large",
    "macos-13-xlarge",
    "macos-12",
    "macos-11",
    "macos-10.15",
    "ubuntu-20.04",
    "ubuntu-18.04",
    "windows-2019",
    "windows-2016",
];

/// Hosted runner labels that exist (GitHub's runner images, December 2026).
const CURRENT_RUNNERS: [&str; 14] = [
    "ubuntu-latest",
    "ubuntu-24.04",
    "ubuntu-22.04",
    "ubuntu-24.04-arm",
    "ubuntu-22.04-arm",
    "macos-latest",
    "macos-14",
    "macos-15",
    "macos-15-intel",
    "macos-26",
    "windows-latest",
    "windows-2022",
    "windows-2025",
    "windows-11-arm",
];

/// Every word in `text` that looks like a hosted runner label.
fn runner_labels(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
        .filter(|w| {
            ["ubuntu-", "macos-", "windows-"]
                .iter()
                .any(|p| w.starts_with(p))
        })
        .map(|w| w.trim_end_matches('.').to_string())
        .collect()
}

/// Regression test for issue 18: the release workflow built on `macos-13`, a retired runner,
/// so its publish job never ran.
#[test]
fn no_workflow_names_a_retired_runner() {
    let mut seen = Vec::new();
    for file in workflows() {
        let text = std::fs::read_to_string(root().join(&file)).unwrap();
        for label in runner_labels(&text) {
            assert!(
                !RETIRED_RUNNERS.contains(&label.as_str()),
                "{file} names the retired runner {label}"
            );
            assert!(
                CURRENT_RUNNERS.contains(&label.as_str()),
                "{file} names {label}, which is not a known hosted runner"
            );
            seen.push(label);
        }
    }
    // The release builds Linux (x86-64, arm64), macOS (arm64, x86-64) and Windows.
    for wanted in [
        "ubuntu-24.04",
        "ubuntu-24.04-arm",
        "macos-15",
        "macos-15-intel",
        "windows-latest",
    ] {
        assert!(seen.iter().any(|l| l == wanted), "no job on {wanted}");
    }
    assert!(runner_labels("runs-on: macos-13\n").contains(&"macos-13".to_string()));
}

/// The template's job script is scripts/gitlab-check.sh verbatim (the test below runs the
/// file), and its image is the release's own, pinned.
#[test]
fn the_gitlab_template_runs_the_tested_script_in_the_pinned_image() {
    let script = std::fs::read_to_string(root().join("scripts/gitlab-check.sh")).unwrap();
    assert_eq!(gitlab_blocks(&["script"]).trim_end(), script.trim_end());
    let template = std::fs::read_to_string(root().join(".gitlab-ci-template.yml")).unwrap();
    let version = std::fs::read_to_string(root().join(".version")).unwrap();
    let version = version.trim();
    assert_eq!(version, format!("v{}", env!("CARGO_PKG_VERSION")));
    assert!(
        template.contains(&format!(
            "IMAGEGATE_IMAGE: ghcr.io/imagegate/imagegate:{}\n",
            version.trim_start_matches('v')
        )),
        "the template pins the image of release {version}"
    );
    assert!(template.contains(&format!(
        "imagegate/imagegate/{version}/.gitlab-ci-template.yml"
    )));
    // Nothing installed per job, no Docker config written over, no moving version.
    for gone in [
        "apt-get",
        "apk add",
        "mkdir",
        "\"auths\"",
        ">\"$HOME",
        "latest",
    ] {
        assert!(!template.contains(gone), "the template still has {gone}");
    }
}

/// Runs `program script` in `dir` with a clean CI environment plus `env`.
pub fn run_script(program: &str, script: &Path, dir: &Path, env: &[(&str, String)]) -> Run {
    let mut cmd = Command::new(program);
    cmd.arg(script)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    for var in CI_VARIABLES {
        cmd.env_remove(var);
    }
    for (var, _) in std::env::vars_os() {
        let var = var.to_string_lossy();
        if var.starts_with("IMAGEGATE_") || var.starts_with("INPUT_") || var.starts_with("CI_") {
            cmd.env_remove(&*var);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    run
}

/// A bare origin whose `main` holds `image_ok` and whose `feature` branch bumps it to
/// `image_bad` (deploy/web.yaml line 10), and the working repository that made them.
pub fn origin_with_feature(image_ok: &str, image_bad: &str) -> (Workdir, PathBuf) {
    let w = Workdir::new();
    git(w.path(), &["init", "-q", "-b", "main"]);
    // What the tests keep beside the repository stays out of it.
    w.write(
        ".git/info/exclude",
        ".origin.git\ncheckout\ngh\n.home\n.docker-config\n",
    );
    w.write("deploy/web.yaml", &deployment("web", &[image_ok]));
    git(w.path(), &["add", "-A"]);
    git(w.path(), &["commit", "-q", "-m", "base"]);
    let bare = w.path().join(".origin.git");
    add_origin(&w, &bare);
    git(w.path(), &["checkout", "-q", "-b", "feature"]);
    w.write("deploy/web.yaml", &deployment("web", &[image_bad]));
    git(w.path(), &["commit", "-q", "-am", "bump"]);
    git(w.path(), &["push", "-q", "origin", "feature"]);
    (w, bare)
}

/// A clone of `feature` one commit deep, detached, as actions/checkout leaves a pull request.
pub fn shallow_clone(w: &Workdir, bare: &Path) -> PathBuf {
    let clone = w.path().join("checkout");
    git(
        w.path(),
        &[
            "clone",
            "-q",
            "--depth",
            "1",
            "--branch",
            "feature",
            &format!("file://{}", bare.display()),
            clone.to_str().unwrap(),
        ],
    );
    git(&clone, &["checkout", "-q", "--detach"]);
    assert_eq!(
        git(&clone, &["rev-parse", "--is-shallow-repository"]),
        "true"
    );
    clone
}

/// The environment of a GitHub pull_request run of the action's check step.
pub fn github_env(dir: &Path, extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let mut v: Vec<(&'static str, String)> = vec![
        ("GITHUB_ACTIONS", "true".to_string()),
        ("CI", "true".into()),
        ("GITHUB_EVENT_NAME", "pull_request".into()),
        ("GITHUB_BASE_REF", "main".into()),
        ("GITHUB_HEAD_REF", "feature".into()),
        (
            "GITHUB_STEP_SUMMARY",
            dir.join("summary.md").display().to_string(),
        ),
        ("GITHUB_OUTPUT", dir.join("outputs").display().to_string()),
        ("RUNNER_TEMP", dir.display().to_string()),
        ("HOME", dir.display().to_string()),
        ("DOCKER_CONFIG", dir.join(".docker").display().to_string()),
        ("XDG_CACHE_HOME", dir.join(".cache").display().to_string()),
    ];
    v.extend_from_slice(extra);
    v
}

/// The last value of `key` in a $GITHUB_OUTPUT file.
pub fn output(file: &Path, key: &str) -> String {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or("")
        .to_string()
}

/// Issue 18: the action's check step end to end on a shallow pull request clone: error
/// annotations, outputs without python3, arguments one per line, a report directory per
/// run, `undecided: warn` drawn as warnings with exit 0, and exit 2 made visible.
#[test]
fn the_action_check_step_on_a_shallow_pull_request_clone() {
    let reg = Registry::anonymous();
    reg.push_image("acme/web", "1.4.9", DOCKER_MANIFEST);
    reg.push_image("acme/web", "1.5.0", DOCKER_MANIFEST);
    let h = &reg.host;
    let (w, bare) = origin_with_feature(
        &format!("{h}/acme/web:1.4.9"),
        &format!("{h}/acme/web:1.5.0-typo"),
    );
    let clone = shallow_clone(&w, &bare);
    let gh = w.path().join("gh");
    std::fs::create_dir_all(&gh).unwrap();
    let outputs = gh.join("outputs");
    let pwned = gh.join("pwned");
    let spaced = gh.join("my report.md");
    let script = root().join("scripts/action-check.sh");
    assert!(!std::fs::read_to_string(&script).unwrap().contains("python"));
    let env = |extra: &[(&'static str, String)]| {
        let mut v = github_env(
            &gh,
            &[
                ("IMAGEGATE_BIN", env!("CARGO_BIN_EXE_imagegate").into()),
                (
                    "INPUT_PATHS",
                    format!("deploy/*.yaml\n$(touch {})", pwned.display()),
                ),
                // One argument per line; the second holds a space and must stay whole.
                (
                    "INPUT_ARGS",
                    format!("--report\nmarkdown={}\n\n", spaced.display()),
                ),
            ],
        );
        v.extend_from_slice(extra);
        v
    };
    let run = run_script("bash", &script, &clone, &env(&[]));
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
    assert!(
        run.stdout.contains("the checkout is shallow"),
        "{}",
        run.stdout
    );
    assert!(!pwned.exists(), "an input was executed");
    assert!(spaced.exists(), "an argument with a space was split");
    let md = std::fs::read_to_string(gh.join("summary.md")).unwrap();
    assert!(md.starts_with("### imagegate: ❌"), "{md}");
    assert!(md.contains("`deploy/web.yaml:10`"), "{md}");
    for (key, want) in [
        ("exit-code", "1"),
        ("references", "1"),
        ("errors", "1"),
        ("undecided", "0"),
    ] {
        assert_eq!(output(&outputs, key), want, "{key}");
    }
    let first_report = output(&outputs, "report");
    assert!(Path::new(&first_report).exists(), "{first_report}");

    assert_eq!(output(&outputs, "sarif"), "", "no SARIF unless asked");

    // A second run in the same job writes its reports elsewhere; `sarif` adds SARIF for
    // code scanning.
    let run = run_script(
        "bash",
        &script,
        &clone,
        &env(&[("INPUT_SARIF", "true".to_string())]),
    );
    assert_eq!(run.code, 1);
    let sarif = std::fs::read_to_string(output(&outputs, "sarif")).unwrap();
    assert!(
        sarif.contains("\"version\": \"2.1.0\"") && sarif.contains("deploy/web.yaml"),
        "{sarif}"
    );
    let second_report = output(&outputs, "report");
    assert_ne!(first_report, second_report);
    assert!(Path::new(&first_report).exists() && Path::new(&second_report).exists());

    // The registry is gone: undecided. By default an error (exit 3)...
    drop(reg);
    let quick = ("INPUT_ARGS", "--deadline=5\n--no-suggest".to_string());
    let run = run_script("bash", &script, &clone, &env(std::slice::from_ref(&quick)));
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("::error file=deploy/web.yaml"),
        "{}",
        run.stdout
    );
    // ...with `undecided: warn` a pass, drawn as a warning and never as an error.
    for extra in [
        ("INPUT_UNDECIDED", "warn".to_string()),
        ("INPUT_FAIL_ON_UNDECIDED", "false".to_string()),
    ] {
        let run = run_script(
            "bash",
            &script,
            &clone,
            &env(&[quick.clone(), extra.clone()]),
        );
        assert_eq!(run.code, 0, "{extra:?}: {}\n{}", run.stdout, run.stderr);
        assert!(
            run.stdout
                .contains("::warning file=deploy/web.yaml,line=10"),
            "{}",
            run.stdout
        );
        assert!(!run.stdout.contains("::error"), "{}", run.stdout);
        assert_eq!(output(&outputs, "exit-code"), "0");
        assert_eq!(output(&outputs, "undecided"), "1");
    }

    // Exit 2 is visible: an error annotation, a step summary, outputs, a failed report.
    let run = run_script(
        "bash",
        &script,
        &clone,
        &env(&[("INPUT_CONFIG", "no-such-config.yaml".to_string())]),
    );
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("::error title=imagegate could not run::cannot read no-such-config.yaml"),
        "{}",
        run.stdout
    );
    let md = std::fs::read_to_string(gh.join("summary.md")).unwrap();
    assert!(
        md.contains("### imagegate: ❌ could not run (exit 2)"),
        "{md}"
    );
    assert_eq!(output(&outputs, "exit-code"), "2");
    let report = std::fs::read_to_string(output(&outputs, "report")).unwrap();
    assert!(
        report.contains("\"error\": \"cannot read no-such-config.yaml"),
        "{report}"
    );

    // `render` is true or false; anything else stops the step before imagegate runs.
    let run = run_script(
        "bash",
        &script,
        &clone,
        &env(&[("INPUT_RENDER", "yes".to_string())]),
    );
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("::error title=imagegate::input 'render' must be true or false"),
        "{}",
        run.stdout
    );
}

/// Issue 18: the GitLab job script end to end in merge request, merged results and branch
/// pipelines, with the variables GitLab sets, a real repository and the real registry behind
/// GitLab's CI_REGISTRY credentials; an existing Docker config is left as it was.
#[test]
fn the_gitlab_job_in_merge_request_merged_results_and_branch_pipelines() {
    let secret = "gl-registry-s3cret";
    let reg = Registry::htpasswd("gitlab-ci-token", secret);
    reg.push_image("group/app", "2.0", DOCKER_MANIFEST);
    let h = reg.host.clone();
    let (w, _bare) =
        origin_with_feature(&format!("{h}/group/app:2.0"), &format!("{h}/group/app:2.1"));
    let base = git(w.path(), &["rev-parse", "main"]);
    let feature = git(w.path(), &["rev-parse", "feature"]);
    // main moves on after the branch: a file with another missing tag, not the MR's doing.
    git(w.path(), &["checkout", "-q", "main"]);
    w.write(
        "deploy/other.yaml",
        &deployment("other", &[&format!("{h}/group/app:9.9")]),
    );
    git(w.path(), &["add", "-A"]);
    git(w.path(), &["commit", "-q", "-m", "main moves on"]);
    git(w.path(), &["push", "-q", "origin", "main"]);
    git(w.path(), &["fetch", "-q", "origin"]);
    let target = git(w.path(), &["rev-parse", "main"]);

    let home = w.path().join(".home");
    let docker_config = home.join(".docker/config.json");
    std::fs::create_dir_all(docker_config.parent().unwrap()).unwrap();
    let kept =
        r#"{"auths":{"other.example":{"auth":"dXNlcjpwYXNz"}},"credHelpers":{"gcr.io":"gcloud"}}"#;
    std::fs::write(&docker_config, kept).unwrap();

    let script = root().join("scripts/gitlab-check.sh");
    let env = |extra: &[(&'static str, String)]| {
        let mut v: Vec<(&'static str, String)> = vec![
            ("HOME", home.display().to_string()),
            ("XDG_CACHE_HOME", home.join(".cache").display().to_string()),
            ("IMAGEGATE_BIN", env!("CARGO_BIN_EXE_imagegate").into()),
            ("GITLAB_CI", "true".into()),
            ("CI", "true".into()),
            ("CI_DEFAULT_BRANCH", "main".into()),
            ("CI_REGISTRY", h.clone()),
            ("CI_REGISTRY_USER", "gitlab-ci-token".into()),
            ("CI_REGISTRY_PASSWORD", secret.into()),
            ("IMAGEGATE_ARGS", "--no-suggest\n--color=never".into()),
        ];
        v.extend_from_slice(extra);
        v
    };
    let quality = |w: &Workdir| -> serde_json::Value {
        serde_json::from_str(
            &std::fs::read_to_string(w.path().join("gl-code-quality-report.json")).unwrap(),
        )
        .unwrap()
    };
    let mr = |extra: &[(&'static str, String)]| {
        let mut v = vec![
            ("CI_PIPELINE_SOURCE", "merge_request_event".to_string()),
            ("CI_MERGE_REQUEST_DIFF_BASE_SHA", base.clone()),
            ("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "main".into()),
            ("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "feature".into()),
            ("CI_COMMIT_BEFORE_SHA", "0".repeat(40)),
        ];
        v.extend_from_slice(extra);
        env(&v)
    };

    // A merge request pipeline runs on the source branch's commit (POSIX sh: the image has
    // no bash).
    git(w.path(), &["checkout", "-q", "--detach", &feature]);
    let run = run_script("sh", &script, w.path(), &mr(&[]));
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("merge request pipeline: CI_MERGE_REQUEST_DIFF_BASE_SHA"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret));
    let q = quality(&w);
    assert_eq!(q.as_array().unwrap().len(), 1, "{q}");
    assert_eq!(q[0]["check_name"], "not-found", "{q}");
    assert_eq!(q[0]["location"]["path"], "deploy/web.yaml");
    assert_eq!(q[0]["location"]["lines"]["begin"], 10);
    assert_eq!(q[0]["severity"], "critical");
    let junit = std::fs::read_to_string(w.path().join("imagegate-junit.xml")).unwrap();
    assert!(junit.contains("failures=\"1\""), "{junit}");
    assert!(junit.contains(&format!("{h}/group/app:2.1")), "{junit}");
    assert_eq!(
        std::fs::read_to_string(&docker_config).unwrap(),
        kept,
        "the Docker config was changed"
    );

    // A merged results pipeline runs on the merge of the branch into the target's tip: only
    // the merge request's change counts, not what main did meanwhile.
    git(w.path(), &["checkout", "-q", "--detach", &target]);
    git(
        w.path(),
        &["merge", "-q", "--no-ff", "-m", "merged result", &feature],
    );
    let run = run_script(
        "sh",
        &script,
        w.path(),
        &mr(&[
            ("CI_MERGE_REQUEST_EVENT_TYPE", "merged_result".to_string()),
            ("CI_MERGE_REQUEST_TARGET_BRANCH_SHA", target.clone()),
        ]),
    );
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("merged results pipeline"),
        "{}",
        run.stdout
    );
    let q = quality(&w);
    assert_eq!(
        q.as_array().unwrap().len(),
        1,
        "only the MR's reference: {q}"
    );
    assert_eq!(q[0]["location"]["path"], "deploy/web.yaml");

    // A branch pipeline: the push's previous tip, or for a new branch the default branch.
    git(w.path(), &["checkout", "-q", "--detach", &feature]);
    for (before, why) in [
        (base.clone(), "branch pipeline: the tip before the push"),
        (
            "0".repeat(40),
            "new branch feature: its merge base with origin/main",
        ),
    ] {
        let run = run_script(
            "sh",
            &script,
            w.path(),
            &env(&[
                ("CI_PIPELINE_SOURCE", "push".to_string()),
                ("CI_COMMIT_BRANCH", "feature".into()),
                ("CI_COMMIT_BEFORE_SHA", before),
            ]),
        );
        assert_eq!(run.code, 1, "{why}: {}\n{}", run.stdout, run.stderr);
        assert!(run.stdout.contains(why), "{}", run.stdout);
        let q = quality(&w);
        assert_eq!(q.as_array().unwrap().len(), 1, "{q}");
        assert_eq!(q[0]["location"]["path"], "deploy/web.yaml");
    }

    // Nothing to compare with: a clear message, not a misleading one about an empty base.
    let run = run_script(
        "sh",
        &script,
        w.path(),
        &env(&[
            ("CI_PIPELINE_SOURCE", "schedule".to_string()),
            ("CI_COMMIT_BRANCH", "main".into()),
            ("CI_COMMIT_BEFORE_SHA", "0".repeat(40)),
        ]),
    );
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("no base to compare with") && run.stderr.contains("IMAGEGATE_BASE"),
        "{}",
        run.stderr
    );

    // Exit 2 from imagegate still writes (failed) reports for the merge request widget.
    let run = run_script(
        "sh",
        &script,
        w.path(),
        &mr(&[("IMAGEGATE_ARGS", "--config=no-such.yaml".to_string())]),
    );
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let q = quality(&w);
    assert_eq!(q[0]["check_name"], "imagegate-could-not-run", "{q}");
    let junit = std::fs::read_to_string(w.path().join("imagegate-junit.xml")).unwrap();
    assert!(
        junit.contains("errors=\"1\"") && junit.contains("no-such.yaml"),
        "{junit}"
    );

    // IMAGEGATE_UNDECIDED=warn: a registry that is gone passes, reported as minor.
    drop(reg);
    let run = run_script(
        "sh",
        &script,
        w.path(),
        &mr(&[
            ("IMAGEGATE_UNDECIDED", "warn".to_string()),
            ("IMAGEGATE_ARGS", "--no-suggest\n--deadline=5".to_string()),
        ]),
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let q = quality(&w);
    assert_eq!(q[0]["check_name"], "unreachable", "{q}");
    assert_eq!(q[0]["severity"], "minor", "{q}");
}
