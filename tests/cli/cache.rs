//! The local result cache (issue 7): the second pre-push run on an unchanged push makes no
//! request; failures are never cached; tags expire and digests do not; `--no-cache` and
//! CI turn it off.

use crate::harness::*;

fn requests(reg: &Registry) -> usize {
    reg.requests().len()
}

#[test]
fn the_second_pre_push_run_makes_no_request() {
    let reg = Registry::anonymous();
    let digest = reg.push_image("acme/web", "1.0", OCI_MANIFEST);
    let h = &reg.host;
    let w = Workdir::new();
    git(w.path(), &["init", "-q", "-b", "main"]);
    w.write("base.yaml", "kind: ConfigMap\n");
    git(w.path(), &["add", "-A"]);
    git(w.path(), &["commit", "-qm", "base"]);
    let bare = tempfile::tempdir().unwrap();
    add_origin(&w, bare.path());
    git(w.path(), &["checkout", "-q", "-b", "bump"]);
    let tagged = format!("{h}/acme/web:1.0");
    let pinned = format!("{h}/acme/web@{digest}");
    w.write("a.yaml", &deployment("a", &[&tagged, &pinned]));
    git(w.path(), &["add", "-A"]);
    git(w.path(), &["commit", "-qm", "bump"]);
    let head = git(w.path(), &["rev-parse", "HEAD"]);
    let zero = "0".repeat(40);
    let line = format!("refs/heads/bump {head} refs/heads/bump {zero}\n");
    let pre_push = |w: &Workdir| {
        w.run_stdin(
            &["pre-push", "origin", bare.path().to_str().unwrap()],
            &line,
        )
    };

    reg.reset_log();
    let first = pre_push(&w);
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    assert!(requests(&reg) >= 2, "the first run asks the registry");
    reg.reset_log();
    let second = pre_push(&w);
    assert_eq!(second.code, 0, "{}\n{}", second.stdout, second.stderr);
    assert_eq!(
        requests(&reg),
        0,
        "the second run is answered from the cache"
    );
    assert!(w.path().join(".cache/imagegate/results-v2.json").is_file());

    // With --no-cache, or in CI, the registry is asked again.
    reg.reset_log();
    let run = w.run(&["check", "--all", "--no-cache"]);
    assert_eq!(run.code, 0);
    assert!(requests(&reg) >= 2);
    reg.reset_log();
    let run = w.run_env(&["check", "--all"], &[("CI", "true")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(requests(&reg) >= 2, "CI does not read the cache by default");
}

#[test]
fn failures_are_never_cached_and_tags_expire() {
    let reg = Registry::anonymous();
    let digest = reg.push_image("acme/web", "1.0", OCI_MANIFEST);
    let h = &reg.host;
    let w = Workdir::new();
    let missing = format!("{h}/acme/web:9.9");
    w.write(
        "a.yaml",
        &deployment(
            "a",
            &[
                &format!("{h}/acme/web:1.0"),
                &format!("{h}/acme/web@{digest}"),
            ],
        ),
    );
    w.write("b.yaml", &deployment("b", &[&missing]));
    assert_eq!(w.run(&["check", "--all", "--no-suggest"]).code, 1);
    reg.reset_log();
    let run = w.run(&["check", "--all", "--no-suggest", "--format", "json"]);
    assert_eq!(run.code, 1);
    let heads: Vec<_> = reg
        .requests()
        .into_iter()
        .filter(|(m, _)| m == "HEAD")
        .collect();
    assert_eq!(
        heads.len(),
        1,
        "only the missing tag is asked again: {heads:?}"
    );
    assert!(heads[0].1.ends_with("/manifests/9.9"));

    // A tag time to live of 0 s: the tag is asked again, the digest is not.
    w.write(".imagegate.yaml", "cache:\n  tag-ttl: 0\n");
    std::fs::remove_file(w.path().join("b.yaml")).unwrap();
    reg.reset_log();
    assert_eq!(w.run(&["check", "--all"]).code, 0);
    let heads: Vec<_> = reg
        .requests()
        .into_iter()
        .filter(|(m, _)| m == "HEAD")
        .collect();
    assert_eq!(heads.len(), 1, "{heads:?}");
    assert!(heads[0].1.ends_with("/manifests/1.0"));
}
