//! `imagegate check` without `--all`: the change against its merge base, in real git
//! repositories built here, and the pre-push hook through a real `git push` (issue 3).

use std::path::Path;

use crate::harness::*;

/// A repository with `main` holding a.yaml (web:1.0, cache:7) and a branch `feature`.
fn repo() -> Workdir {
    let w = Workdir::new();
    git(w.path(), &["init", "-q", "-b", "main"]);
    w.write(
        "a.yaml",
        &deployment("a", &["ghcr.io/acme/web:1.0", "ghcr.io/acme/cache:7"]),
    );
    w.write("notes.txt", "not yaml\n");
    commit(&w, "base");
    git(w.path(), &["checkout", "-q", "-b", "feature"]);
    w
}

fn commit(w: &Workdir, message: &str) {
    git(w.path(), &["add", "-A"]);
    git(w.path(), &["commit", "-q", "-m", message]);
}

/// The images a diff check selected, as `file image`, sorted.
fn selected(w: &Workdir, args: &[&str]) -> Vec<String> {
    let mut all = vec!["check", "--offline", "--format", "json"];
    all.extend_from_slice(args);
    let run = w.run(&all);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    run.rows(|r| {
        Some(format!(
            "{} {}",
            r["file"].as_str().unwrap(),
            r["image"].as_str().unwrap()
        ))
    })
}

#[test]
fn only_references_the_branch_adds_are_checked_against_the_merge_base() {
    let w = repo();
    // Two commits on the branch: a changed tag and a new file.
    w.write(
        "a.yaml",
        &deployment("a", &["ghcr.io/acme/web:1.1", "ghcr.io/acme/cache:7"]),
    );
    commit(&w, "bump web");
    w.write("b.yaml", &deployment("b", &["ghcr.io/acme/jobs:3"]));
    commit(&w, "add jobs");
    // main moves on after the branch point; none of that is the branch's change.
    git(w.path(), &["checkout", "-q", "main"]);
    w.write("c.yaml", &deployment("c", &["ghcr.io/acme/other:9"]));
    w.write(
        "a.yaml",
        &deployment("a", &["ghcr.io/acme/web:1.0", "ghcr.io/acme/cache:8"]),
    );
    commit(&w, "main moves on");
    git(w.path(), &["checkout", "-q", "feature"]);

    let want = ["a.yaml ghcr.io/acme/web:1.1", "b.yaml ghcr.io/acme/jobs:3"];
    assert_eq!(selected(&w, &["--base", "main", "--no-worktree"]), want);

    // --all-refs checks every reference in the changed files.
    assert_eq!(
        selected(&w, &["--base", "main", "--no-worktree", "--all-refs"]),
        [
            "a.yaml ghcr.io/acme/cache:7",
            "a.yaml ghcr.io/acme/web:1.1",
            "b.yaml ghcr.io/acme/jobs:3"
        ]
    );

    // The report says what was compared, and why that base.
    let run = w.run(&[
        "check",
        "--offline",
        "--format",
        "json",
        "--base",
        "main",
        "--no-worktree",
    ]);
    let json = run.json();
    assert_eq!(json["base"]["rev"], "main");
    assert_eq!(json["base"]["reason"], "--base");
    let merge_base = git(w.path(), &["merge-base", "main", "feature"]);
    assert_eq!(json["merge_base"].as_str(), Some(merge_base.as_str()));
    assert_eq!(
        json["head"].as_str(),
        Some(git(w.path(), &["rev-parse", "HEAD"]).as_str())
    );

    // A detached HEAD, as CI checks out, compares the same way.
    git(w.path(), &["checkout", "-q", "--detach"]);
    assert_eq!(selected(&w, &["--base", "main", "--no-worktree"]), want);
}

