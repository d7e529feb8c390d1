//! The team's rules and routes, against the real registry: the platform policy (a GET of
//! the index, only for references that exist), deny-latest, require-digest and
//! allowed-registries, skip globs, `# imagegate: ignore`, config errors with positions,
//! mirrors (one down, passing to the next) and rewrites. Issue 6. Upstream names use the
//! `.invalid` top-level domain, which never resolves, so nothing leaves loopback.

use crate::harness::*;

fn check(w: &Workdir, extra: &[&str]) -> Run {
    let mut args = vec!["check", "--all", "--format", "json", "--no-cache"];
    args.extend_from_slice(extra);
    w.run(&args)
}

fn codes(run: &Run) -> std::collections::HashMap<String, String> {
    run.by_image("code")
}

#[test]
fn a_multi_arch_index_missing_arm64_fails_the_platform_policy() {
    let reg = Registry::anonymous();
    let h = &reg.host;
    reg.push_index("team/both", "1", &[("linux", "amd64"), ("linux", "arm64")]);
    reg.push_index("team/amd-only", "1", &[("linux", "amd64")]);
    reg.push_image_seeded("team/single", "1", OCI_MANIFEST, "linux", "amd64", "s");
    let w = Workdir::new();
    let images = [
        format!("{h}/team/both:1"),
        format!("{h}/team/amd-only:1"),
        format!("{h}/team/single:1"),
        format!("{h}/team/missing:1"),
    ];
    let refs: Vec<&str> = images.iter().map(String::as_str).collect();
    w.write("d.yaml", &deployment("d", &refs));
    w.write(
        ".imagegate.yaml",
        "policy:\n  platforms: [linux/amd64, linux/arm64]\n",
    );
    reg.reset_log();
    let run = check(&w, &[]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let c = codes(&run);
    assert_eq!(c[&images[0]], "", "both platforms: no finding");
    assert_eq!(c[&images[1]], "policy-platform");
    assert_eq!(c[&images[2]], "policy-platform");
    assert_eq!(c[&images[3]], "not-found");
    assert!(
        run.stdout
            .contains("has no image for linux/arm64 (it has linux/amd64)"),
        "{}",
        run.stdout
    );
    // GETs only for what exists: three manifests and the single image's config blob.
    let reqs = reg.requests();
    let gets: Vec<_> = reqs
        .iter()
        .filter(|(m, u)| m == "GET" && u != "/v2/" && !u.contains("/tags/"))
        .collect();
    assert_eq!(gets.len(), 4, "{gets:?}");
    assert!(!gets.iter().any(|(_, u)| u.contains("missing")));
}

#[test]
fn latest_digest_and_registry_policies_work_offline_and_from_flags() {
    let w = Workdir::new();
    let d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let pinned = format!("ghcr.io/acme/api:1@{d}");
    w.write(
        "d.yaml",
        &deployment(
            "d",
            &["nginx", "nginx:latest", "ghcr.io/acme/web:2", &pinned],
        ),
    );
    let run = check(&w, &["--offline", "--deny-latest"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let c = codes(&run);
    assert_eq!(c["nginx"], "policy-latest");
    assert_eq!(c["nginx:latest"], "policy-latest");
    assert_eq!(c["ghcr.io/acme/web:2"], "");
    assert_eq!(c[&pinned], "");

    let run = check(&w, &["--offline", "--require-digest"]);
    let c = codes(&run);
    assert_eq!(c["ghcr.io/acme/web:2"], "policy-digest");
    assert_eq!(c[&pinned], "");

    w.write(
        ".imagegate.yaml",
        "policy:\n  allowed-registries: ['ghcr.io/acme/**']\n",
    );
    let run = check(&w, &["--offline"]);
    assert_eq!(run.code, 1);
    let c = codes(&run);
    assert_eq!(c["nginx"], "policy-registry");
    assert_eq!(c["ghcr.io/acme/web:2"], "");
    // Without any policy, the same file passes offline.
    std::fs::remove_file(w.path().join(".imagegate.yaml")).unwrap();
    assert_eq!(check(&w, &["--offline"]).code, 0);
}

#[test]
fn skip_globs_and_ignore_comments_take_references_out_and_say_so() {
    let reg = Registry::anonymous();
    let h = &reg.host;
    reg.push_image("team/app", "1", OCI_MANIFEST);
    let w = Workdir::new();
    w.write(
        "d.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: a\n    image: {h}/team/app:1\n  - name: b\n    # imagegate: ignore (built by the release job)\n    image: {h}/team/app:not-yet\n  - name: c\n    image: {h}/team/app:also-not-yet  # imagegate: ignore\n  - name: d\n    image: registry.internal.invalid/secret/app:1\n"
        ),
    );
    w.write(".imagegate.yaml", "skip: [registry.internal.invalid]\n");
    reg.reset_log();
    let run = w.run(&["check", "--all", "--format", "json", "--no-cache", "-v"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let s = run.statuses();
    assert_eq!(s[&format!("{h}/team/app:1")], "ok");
    assert_eq!(s[&format!("{h}/team/app:not-yet")], "skipped");
    assert_eq!(s["registry.internal.invalid/secret/app:1"], "skipped");
    assert!(
        run.stderr
            .contains("d.yaml:11:12: not checked (`# imagegate: ignore` comment)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("d.yaml:15:12: not checked (a `skip` glob)")
    );
    let heads = reg.requests().iter().filter(|(m, _)| m == "HEAD").count();
    assert_eq!(heads, 1, "skipped references cost no request");
    // Without the config the skipped host would be asked, and fail.
    let run = check(&w, &["--skip", "nothing.invalid"]);
    assert_eq!(run.code, 0, "the flag joins the config's list");
}

#[test]
fn config_errors_point_at_the_line_and_column_and_exit_2() {
    let w = Workdir::new();
    w.write("d.yaml", &deployment("d", &["nginx:1"]));
    w.write(
        ".imagegate.yaml",
        "policy:\n  deny-latest: true\nregistries:\n  ghcr.io:\n    mirors: [m.lan]\n",
    );
    let run = check(&w, &["--offline"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains(".imagegate.yaml:5:5: unknown key `mirors`; did you mean `mirrors`?"),
        "{}",
        run.stderr
    );
    w.write(".imagegate.yaml", "cache:\n  tag-ttl: soon\n");
    let run = check(&w, &["--offline"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains(".imagegate.yaml:2:12: `cache.tag-ttl`"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_mirror_that_is_down_passes_to_the_next_then_to_the_registry() {
    let upstream = Registry::anonymous();
    let cache = Registry::anonymous();
    upstream.push_image("team/only-upstream", "1", OCI_MANIFEST);
    cache.push_image("hub/team/cached", "1", OCI_MANIFEST);
    let down = format!("127.0.0.1:{}", free_port());
    let w = Workdir::new();
    let u = &upstream.host;
    let images = [
        format!("{u}/team/cached:1"),
        format!("{u}/team/only-upstream:1"),
        format!("{u}/team/nowhere:1"),
    ];
    let refs: Vec<&str> = images.iter().map(String::as_str).collect();
    w.write("d.yaml", &deployment("d", &refs));
    let run = check(
        &w,
        &[
            "--mirror",
            &format!("{u}={down}"),
            "--mirror",
            &format!("{u}={}/hub", cache.host),
            "--timeout",
            "2",
        ],
    );
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let json = run.json();
    let by_image = |i: &str| {
        json["references"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["image"] == i)
            .unwrap()
            .clone()
    };
    let cached = by_image(&images[0]);
    assert_eq!(cached["status"], "ok");
    assert_eq!(
        cached["via"],
        cache.host.as_str(),
        "the verdict names the mirror"
    );
    let direct = by_image(&images[1]);
    assert_eq!(direct["status"], "ok");
    assert!(direct.get("via").is_none());
    assert_eq!(by_image(&images[2])["status"], "not-found");
}

#[test]
fn a_rewrite_asks_only_the_pull_through_cache() {
    let cache = Registry::anonymous();
    cache.push_image("docker-hub/library/nginx", "1.27", OCI_MANIFEST);
    let w = Workdir::new();
    w.write(
        "d.yaml",
        &deployment(
            "d",
            &[
                "upstream.invalid/library/nginx:1.27",
                "upstream.invalid/library/nginx:0.0-typo",
            ],
        ),
    );
    w.write(
        ".imagegate.yaml",
        &format!(
            "registries:\n  upstream.invalid:\n    rewrite: {}/docker-hub\n",
            cache.host
        ),
    );
    let run = check(&w, &[]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let s = run.statuses();
    assert_eq!(s["upstream.invalid/library/nginx:1.27"], "ok");
    assert_eq!(
        s["upstream.invalid/library/nginx:0.0-typo"], "not-found",
        "no fallback to the unreachable upstream"
    );
    assert!(run.stdout.contains(&format!("\"via\": \"{}\"", cache.host)));

    // The same with the flag, rewriting a prefix only.
    std::fs::remove_file(w.path().join(".imagegate.yaml")).unwrap();
    let run = check(
        &w,
        &[
            "--rewrite",
            &format!("upstream.invalid/library={}/docker-hub/library", cache.host),
        ],
    );
    assert_eq!(run.statuses()["upstream.invalid/library/nginx:1.27"], "ok");
}

/// `file:line image status` for every reference, sorted.
fn refs(run: &Run) -> Vec<String> {
    run.rows(|r| {
        Some(format!(
            "{}:{} {} {}",
            r["file"].as_str().unwrap(),
            r["line"],
            r["image"].as_str().unwrap(),
            r["status"].as_str().unwrap()
        ))
    })
}

#[test]
fn flux_variables_files_resolve_what_no_kustomization_defines() {
    let reg = Registry::anonymous();
    let h = &reg.host;
    reg.push_image("acme/web", "1.2", OCI_MANIFEST);
    let w = Workdir::new();
    w.write(".imagegate.yaml", "variables: [clusters/vars.yaml]\n");
    // A ConfigMap as substituteFrom reads it, and a Secret (WEB_TAG there comes second, so
    // the ConfigMap's wins).
    w.write(
        "clusters/vars.yaml",
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cluster-vars}}\ndata:\n  REGISTRY: {h}\n  WEB_TAG: \"1.2\"\n  GONE_TAG: \"9.9\"\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: more}}\ndata:\n  WEB_TAG: MC4w\n"
        ),
    );
    w.write(
        "apps/d.yaml",
        &deployment(
            "d",
            &[
                "${REGISTRY}/acme/web:${WEB_TAG}",
                "${REGISTRY}/acme/web:${GONE_TAG}",
                "${REGISTRY}/acme/web:${UNDEFINED}",
            ],
        ),
    );
    // A Flux Kustomization's own postBuild wins over the files.
    w.write(
        "clusters/apps.yaml",
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: edge}\nspec:\n  path: ./edge\n  postBuild:\n    substitute:\n      WEB_TAG: \"0.1\"\n",
    );
    w.write(
        "edge/e.yaml",
        &deployment("e", &["${REGISTRY}/acme/web:${WEB_TAG}"]),
    );
    let run = check(&w, &[]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        refs(&run),
        [
            format!("apps/d.yaml:10 {h}/acme/web:1.2 ok"),
            format!("apps/d.yaml:12 {h}/acme/web:9.9 not-found"),
            "apps/d.yaml:14 ${REGISTRY}/acme/web:${UNDEFINED} unresolved-variable".to_string(),
            format!("edge/e.yaml:10 {h}/acme/web:0.1 not-found"),
        ]
    );
    let contexts = run.by_image("context");
    assert!(
        contexts[&format!("{h}/acme/web:1.2")].ends_with("(variables from clusters/vars.yaml)"),
        "the verdict names where the value came from: {contexts:?}"
    );

    // A broken variables file is the tool's error, with the file and position.
    w.write(
        "clusters/vars.yaml",
        "apiVersion: v1\nkind: ConfigMap\ndata:\n  TAG: [1]\n",
    );
    let bad = check(&w, &["--offline"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("clusters/vars.yaml:4:8"),
        "{}",
        bad.stderr
    );
    std::fs::remove_file(w.path().join("clusters/vars.yaml")).unwrap();
    let missing = check(&w, &["--offline"]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("variables file") && missing.stderr.contains("clusters/vars.yaml"),
        "{}",
        missing.stderr
    );
}
