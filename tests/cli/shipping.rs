//! Shipping (issue 18): the release archive built by `scripts/release-archive` as the release
//! workflow builds it, served from loopback and installed by the Action's install script
//! (checksum verified, a corrupted archive refused, the only fallback a build of the action's
//! own source), then used by the Action's check step on a shallow pull request clone and by
//! the pre-commit hook; the JSON report validated against the published schema; the hook
//! surviving `cargo clean`; `--undecided`, `--color`, completions, the man page, `--version`
//! and the README's first run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::ci::{github_env, origin_with_feature, output, root, run_script, shallow_clone, tool};
use crate::harness::*;

/// A static file server on 127.0.0.1 for release downloads (GitHub's release URLs are not
/// reachable here); it counts requests and answers 404 for what is missing.
struct Files {
    hits: Arc<AtomicUsize>,
    server: crate::loopback_http::Server,
}

impl Files {
    fn serve(dir: PathBuf) -> Files {
        use crate::loopback_http::Reply;
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        let server = crate::loopback_http::serve("127.0.0.1:0", move |req| {
            h.fetch_add(1, Ordering::SeqCst);
            let rel = req.target.trim_start_matches('/').to_string();
            let body = (!rel.contains("..")).then(|| std::fs::read(dir.join(&rel)).ok());
            match body.flatten() {
                Some(bytes) => Reply::new(200, bytes),
                None => Reply::new(404, Vec::new()),
            }
        });
        Files { hits, server }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.server.port)
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// The release target the install script picks on this machine.
fn host_target() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "x86_64-unknown-linux-musl",
        "aarch64" => "aarch64-unknown-linux-musl",
        other => panic!("no release target for {other}"),
    }
}

