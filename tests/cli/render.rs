//! `--render` (issue 15, the completeness net): the real `kubectl kustomize` (kustomize v5.8.1,
//! from $IMAGEGATE_ENGINES) renders every root a check covers, and an image the native model
//! did not predict is checked anyway, at the kustomization, against the real registry. The
//! engine is a trusted setting, gets a clean environment and never runs exec functions or
//! plugins; a failing render is exit 2 with kustomize's own message.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::*;

/// A base deploying `web`, and an overlay whose `replacements:` (which the native model does
/// not apply) sets the image from a configMapGenerator literal.
fn replacement_tree(w: &Workdir, base_image: &str, replaced: &str) {
    w.write("base/deploy.yaml", &deployment("web", &[base_image]));
    w.write("base/kustomization.yaml", "resources:\n  - deploy.yaml\n");
    w.write("overlay/kustomization.yaml", &overlay(replaced, "versions"));
}

/// The overlay's text; `source` names the ConfigMap the replacement reads.
fn overlay(image: &str, source: &str) -> String {
    format!(
        "# the image comes from the generator\nresources:\n  - ../base\nconfigMapGenerator:\n  - name: versions\n    literals:\n      - image={image}\nreplacements:\n  - source:\n      kind: ConfigMap\n      name: {source}\n      fieldPath: data.image\n    targets:\n      - select:\n          kind: Deployment\n          name: web\n        fieldPaths:\n          - spec.template.spec.containers.[name=c0].image\n"
    )
}