#[test]
fn a_merge_commit_on_the_branch_moves_the_merge_base() {
    let w = repo();
    w.write("b.yaml", &deployment("b", &["ghcr.io/acme/jobs:3"]));
    commit(&w, "add jobs");
    git(w.path(), &["checkout", "-q", "main"]);
    w.write("c.yaml", &deployment("c", &["ghcr.io/acme/other:9"]));
    commit(&w, "main moves on");
    git(w.path(), &["checkout", "-q", "feature"]);
    git(w.path(), &["merge", "-q", "--no-edit", "main"]);
    // After merging main in, main's file is not the branch's change.
    assert_eq!(
        selected(&w, &["--base", "main", "--no-worktree"]),
        ["b.yaml ghcr.io/acme/jobs:3"]
    );
}

#[test]
fn renames_deletions_and_moved_lines() {
    let w = repo();
    w.write("b.yaml", &deployment("b", &["ghcr.io/acme/jobs:3"]));
    commit(&w, "add b");
    git(w.path(), &["branch", "-q", "-f", "main"]);

    // A rename with an edited image: the new path, and only the edited image.
    std::fs::create_dir_all(w.path().join("apps")).unwrap();
    git(w.path(), &["mv", "a.yaml", "apps/a.yaml"]);
    w.write(
        "apps/a.yaml",
        &deployment("a", &["ghcr.io/acme/web:1.2", "ghcr.io/acme/cache:7"]),
    );
    // A deleted manifest has nothing to check.
    git(w.path(), &["rm", "-q", "b.yaml"]);
    commit(&w, "rename, edit, delete");
    assert_eq!(
        selected(&w, &["--base", "main", "--no-worktree"]),
        ["apps/a.yaml ghcr.io/acme/web:1.2"]
    );

    // A reference moved to another line without change: nothing to check.
    git(w.path(), &["branch", "-q", "-f", "main"]);
    w.write(
        "apps/a.yaml",
        &deployment("renamed", &["ghcr.io/acme/cache:7", "ghcr.io/acme/web:1.2"]),
    );
    commit(&w, "reorder");
    assert!(selected(&w, &["--base", "main", "--no-worktree"]).is_empty());
}

#[test]
fn the_worktree_adds_uncommitted_changes() {
    let w = repo();
    w.write(
        "a.yaml",
        &deployment("a", &["ghcr.io/acme/web:2.0", "ghcr.io/acme/cache:7"]),
    );
    w.write(
        "new/untracked.yaml",
        &deployment("n", &["ghcr.io/acme/new:1"]),
    );
    w.write("staged.yaml", &deployment("s", &["ghcr.io/acme/staged:1"]));
    git(w.path(), &["add", "staged.yaml"]);
    assert_eq!(
        selected(&w, &["--base", "main", "--worktree"]),
        [
            "a.yaml ghcr.io/acme/web:2.0",
            "new/untracked.yaml ghcr.io/acme/new:1",
            "staged.yaml ghcr.io/acme/staged:1"
        ]
    );
    assert!(selected(&w, &["--base", "main", "--no-worktree"]).is_empty());
    // Outside CI the working tree is included by default; in CI it is not.
    assert_eq!(selected(&w, &["--base", "main"]).len(), 3);
    let run = w.run_env(
        &["check", "--offline", "--format", "json", "--base", "main"],
        &[("CI", "true")],
    );
    assert!(
        run.json()["references"].as_array().unwrap().is_empty(),
        "{}",
        run.stdout
    );
}