fn release_archive(args: &[&str]) -> String {
    let out = Command::new(root().join("scripts/release-archive"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scripts/release-archive {args:?}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn version() -> String {
    std::fs::read_to_string(root().join(".version"))
        .unwrap()
        .trim()
        .to_string()
}

/// A fake `cargo` first on PATH that records how it was called and "builds" by copying the
/// test binary: a real release build takes minutes, and the point is which build it asks
/// for (the action's own source, never `cargo install NAME`).
fn fake_cargo(dir: &Path) -> (PathBuf, PathBuf) {
    let bin = dir.join("fake-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = dir.join("cargo.log");
    let script = format!(
        "#!/bin/sh\necho \"$@\" >> '{log}'\nwhile [ $# -gt 0 ]; do\n  if [ \"$1\" = --target-dir ]; then mkdir -p \"$2/release\" && cp '{exe}' \"$2/release/imagegate\"; fi\n  shift\ndone\n",
        log = log.display(),
        exe = env!("CARGO_BIN_EXE_imagegate"),
    );
    std::fs::write(bin.join("cargo"), script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("cargo"), std::fs::Permissions::from_mode(0o755)).unwrap();
    (bin, log)
}

/// Issue 18: a release archive built by scripts/release-archive, served from loopback,
/// installed by the Action's install step (version pinned by .version, checksum verified,
/// cached), refused when corrupted, built from the action's own source only when the
/// release has no archive, and then run by the Action's check step and the pre-commit hook.
#[test]
fn a_release_built_by_the_release_script_installs_verified_and_runs() {
    let w = Workdir::new();
    let version = version();
    let target = host_target();
    let srv = w.path().join("srv");
    let dist = srv.join(&version);
    let archive = release_archive(&[
        "package",
        target,
        env!("CARGO_BIN_EXE_imagegate"),
        dist.to_str().unwrap(),
    ]);
    assert!(
        archive.ends_with(&format!("imagegate-{target}.tar.gz")),
        "{archive}"
    );
    release_archive(&["sums", dist.to_str().unwrap()]);
    let listing = Command::new("tar")
        .args(["-tzf", &archive])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    for file in [
        "imagegate",
        "README.md",
        "LICENSE-MIT",
        "LICENSE-APACHE",
        "imagegate.1",
        "completions/imagegate.bash",
        "completions/_imagegate",
        "completions/imagegate.fish",
    ] {
        assert!(
            listing.contains(&format!("imagegate-{target}/{file}\n")),
            "{file} in:\n{listing}"
        );
    }
    let sums = std::fs::read_to_string(dist.join("SHA256SUMS")).unwrap();
    let good = std::fs::read(&archive).unwrap();
    assert_eq!(
        sums,
        format!(
            "{}  imagegate-{target}.tar.gz\n",
            sha256(&good).trim_start_matches("sha256:")
        )
    );

    let files = Files::serve(srv.clone());
    let (fake_bin, cargo_log) = fake_cargo(w.path());
    let script = root().join("scripts/action-install.sh");
    let path = format!("{}:{}", fake_bin.display(), std::env::var("PATH").unwrap());
    let github_path = w.path().join("github_path");
    let env = |cache: &str, extra: &[(&'static str, String)]| {
        let mut v: Vec<(&'static str, String)> = vec![
            ("PATH", path.clone()),
            ("GITHUB_ACTION_PATH", root().display().to_string()),
            ("IMAGEGATE_RELEASE_URL", files.url()),
            (
                "IMAGEGATE_TOOL_CACHE",
                w.path().join(cache).display().to_string(),
            ),
            ("GITHUB_PATH", github_path.display().to_string()),
            (
                "GITHUB_OUTPUT",
                w.path().join("outputs").display().to_string(),
            ),
            ("RUNNER_TEMP", w.path().display().to_string()),
        ];
        v.extend_from_slice(extra);
        v
    };

    // The version defaults to the action's own release; `latest` and junk are refused.
    let version_output = w.path().join("version-output");
    let resolve = |input: &str| {
        let out = Command::new("bash")
            .arg(&script)
            .arg("version")
            .env("GITHUB_ACTION_PATH", root())
            .env("IMAGEGATE_VERSION", input)
            .env("GITHUB_OUTPUT", &version_output)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    assert_eq!(resolve(""), (0, version.clone(), String::new()));
    assert_eq!(output(&version_output, "version"), version);
    assert_eq!(resolve("0.9.1").1, "v0.9.1");
    let (code, _, err) = resolve("latest");
    assert!(code == 1 && err.contains("pin a release"), "{err}");
    let (code, _, err) = resolve("v1;touch x");
    assert!(code == 1 && err.contains("not a release tag"), "{err}");

    // Install: downloaded, verified, cached, put on PATH.
    let install = |cache: &str, extra: &[(&'static str, String)]| {
        run_install(&script, w.path(), env(cache, extra))
    };
    let run = install("cache", &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("verified against SHA256SUMS"),
        "{}",
        run.stderr
    );
    let dir = w.path().join("cache/imagegate").join(&version);
    let installed = dir.join("imagegate");
    assert_eq!(
        run.stdout.lines().last().unwrap(),
        installed.display().to_string()
    );
    assert!(
        std::fs::read_to_string(&github_path)
            .unwrap()
            .contains(&dir.display().to_string())
    );
    let hits = files.hits();
    assert_eq!(hits, 2, "the archive and SHA256SUMS");
    // Cached: no download the second time.
    let run = install("cache", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(files.hits(), hits, "the cached binary is used");

    // A corrupted archive is refused, with no fallback build.
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    std::fs::write(dist.join(format!("imagegate-{target}.tar.gz")), &bad).unwrap();
    let run = install("cache-corrupt", &[]);
    assert_eq!(
        run.code, 1,
        "a corrupted archive must not install: {}",
        run.stderr
    );
    assert!(run.stderr.contains("checksum mismatch"), "{}", run.stderr);
    assert!(
        !w.path()
            .join("cache-corrupt/imagegate")
            .join(&version)
            .join("imagegate")
            .exists()
    );
    assert!(
        !cargo_log.exists(),
        "nothing may be built after a checksum mismatch"
    );

    // No archive for another version: no build either (the source is the action's version).
    std::fs::remove_file(dist.join(format!("imagegate-{target}.tar.gz"))).unwrap();
    let run = install("cache-other", &[("IMAGEGATE_VERSION", "v9.9.9".into())]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("pin the action"), "{}", run.stderr);
    assert!(!cargo_log.exists());
    // No archive for the action's own version: built from the action's checkout, never a crate.
    let run = install("cache-built", &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let calls = std::fs::read_to_string(&cargo_log).unwrap();
    assert!(
        calls.starts_with("build --release --locked --manifest-path ")
            && calls.contains(&format!("{}/Cargo.toml", root().display())),
        "{calls}"
    );
    assert!(!calls.contains("install"), "{calls}");
    assert!(
        w.path()
            .join("cache-built/imagegate")
            .join(&version)
            .join("imagegate")
            .exists()
    );
    std::fs::write(dist.join(format!("imagegate-{target}.tar.gz")), &good).unwrap();

    // The installed binary, found on PATH as a later step would, checks a shallow pull
    // request clone against the real registry.
    let reg = Registry::anonymous();
    reg.push_image("acme/web", "1.0", DOCKER_MANIFEST);
    let h = &reg.host;
    let (repo, bare) = origin_with_feature(
        &format!("{h}/acme/web:1.0"),
        &format!("{h}/acme/web:1.0-typo"),
    );
    let clone = shallow_clone(&repo, &bare);
    let gh = repo.path().join("gh");
    std::fs::create_dir_all(&gh).unwrap();
    let on_path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap());
    let run = run_script(
        "bash",
        &root().join("scripts/action-check.sh"),
        &clone,
        &github_env(&gh, &[("PATH", on_path.clone())]),
    );
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("::error file=deploy/web.yaml,line=10,col=16,"),
        "{}",
        run.stdout
    );
    assert_eq!(output(&gh.join("outputs"), "errors"), "1");

    // The pre-commit hook installs the same verified release and checks what a push adds.
    let main = git(repo.path(), &["rev-parse", "main"]);
    let run = run_script(
        "bash",
        &root().join("scripts/pre-commit-hook"),
        repo.path(),
        &[
            ("PATH", path.clone()),
            ("IMAGEGATE_RELEASE_URL", files.url()),
            (
                "XDG_CACHE_HOME",
                w.path().join("pre-commit-cache").display().to_string(),
            ),
            ("HOME", w.path().display().to_string()),
            ("PRE_COMMIT_FROM_REF", main),
            ("PRE_COMMIT_TO_REF", "HEAD".into()),
        ],
    );
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("not found") && run.stdout.contains("1.0-typo"),
        "{}",
        run.stdout
    );
    assert!(
        w.path()
            .join("pre-commit-cache/imagegate")
            .join(&version)
            .join("imagegate")
            .exists()
    );
}

fn run_install(script: &Path, dir: &Path, env: Vec<(&'static str, String)>) -> Run {
    let mut cmd = Command::new("bash");
    cmd.arg(script).arg("install").current_dir(dir);
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("IMAGEGATE_") {
            cmd.env_remove(var);
        }
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

/// Issue 18: JSON reports, from an offline scan of the bundled fixtures, a diff check against
/// the real registry and a run that could not happen, validate against the published
/// report.schema.json, which is strict enough to refuse a field it does not describe.
#[test]
fn json_reports_validate_against_the_published_report_schema() {
    let cj = tool("check-jsonschema", "pip install check-jsonschema");
    let w = Workdir::new();
    let mut documents = Vec::new();
    let mut keep = |name: &str, text: &str| {
        let p = w.path().join(name);
        std::fs::write(&p, text).unwrap();
        documents.push(p);
    };
    for fixtures in ["fixtures/k8s", "fixtures/flux"] {
        let run = w.run(&[
            "check",
            "--all",
            "--offline",
            "--format",
            "json",
            root().join(fixtures).to_str().unwrap(),
        ]);
        assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
        keep(&format!("{}.json", fixtures.replace('/', "-")), &run.stdout);
    }
    let reg = Registry::anonymous();
    reg.push_image("acme/web", "1.0", DOCKER_MANIFEST);
    let h = &reg.host;
    let (repo, _bare) = origin_with_feature(
        &format!("{h}/acme/web:1.0"),
        &format!("{h}/acme/web:1.0-typo"),
    );
    let run = repo.run(&["check", "--base", "main", "--format", "json", "-v"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.json()["base"]["rev"] == "main"
            && run.json()["references"][0]["suggestions"][0] == "1.0",
        "{}",
        run.stdout
    );
    keep("diff.json", &run.stdout);
    let failed = w.path().join("failed.json");
    let run = w.run(&[
        "check",
        "--all",
        "--config",
        "nope.yaml",
        "--report",
        &format!("json={}", failed.display()),
    ]);
    assert_eq!(run.code, 2);
    documents.push(failed);

    let schema = root().join("report.schema.json");
    let out = Command::new(&cj)
        .arg("--schemafile")
        .arg(&schema)
        .args(&documents)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The schema refuses what it does not describe, so a new field cannot go unpublished.
    let mut extra: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&documents[2]).unwrap()).unwrap();
    extra["references"][0]["surprise"] = serde_json::json!(1);
    let extra_file = w.path().join("extra.json");
    std::fs::write(&extra_file, extra.to_string()).unwrap();
    let out = Command::new(&cj)
        .arg("--schemafile")
        .arg(&schema)
        .arg(&extra_file)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "an undescribed field passed the schema"
    );
    // `imagegate report-schema` prints the published file.
    let run = w.run(&["report-schema"]);
    assert_eq!(run.stdout, std::fs::read_to_string(&schema).unwrap());
}

const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn git_push(w: &Workdir, path: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new("git")
        .args(args)
        .current_dir(w.path())
        .env("PATH", path)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("DOCKER_CONFIG", &w.docker_config)
        .env("XDG_CACHE_HOME", w.path().join(".cache"))
        .env("HOME", w.path())
        .env("NO_COLOR", "1")
        .env_remove("CI")
        .env_remove("IMAGEGATE_UNDECIDED")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout),
    )
}

/// Regression test for issue 18: the hook recorded the absolute path of the binary that ran
/// `hook install` (often target/release), so `cargo clean` broke every push with
/// "imagegate: not found". It now records the imagegate on PATH, and says clearly what to do
/// when the binary is gone; `--undecided warn` lets an offline push through.
#[test]
fn the_hook_runs_the_imagegate_on_path_and_explains_when_it_is_gone() {
    let w = Workdir::new();
    git(w.path(), &["init", "-q", "-b", "main"]);
    w.write("a.yaml", &deployment("a", &["nginx:1.27"]));
    git(w.path(), &["add", "-A"]);
    git(w.path(), &["commit", "-q", "-m", "base"]);
    let bare = tempfile::tempdir().unwrap();
    add_origin(&w, bare.path());
    assert!(
        !Command::new("sh")
            .args(["-c", "command -v imagegate"])
            .env("PATH", SYSTEM_PATH)
            .status()
            .unwrap()
            .success(),
        "this test needs a PATH without imagegate"
    );

    // Not on PATH: the running binary is recorded, with a warning at install time.
    let run = w.run_env(&["hook", "install"], &[("PATH", SYSTEM_PATH)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("no imagegate on PATH") && run.stderr.contains("cargo clean"),
        "{}",
        run.stderr
    );

    // On PATH: that one is recorded.
    let bin = w.path().join("installed-bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_imagegate"), bin.join("imagegate")).unwrap();
    let path = format!("{}:{SYSTEM_PATH}", bin.display());
    let run = w.run_env(
        &["hook", "install", "--undecided", "warn"],
        &[("PATH", &path)],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let hook = std::fs::read_to_string(w.path().join(".git/hooks/pre-push")).unwrap();
    assert!(
        hook.contains(&format!("imagegate='{}/imagegate'", bin.display())),
        "{hook}"
    );
    assert!(!hook.contains(env!("CARGO_BIN_EXE_imagegate")), "{hook}");
    assert!(hook.contains("pre-push --undecided warn"), "{hook}");

    // A registry that does not answer: undecided, and `--undecided warn` lets the push through.
    let port = free_port();
    git(w.path(), &["checkout", "-q", "-b", "offline"]);
    w.write(
        "a.yaml",
        &deployment("a", &[&format!("127.0.0.1:{port}/acme/app:1")]),
    );
    git(w.path(), &["commit", "-q", "-am", "offline"]);
    let (ok, out) = git_push(&w, &path, &["push", "-q", "origin", "offline"]);
    assert!(ok, "{out}");
    assert!(out.contains("unreachable"), "{out}");

    // Without it the push is blocked, and the message says why and what to do.
    let run = w.run_env(&["hook", "install"], &[("PATH", &path)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    w.write(
        "a.yaml",
        &deployment("a", &[&format!("127.0.0.1:{port}/acme/app:2")]),
    );
    git(w.path(), &["commit", "-q", "-am", "offline again"]);
    let (ok, out) = git_push(&w, &path, &["push", "-q", "origin", "offline"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("could not be decided") && out.contains("--undecided warn"),
        "{out}"
    );

    // The binary is gone (cargo clean, an uninstall): a clear message, not "not found".
    std::fs::remove_file(bin.join("imagegate")).unwrap();
    let (ok, out) = git_push(&w, &path, &["push", "-q", "origin", "offline"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("which is gone") && out.contains("Install") && out.contains("--no-verify"),
        "{out}"
    );
}

/// Issue 18: one switch for undecided references, from the flag, IMAGEGATE_UNDECIDED or the
/// config, decides the exit code and the annotation level together.
#[test]
fn undecided_warn_passes_with_warnings_from_flag_environment_or_config() {
    let port = free_port();
    let w = Workdir::new();
    w.write(
        "deploy.yaml",
        &deployment("a", &[&format!("127.0.0.1:{port}/acme/app:1")]),
    );
    let check = [
        "check",
        "--all",
        "--format",
        "github",
        "--no-suggest",
        "--deadline",
        "5",
    ];
    let run = w.run(&check);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stdout.starts_with("::error file=deploy.yaml"),
        "{}",
        run.stdout
    );
    let warned = |run: &Run| {
        assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
        assert!(
            run.stdout.starts_with("::warning file=deploy.yaml"),
            "{}",
            run.stdout
        );
        assert!(!run.stdout.contains("::error"), "{}", run.stdout);
    };
    warned(&w.run(&[&check[..], &["--undecided", "warn"]].concat()));
    warned(&w.run_env(&check, &[("IMAGEGATE_UNDECIDED", "warn")]));
    // From the user's own (trusted) config; the repository's config may not let undecided
    // references pass (issue 13: a change cannot switch the gate off).
    w.write(".config/imagegate/config.yaml", "undecided: warn\n");
    warned(&w.run(&check));
    w.write(".imagegate.yaml", "undecided: warn\n");
    let refused = w.run(&check);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("not honoured from the repository"),
        "{}",
        refused.stderr
    );
    std::fs::remove_file(w.path().join(".imagegate.yaml")).unwrap();
    // The flag wins over the config; a bad value is an error, not a silent default.
    let run = w.run(&[&check[..], &["--undecided", "error"]].concat());
    assert_eq!(run.code, 3);
    let run = w.run_env(&check, &[("IMAGEGATE_UNDECIDED", "maybe")]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("IMAGEGATE_UNDECIDED must be"),
        "{}",
        run.stderr
    );
    // Human output draws it as a warning too, with the exit code 0.
    let run = w.run(&["check", "--all", "--no-suggest", "--deadline", "5"]);
    assert_eq!(run.code, 0);
    assert!(
        run.stdout.contains("⚠") && !run.stdout.contains("×"),
        "{}",
        run.stdout
    );
}

/// Issue 18: a run that cannot happen is announced to GitHub, even a bad flag.
#[test]
fn exit_2_is_annotated_and_summarised_under_github_actions() {
    let w = Workdir::new();
    let summary = w.path().join("summary.md");
    let gh = [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
    ];
    let run = w.run_env(&["check", "--all", "--no-such-flag"], &gh);
    assert_eq!(run.code, 2);
    assert!(
        run.stdout.starts_with(
            "::error title=imagegate could not run::unexpected argument '--no-such-flag'"
        ),
        "{}",
        run.stdout
    );
    let run = w.run_env(&["check", "--base", "main"], &gh);
    assert_eq!(run.code, 2);
    assert!(
        run.stdout
            .starts_with("::error title=imagegate could not run::"),
        "{}",
        run.stdout
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    assert_eq!(md.matches("could not run (exit 2)").count(), 2, "{md}");
    // Outside GitHub nothing is printed on stdout for it.
    let run = w.run(&["check", "--base", "main"]);
    assert_eq!(run.code, 2);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}

/// Issue 18: the README's first command shows what it found, offline, with file:line:col,
/// and names scripts/demo for the registry check.
#[test]
fn the_first_run_shows_the_references_it_found() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let first = readme.lines().find(|l| l.starts_with("cargo run")).unwrap();
    assert!(
        first.contains("check --all --offline fixtures/k8s"),
        "{first}"
    );
    assert!(readme[..readme.find("## ").unwrap()].contains("scripts/demo"));
    let out = Command::new(env!("CARGO_BIN_EXE_imagegate"))
        .args(["check", "--all", "--offline", "fixtures/k8s"])
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    for row in [
        "fixtures/k8s/cronjob.yaml:14:22",
        "registry.k8s.io/busybox:1.36",
        "fixtures/k8s/deployment.yaml:17:18",
        "ghcr.io/acme/web-migrate:v1.4.9",
    ] {
        assert!(stdout.contains(row), "{row} in:\n{stdout}");
    }
    let deployment = stdout.find("deployment.yaml:17:18").unwrap();
    assert!(
        deployment < stdout.find("deployment.yaml:20:18").unwrap(),
        "rows in file order"
    );
    assert!(
        stdout.trim_end().ends_with(")") || stdout.contains("checked 14 references"),
        "{stdout}"
    );
}

/// Issue 18: --color, completions, the man page and --version with the commit.
#[test]
fn color_completions_man_page_and_version() {
    let w = Workdir::new();
    w.write("bad.yaml", &deployment("a", &["Nginx:1.27"]));
    let colored = |run: &Run| run.stdout.contains("\x1b[");
    assert!(colored(&w.run(&[
        "check",
        "--all",
        "--offline",
        "--color",
        "always"
    ])));
    assert!(!colored(&w.run(&[
        "check",
        "--all",
        "--offline",
        "--color",
        "never"
    ])));
    assert!(
        !colored(&w.run(&["check", "--all", "--offline"])),
        "NO_COLOR and no terminal"
    );

    let bash = w.run(&["completions", "bash"]);
    assert_eq!(bash.code, 0);
    let file = w.write("imagegate.bash", &bash.stdout);
    let syntax = Command::new("bash").arg("-n").arg(&file).status().unwrap();
    assert!(syntax.success());
    assert!(bash.stdout.contains("--undecided") && bash.stdout.contains("pre-push"));
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let run = w.run(&["completions", shell]);
        assert!(run.code == 0 && run.stdout.contains("imagegate"), "{shell}");
    }
    let man = w.run(&["man"]);
    assert_eq!(man.code, 0);
    assert!(man.stdout.contains(".TH imagegate 1"), "{}", man.stdout);
    assert!(man.stdout.contains("IMAGEGATE CHECK") && man.stdout.contains("\\-\\-undecided"));

    let run = w.run(&["--version"]);
    let version = run.stdout.trim();
    let commit = version
        .strip_prefix(&format!("imagegate {} (", env!("CARGO_PKG_VERSION")))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("--version names no commit: {version}"));
    assert!(
        commit.len() == 12 && commit.chars().all(|c| c.is_ascii_hexdigit()),
        "{version}"
    );
    // The commit it was built from: this checkout's HEAD, or one before it when a commit
    // landed after the build.
    git(&root(), &["merge-base", "--is-ancestor", commit, "HEAD"]);
}