pub fn executable(w: &Workdir, rel: &str, text: &str) -> PathBuf {
    let p = w.write(rel, text);
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// Rows `file:line image status context` of the references kustomize rendered.
pub fn rendered(run: &Run) -> Vec<String> {
    rendered_by(run, "kustomize")
}

/// Rows `file:line image status context` of the references `engine` rendered.
pub fn rendered_by(run: &Run, engine: &str) -> Vec<String> {
    let by = format!("rendered by {engine}");
    run.rows(|r| {
        let context = r["context"].as_str()?;
        context.contains(&by).then(|| {
            format!(
                "{}:{} {} {} {context}",
                r["file"].as_str().unwrap(),
                r["line"],
                r["image"].as_str().unwrap(),
                r["status"].as_str().unwrap()
            )
        })
    })
}

/// The run exits `code` and `engine` rendered exactly `rows`.
pub fn assert_rendered(run: &Run, engine: &str, code: i32, rows: &[String]) {
    assert_eq!(run.code, code, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(rendered_by(run, engine), rows);
}

/// The run's one `model-gap` note says `says`.
pub fn one_model_gap_says(run: &Run, says: &str) {
    let gaps = run.file_findings("model-gap");
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    let message = gaps[0]["message"].as_str().unwrap();
    assert!(message.contains(says), "{gaps:?}");
}

/// `check --all --offline --render` run by the kustomize program `k`.
pub fn offline_render(k: &Path) -> [&str; 6] {
    let k = k.to_str().unwrap();
    ["check", "--all", "--offline", "--render", "--kustomize", k]
}

/// A tools directory holding `name`, a wrapper that appends what the shell commands `log`
/// print to `record`, then runs `then` (the real program); and a PATH of it, then `after`.
pub fn recording_wrapper(
    name: &str,
    log: &str,
    record: &Path,
    then: &str,
    after: &str,
) -> (Workdir, String) {
    let tools = Workdir::new();
    let script = format!("#!/bin/sh\n{{ {log} }} >> {}\n{then}\n", record.display());
    executable(&tools, name, &script);
    let path = format!("{}:{after}", tools.path().display());
    (tools, path)
}

/// None of `gone` is in what a recording wrapper around `program` wrote down.
pub fn none_reached(record: &str, program: &str, gone: &[&str]) {
    for g in gone {
        assert!(!record.contains(g), "{g} reached {program}: {record}");
    }
}

/// Programs the repository holds in the hope of being run as `name` (`evil.sh`, `name`,
/// `bin/name`); each touches the marker whose path is returned.
pub fn planted_programs(w: &Workdir, name: &str) -> PathBuf {
    let marker = w.path().join("PWNED");
    let evil = format!("#!/bin/sh\ntouch {}\n", marker.display());
    for rel in [
        "evil.sh".to_string(),
        name.to_string(),
        format!("bin/{name}"),
    ] {
        executable(w, &rel, &evil);
    }
    marker
}

/// The repository's config naming the `engine` program (`./evil.sh`) is exit 2, saying it is
/// not honoured, and runs nothing of the repository (`path`: PATH, where the engine is).
pub fn the_repository_cannot_choose(w: &Workdir, engine: &str, path: &str, marker: &Path) {
    w.write(
        ".imagegate.yaml",
        &format!("render: true\nengines:\n  {engine}: ./evil.sh\n"),
    );
    let run = w.run_env(&OFFLINE_JSON, &[("PATH", path)]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let said =
        format!("`engines.{engine}` (./evil.sh) is not honoured from the repository's config");
    assert!(run.stderr.contains(&said), "{}", run.stderr);
    assert!(!marker.exists(), "the repository chose the program");
}

/// Trusted configs outside the repository naming the `engine` program: `config.yaml` by its
/// path, `bare.yaml` by a bare name found on PATH.
pub fn trusted_configs(engine: &str, program: &Path, bare: &str) -> (Workdir, PathBuf, PathBuf) {
    let trusted = Workdir::new();
    let config = trusted.write(
        "config.yaml",
        &format!(
            "render: true\nengines:\n  {engine}: {}\n",
            program.display()
        ),
    );
    let bare = trusted.write(
        "bare.yaml",
        &format!("render: true\nengines:\n  {engine}: {bare}\n"),
    );
    (trusted, config, bare)
}

/// A way of running a check: its extra arguments and its environment.
pub type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>);

/// Each trusted way of turning render on and naming the program (the extra arguments and
/// the environment of a case) passes, and `judge` sees its run (with the case, for messages).
pub fn each_trusted_way_renders(w: &Workdir, cases: &[Case], judge: impl Fn(&Run, &str)) {
    for (args, env) in cases {
        let mut all = OFFLINE_JSON.to_vec();
        all.extend(args.iter().copied());
        let run = w.run_env(&all, env);
        let case = format!("{args:?} {env:?}");
        assert_eq!(run.code, 0, "{case}: {}\n{}", run.stdout, run.stderr);
        judge(&run, &case);
    }
}

/// Issue 15: an image only `replacements:` produces is missing from the registry. Without
/// --render the check passes, with the model's note saying to run --render; with it the
/// rendered image fails at the kustomization, as a model gap.
#[test]
fn a_replaced_image_fails_only_with_render() {
    let reg = Registry::anonymous();
    reg.push_image("acme/web", "1.0", DOCKER_MANIFEST);
    let h = &reg.host;
    let w = Workdir::new();
    replacement_tree(
        &w,
        &format!("{h}/acme/web:1.0"),
        &format!("{h}/acme/web:2.0-typo"),
    );
    let k = kubectl();
    let k = k.to_str().unwrap();

    let plain = w.run(&CHECK_JSON);
    assert_eq!(plain.code, 0, "{}\n{}", plain.stdout, plain.stderr);
    assert!(rendered(&plain).is_empty());
    let unmodelled = plain.file_findings("skipped");
    assert!(
        unmodelled.iter().any(|f| f["message"]
            .as_str()
            .unwrap()
            .contains("`replacements` is not applied")
            && f["hint"].as_str().unwrap().contains("--render")),
        "{unmodelled:?}"
    );

    let mut args = CHECK_JSON.to_vec();
    args.extend(["--render", "--kustomize", k]);
    let run = w.run(&args);
    assert_rendered(
        &run,
        "kustomize",
        1,
        &[format!(
            "overlay/kustomization.yaml:2 {h}/acme/web:2.0-typo not-found Deployment/web containers[c0] (rendered by kustomize)"
        )],
    );
    one_model_gap_says(
        &run,
        &format!("`kubectl kustomize overlay` deploys `{h}/acme/web:2.0-typo`"),
    );
    // The base renders as the model predicts: no gap, and its image is checked once.
    assert_eq!(run.statuses()[&format!("{h}/acme/web:1.0")], "ok");

    // -v lists the model gap; without it, only the failure shows.
    let human = ["check", "--all", "--no-cache", "--render", "--kustomize", k];
    let quiet = w.run(&human);
    assert_eq!(quiet.code, 1);
    assert!(!quiet.stderr.contains("model gap"), "{}", quiet.stderr);
    assert!(!quiet.stdout.contains("model-gap"), "{}", quiet.stdout);
    let mut verbose = human.to_vec();
    verbose.push("-v");
    let verbose = w.run(&verbose);
    assert_eq!(verbose.code, 1);
    assert!(
        verbose
            .stderr
            .contains("model gap: `kubectl kustomize overlay` deploys"),
        "{}",
        verbose.stderr
    );
    assert!(verbose.stdout.contains("model-gap"), "{}", verbose.stdout);

    // With the replaced image pushed, the render passes.
    reg.push_image("acme/web", "2.0-typo", DOCKER_MANIFEST);
    assert_eq!(w.run(&args).code, 0);
}

/// Issue 15: a render that fails is exit 2 with kustomize's own message, never a pass; and
/// --render with no engine to run is exit 2 saying so.
#[test]
fn a_failing_render_is_exit_2_with_kustomizes_message() {
    let w = Workdir::new();
    replacement_tree(&w, "example.invalid/web:1.0", "example.invalid/web:2.0");
    // The replacement reads a ConfigMap nothing generates: kustomize refuses the build.
    w.write(
        "overlay/kustomization.yaml",
        &overlay("example.invalid/web:2.0", "absent"),
    );
    let k = kubectl();
    let plain = w.run(&["check", "--all", "--offline"]);
    assert_eq!(
        plain.code, 0,
        "the native model does not apply replacements"
    );
    let run = w.run(&offline_render(&k));
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("`kubectl kustomize overlay` failed (--render)")
            && run.stderr.contains("nothing selected by ConfigMap")
            && run.stderr.contains("absent"),
        "{}",
        run.stderr
    );

    // No engine: PATH holds neither kustomize nor kubectl.
    let empty = w.path().join(".empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let run = w.run_env(
        &["check", "--all", "--offline", "--render"],
        &[("PATH", empty.to_str().unwrap())],
    );
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("neither `kustomize` nor `kubectl` is on PATH"),
        "{}",
        run.stderr
    );
}