#[test]
fn ci_variables_choose_the_base() {
    let w = repo();
    let bare = tempfile::tempdir().unwrap();
    add_origin(&w, bare.path());
    w.write("b.yaml", &deployment("b", &["ghcr.io/acme/jobs:3"]));
    commit(&w, "add b");
    let run = w.run_env(
        &["check", "--offline", "--format", "json", "-v"],
        &[("CI", "true"), ("GITHUB_BASE_REF", "main")],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json = run.json();
    assert_eq!(json["base"]["rev"], "origin/main");
    assert!(
        json["base"]["reason"]
            .as_str()
            .unwrap()
            .contains("GITHUB_BASE_REF")
    );
    assert!(
        run.stderr.contains("GITHUB_BASE_REF"),
        "verbose says why: {}",
        run.stderr
    );
    let sha = git(w.path(), &["rev-parse", "main"]);
    let run = w.run_env(
        &["check", "--offline", "--format", "json"],
        &[("CI", "true"), ("CI_MERGE_REQUEST_DIFF_BASE_SHA", &sha)],
    );
    assert_eq!(run.json()["base"]["rev"].as_str(), Some(sha.as_str()));
    // With no CI variable, the upstream default branch.
    let run = w.run_env(
        &["check", "--offline", "--format", "json"],
        &[("CI", "true")],
    );
    assert_eq!(run.json()["base"]["rev"], "origin/main");
}

#[test]
fn missing_history_is_never_a_silent_pass() {
    let w = repo();
    // No base at all: exit 2 naming the fix.
    let run = w.run(&["check", "--offline", "--base", "origin/main"]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(
        run.stderr.contains("fetch-depth: 0") && run.stderr.contains("GIT_DEPTH: 0"),
        "{}",
        run.stderr
    );
    // Unrelated histories.
    git(w.path(), &["checkout", "-q", "--orphan", "other"]);
    commit(&w, "unrelated");
    let run = w.run(&["check", "--offline", "--base", "main", "--no-worktree"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("unrelated histories"), "{}", run.stderr);
    // Outside a repository.
    let outside = Workdir::new();
    let run = outside.run(&["check", "--offline"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("not inside a git repository"),
        "{}",
        run.stderr
    );
}

/// An origin with main and a feature branch three commits ahead.
fn origin_with_feature() -> Workdir {
    let origin = repo();
    for i in 0..3 {
        w_commit_image(&origin, i);
    }
    git(origin.path(), &["checkout", "-q", "main"]);
    origin.write(
        "later.yaml",
        &deployment("later", &["ghcr.io/acme/later:1"]),
    );
    commit(&origin, "main moves on");
    origin
}

fn w_commit_image(w: &Workdir, i: usize) {
    w.write(
        &format!("f{i}.yaml"),
        &deployment("f", &[&format!("ghcr.io/acme/f:{i}")]),
    );
    commit(w, &format!("feature {i}"));
}

#[test]
fn a_shallow_clone_fetches_what_it_needs_or_exits_2_with_the_fix() {
    let origin = origin_with_feature();
    let url = format!("file://{}", origin.path().display());
    let clone = Workdir::new();
    let dir = clone.path().join("c");
    git(
        clone.path(),
        &[
            "clone", "-q", "--depth", "1", "--branch", "feature", &url, "c",
        ],
    );
    assert_eq!(git(&dir, &["rev-parse", "--is-shallow-repository"]), "true");
    let inside = |args: &[&str]| {
        let mut all = vec![
            "check",
            "--offline",
            "--format",
            "json",
            "--no-worktree",
            "--repo",
            "c",
        ];
        all.extend_from_slice(args);
        clone.run(&all)
    };
    // origin/main is missing and the history too short: imagegate fetches and says so.
    let run = inside(&["--base", "origin/main"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let json = run.json();
    assert!(json["fetched"].as_str().is_some(), "{json}");
    assert!(run.stderr.contains("fetched"), "said so: {}", run.stderr);
    let mut images: Vec<String> = json["references"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["image"].as_str().unwrap().to_string())
        .collect();
    images.sort();
    assert_eq!(
        images,
        ["ghcr.io/acme/f:0", "ghcr.io/acme/f:1", "ghcr.io/acme/f:2"]
    );

    // Without a remote to fetch from: exit 2 with the hint.
    let clone2 = Workdir::new();
    git(
        clone2.path(),
        &[
            "clone", "-q", "--depth", "1", "--branch", "feature", &url, "c",
        ],
    );
    let dir2 = clone2.path().join("c");
    git(&dir2, &["remote", "remove", "origin"]);
    let run = clone2.run(&["check", "--offline", "--no-worktree", "--repo", "c"]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(
        run.stderr.contains("shallow") && run.stderr.contains("fetch-depth: 0"),
        "{}",
        run.stderr
    );
}

#[test]
fn pre_push_hook_blocks_a_missing_tag_and_lets_a_good_one_through() {
    let reg = Registry::anonymous();
    reg.push_image("acme/web", "1.0", DOCKER_MANIFEST);
    reg.push_image("acme/web", "1.1", DOCKER_MANIFEST);
    let h = reg.host.clone();
    let w = Workdir::new();
    git(w.path(), &["init", "-q", "-b", "main"]);
    w.write("a.yaml", &deployment("a", &[&format!("{h}/acme/web:1.0")]));
    commit(&w, "base");
    let bare = tempfile::tempdir().unwrap();
    add_origin(&w, bare.path());

    let run = w.run(&["hook", "install"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let hook = w.path().join(".git/hooks/pre-push");
    assert!(
        std::fs::read_to_string(&hook)
            .unwrap()
            .contains("installed by imagegate")
    );

    let push = |w: &Workdir, args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(w.path())
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("DOCKER_CONFIG", &w.docker_config)
            .env("XDG_CACHE_HOME", w.path().join(".cache"))
            .env("NO_COLOR", "1")
            .env_remove("CI")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).to_string()
                + &String::from_utf8_lossy(&out.stdout),
        )
    };

    // A typo'd tag on a new branch: blocked, and the remote does not get the branch.
    git(w.path(), &["checkout", "-q", "-b", "bump"]);
    w.write(
        "a.yaml",
        &deployment("a", &[&format!("{h}/acme/web:1.1-typo")]),
    );
    commit(&w, "bump with a typo");
    let (ok, output) = push(&w, &["push", "origin", "bump"]);
    assert!(!ok, "the push must be blocked:\n{output}");
    assert!(
        output.contains("not-found") && output.contains("a.yaml:10:16"),
        "{output}"
    );
    assert!(git(bare.path(), &["branch", "--list", "bump"]).is_empty());

    // Fixed: the update goes through.
    w.write("a.yaml", &deployment("a", &[&format!("{h}/acme/web:1.1")]));
    commit(&w, "fix the tag");
    let (ok, output) = push(&w, &["push", "origin", "bump"]);
    assert!(ok, "{output}");
    assert_eq!(
        git(bare.path(), &["rev-parse", "bump"]),
        git(w.path(), &["rev-parse", "HEAD"])
    );

    // An update to an existing branch is checked against the remote's old tip: an
    // unrelated edit elsewhere does not re-check the tag already there.
    w.write("notes.yaml", "just: notes\n");
    commit(&w, "notes");
    let (ok, output) = push(&w, &["push", "origin", "bump"]);
    assert!(ok, "{output}");

    // Deleting a branch is not checked.
    let (ok, output) = push(&w, &["push", "origin", "--delete", "bump"]);
    assert!(ok, "{output}");

    // Uninstall removes it.
    let run = w.run(&["hook", "uninstall"]);
    assert_eq!(run.code, 0);
    assert!(!hook.exists());
}

#[test]
fn hook_install_honours_core_hooks_path() {
    let w = repo();
    git(w.path(), &["config", "core.hooksPath", "githooks"]);
    let run = w.run(&["hook", "install"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(w.path().join("githooks/pre-push").exists());
    std::fs::write(w.path().join("githooks/pre-push"), "#!/bin/sh\nexit 0\n").unwrap();
    let run = w.run(&["hook", "install"]);
    assert_eq!(run.code, 2, "never overwrites a foreign hook");
    assert!(run.stderr.contains("--chain"), "{}", run.stderr);
    let run = w.run(&["hook", "install", "--force"]);
    assert_eq!(run.code, 0);
    assert!(Path::new(&w.path().join("githooks/pre-push")).exists());
}