/// Issue 15 and the trust model (issue 13): the repository's `.imagegate.yaml` may turn
/// render on, never choose the program; a program in the repository is never found through a
/// relative PATH entry; trusted settings (flag, variable, trusted config) may name it.
#[test]
fn only_trusted_settings_choose_the_kustomize_program() {
    let w = Workdir::new();
    replacement_tree(
        &w,
        "example.invalid/web:1.0",
        "example.invalid/web:2.0-rendered",
    );
    let marker = planted_programs(&w, "kustomize");
    let k = kubectl();
    let engines = k.parent().unwrap().to_str().unwrap().to_string();
    the_repository_cannot_choose(&w, "kustomize", &engines, &marker);

    // `render: true` from the repository turns it on; kubectl is found on PATH.
    w.write(".imagegate.yaml", "render: true\n");
    let run = w.run_env(&OFFLINE_JSON, &[("PATH", &engines)]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        rendered(&run),
        [
            "overlay/kustomization.yaml:2 example.invalid/web:2.0-rendered skipped Deployment/web containers[c0] (rendered by kustomize)"
        ]
    );

    // Relative PATH entries are dropped, so `./kustomize` and `bin/kustomize` are not found.
    let run = w.run_env(&OFFLINE_JSON, &[("PATH", ".:bin:")]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("neither `kustomize` nor `kubectl`"),
        "{}",
        run.stderr
    );
    assert!(!marker.exists(), "a program in the repository ran");
    std::fs::remove_file(w.path().join(".imagegate.yaml")).unwrap();

    // Trusted: the variable, and a config outside the repository (a bare name on PATH too).
    let (_trusted, config, bare) = trusted_configs("kustomize", &k, "kubectl");
    let cases = [
        (
            vec!["--render"],
            vec![
                ("IMAGEGATE_KUSTOMIZE", k.to_str().unwrap()),
                ("PATH", "/nowhere"),
            ],
        ),
        (
            vec![],
            vec![("IMAGEGATE_RENDER", "true"), ("PATH", engines.as_str())],
        ),
        (
            vec!["--config", config.to_str().unwrap()],
            vec![("PATH", "/nowhere")],
        ),
        (
            vec!["--config", bare.to_str().unwrap()],
            vec![("PATH", engines.as_str())],
        ),
    ];
    each_trusted_way_renders(&w, &cases, |run, case| {
        assert_eq!(rendered(run).len(), 1, "{case}: {}", run.stdout);
    });
    assert!(!marker.exists());
}

/// Issue 15: the engine never runs code from the repository: an exec KRM function and a
/// legacy exec plugin (found through KUSTOMIZE_PLUGIN_HOME, which kubectl runs with
/// --enable-alpha-plugins, as the oracle shows) make the render fail instead of running.
#[test]
fn exec_functions_and_plugins_never_run() {
    let k = kubectl();
    let w = Workdir::new();
    let marker = w.path().join("PWNED");
    let generator = "apiVersion: example.com/v1\nkind: Gen\nmetadata:\n  name: x\n";
    for app in ["function", "plugin"] {
        w.write(
            &format!("{app}/deploy.yaml"),
            &deployment("web", &["example.invalid/web:1.0"]),
        );
        w.write(
            &format!("{app}/kustomization.yaml"),
            "resources:\n  - deploy.yaml\ngenerators:\n  - gen.yaml\n",
        );
    }
    // An exec KRM function...
    w.write(
        "function/gen.yaml",
        &format!(
            "{generator}  annotations:\n    config.kubernetes.io/function: |\n      exec:\n        path: ./gen.sh\n"
        ),
    );
    executable(
        &w,
        "function/gen.sh",
        &format!("#!/bin/sh\ntouch {}\ncat\n", marker.display()),
    );
    // ...and a legacy exec plugin, found through KUSTOMIZE_PLUGIN_HOME.
    w.write("plugin/gen.yaml", generator);
    let plugins = w.path().join("plugins");
    executable(
        &w,
        "plugins/example.com/v1/gen/Gen",
        &format!("#!/bin/sh\ntouch {}\n", marker.display()),
    );
    let oracle = Command::new(&k)
        .args(["kustomize", "--enable-alpha-plugins", "plugin"])
        .current_dir(w.path())
        .env("KUSTOMIZE_PLUGIN_HOME", &plugins)
        .output()
        .unwrap();
    assert!(oracle.status.success(), "{oracle:?}");
    assert!(
        marker.exists(),
        "the oracle: enabled, kustomize runs the plugin"
    );
    std::fs::remove_file(&marker).unwrap();

    for app in ["function", "plugin"] {
        let mut args = offline_render(&k).to_vec();
        args.push(app);
        let run = w.run_env(
            &args,
            &[("KUSTOMIZE_PLUGIN_HOME", plugins.to_str().unwrap())],
        );
        assert_eq!(run.code, 2, "{app}: {}\n{}", run.stdout, run.stderr);
        assert!(
            run.stderr
                .contains(&format!("`kubectl kustomize {app}` failed"))
                && run.stderr.contains("external plugins disabled"),
            "{app}: {}",
            run.stderr
        );
        assert!(
            !marker.exists(),
            "--render ran a program of the repository ({app})"
        );
    }
}

/// Issue 15: a `kustomize` program (a recording wrapper around the real engine, so its
/// arguments, environment and directory can be read) is preferred on PATH, runs `build` with
/// root-only loading and no `--enable-*`, in the repository's root, without the caller's
/// environment.
#[test]
fn kustomize_gets_safe_arguments_a_clean_environment_and_the_root() {
    let k = kubectl();
    let w = Workdir::new();
    replacement_tree(
        &w,
        "example.invalid/web:1.0",
        "example.invalid/web:2.0-rendered",
    );
    let record = w.path().join("record");
    let (_tools, path) = recording_wrapper(
        "kustomize",
        "echo \"args: $*\"; echo \"pwd: $(pwd)\"; /usr/bin/env;",
        &record,
        &format!("shift\nexec {} kustomize \"$@\"", k.display()),
        &k.parent().unwrap().display().to_string(),
    );
    let run = w.run_env(
        &RENDER_OFFLINE_JSON,
        &[
            ("PATH", &path),
            ("SENTINEL_SECRET", "s3cret-sentinel"),
            ("KUSTOMIZE_PLUGIN_HOME", "/tmp"),
            ("XDG_CONFIG_HOME", "/tmp"),
        ],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(rendered(&run).len(), 1, "{}", run.stdout);
    let record = std::fs::read_to_string(&record).unwrap();
    let root = w.path().canonicalize().unwrap();
    for dir in ["./base", "./overlay"] {
        assert!(
            record.contains(&format!(
                "args: build --load-restrictor=LoadRestrictionsRootOnly {dir}\n"
            )),
            "{record}"
        );
    }
    assert!(
        record.contains(&format!("pwd: {}\n", root.display())),
        "{record}"
    );
    assert!(!record.contains("enable"), "{record}");
    none_reached(
        &record,
        "kustomize",
        &[
            "s3cret-sentinel",
            "KUSTOMIZE_PLUGIN_HOME",
            "XDG_CONFIG_HOME",
            "DOCKER_CONFIG",
        ],
    );
}

/// Issue 15: in a diff, the head commit's tree is rendered (not the working tree), and only
/// rendered images new against the same root rendered at the merge base are checked: a
/// change to the base alone does not fail on a missing image the overlay deployed before.
#[test]
fn a_diff_renders_the_head_commit_and_checks_only_what_is_new() {
    let reg = Registry::anonymous();
    reg.push_image("acme/web", "1.0", DOCKER_MANIFEST);
    let h = &reg.host;
    let k = kubectl();
    let w = Workdir::new();
    git(w.path(), &["init", "-q", "-b", "main"]);
    w.write(".git/info/exclude", ".docker-config\n.cache\n");
    replacement_tree(
        &w,
        &format!("{h}/acme/web:1.0"),
        &format!("{h}/acme/web:old-gone"),
    );
    git(w.path(), &["add", "-A"]);
    git(w.path(), &["commit", "-q", "-m", "base"]);
    git(w.path(), &["checkout", "-q", "-b", "change"]);
    let check = |extra: &[&str]| {
        let mut args = vec![
            "check",
            "--base",
            "main",
            "--no-cache",
            "--format",
            "json",
            "--render",
            "--kustomize",
            k.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        w.run(&args)
    };

    // The base's Deployment gains a label: the overlay is rebuilt and rendered, and its
    // missing image was already deployed at the merge base.
    let text = std::fs::read_to_string(w.path().join("base/deploy.yaml")).unwrap();
    w.write(
        "base/deploy.yaml",
        &text.replace("  name: web\n", "  name: web\n  labels:\n    team: a\n"),
    );
    git(w.path(), &["commit", "-q", "-am", "label"]);
    let run = check(&["--no-worktree"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(rendered(&run).is_empty(), "{}", run.stdout);
    // --all-refs checks everything the changed roots deploy, the old image too.
    let run = check(&["--no-worktree", "--all-refs"]);
    assert_rendered(
        &run,
        "kustomize",
        1,
        &[format!(
            "overlay/kustomization.yaml:2 {h}/acme/web:old-gone not-found Deployment/web containers[c0] (rendered by kustomize)"
        )],
    );

    // The overlay's replaced image changes in a commit; the working tree puts the old one
    // back without committing. The commit is what is rendered.
    w.write(
        "overlay/kustomization.yaml",
        &overlay(&format!("{h}/acme/web:2.0-typo"), "versions"),
    );
    git(w.path(), &["commit", "-q", "-am", "bump"]);
    w.write(
        "overlay/kustomization.yaml",
        &overlay(&format!("{h}/acme/web:old-gone"), "versions"),
    );
    let run = check(&["--no-worktree"]);
    assert_rendered(
        &run,
        "kustomize",
        1,
        &[format!(
            "overlay/kustomization.yaml:2 {h}/acme/web:2.0-typo not-found Deployment/web containers[c0] (rendered by kustomize)"
        )],
    );
    // With the working tree, what is on disk is rendered: the image of the merge base.
    let run = check(&["--worktree"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(rendered(&run).is_empty(), "{}", run.stdout);
}
