//! Verdicts that point at the fix: did-you-mean tags, the last good value at the merge base,
//! and `imagegate inspect`, against the real registry (issue 8).

use crate::harness::*;

fn count(reqs: &[(String, String)], method: &str, part: &str) -> usize {
    reqs.iter()
        .filter(|(m, u)| m == method && u.contains(part))
        .count()
}

#[test]
fn a_typo_gets_the_nearest_existing_tags() {
    let reg = Registry::anonymous();
    for tag in ["v1.3.0", "v1.4.9", "v1.5.0", "v2.0.0", "latest"] {
        reg.push_image("acme/web", tag, DOCKER_MANIFEST);
    }
    let h = &reg.host;
    let typo = format!("{h}/acme/web:v1.5.0-typo");
    let typo2 = format!("{h}/acme/web:v1.4.8");
    let no_repo = format!("{h}/acme/wbe:v1.5.0");
    let w = Workdir::new();
    w.write("a.yaml", &deployment("a", &[&typo, &typo2, &no_repo]));
    reg.reset_log();
    let run = w.run(&["check", "--all", "--format", "json"]);
    assert_eq!(run.code, 1);
    let json = run.json();
    let first = &json["references"][0];
    assert_eq!(
        first["suggestions"],
        serde_json::json!(["v1.5.0", "v1.4.9", "v1.3.0"])
    );
    let msg = first["message"].as_str().unwrap();
    assert!(
        msg.contains(&format!(
            "`v1.5.0-typo` not found in {h}/acme/web; existing tags nearby: `v1.5.0`, `v1.4.9`"
        )),
        "{msg}"
    );
    assert_eq!(json["references"][1]["suggestions"][0], "v1.4.9");
    let missing_repo = json["references"][2]["message"].as_str().unwrap();
    assert!(
        missing_repo.contains("repository") && missing_repo.contains("does not exist"),
        "{missing_repo}"
    );
    // Listed once per repository, only for failures; still never a manifest GET.
    let reqs = reg.requests();
    assert_eq!(count(&reqs, "GET", "/acme/web/tags/list"), 1, "{reqs:?}");
    assert_eq!(count(&reqs, "GET", "/manifests/"), 0);

    // The suggestion reaches the GitHub annotation and the human hint.
    let gh = w.run(&["check", "--all", "--format", "github"]);
    assert!(
        gh.stdout.contains("existing tags nearby: `v1.5.0`"),
        "{}",
        gh.stdout
    );
    let human = w.run(&["check", "--all"]);
    assert!(
        human
            .stdout
            .contains(&format!("did you mean {h}/acme/web:v1.5.0?")),
        "{}",
        human.stdout
    );

    // --no-suggest: no tag list at all.
    reg.reset_log();
    let run = w.run(&["check", "--all", "--format", "json", "--no-suggest"]);
    assert!(run.json()["references"][0]["suggestions"].is_null());
    assert_eq!(count(&reg.requests(), "GET", "/tags/list"), 0);
}

#[test]
fn a_repository_with_hundreds_of_tags() {
    let reg = Registry::anonymous();
    let digest = reg.push_image("many/tags", "a000", DOCKER_MANIFEST);
    let body = {
        // The same manifest under 250 more tags: more than one page of 200 that imagegate
        // asks for. Distribution 2.8 answers them all at once (it ignores `n`); the Link
        // pagination of newer registries is covered with a scripted server in faults.rs.
        let r = reqwest::blocking::Client::new()
            .get(format!(
                "http://{}/v2/many/tags/manifests/{digest}",
                reg.host
            ))
            .header("Accept", DOCKER_MANIFEST)
            .send()
            .unwrap();
        r.text().unwrap()
    };
    for i in 1..250 {
        reg.push_manifest("many/tags", &format!("a{i:03}"), DOCKER_MANIFEST, &body);
    }
    reg.push_manifest("many/tags", "zeta", DOCKER_MANIFEST, &body);
    let w = Workdir::new();
    let image = format!("{}/many/tags:zetaa", reg.host);
    w.write("a.yaml", &deployment("a", &[&image]));
    reg.reset_log();
    let run = w.run(&["check", "--all", "--format", "json"]);
    assert_eq!(
        run.json()["references"][0]["suggestions"],
        serde_json::json!(["zeta"])
    );
    assert_eq!(count(&reg.requests(), "GET", "/tags/list"), 1);
}

#[test]
fn the_last_good_value_at_the_merge_base() {
    let reg = Registry::anonymous();
    reg.push_image("acme/web", "1.0", DOCKER_MANIFEST);
    let h = reg.host.clone();
    let w = Workdir::new();
    git(w.path(), &["init", "-q", "-b", "main"]);
    w.write(
        "good.yaml",
        &deployment("good", &[&format!("{h}/acme/web:1.0")]),
    );
    w.write(
        "bad.yaml",
        &deployment("bad", &[&format!("{h}/acme/web:0.9")]),
    );
    git(w.path(), &["add", "-A"]);
    git(w.path(), &["commit", "-q", "-m", "base"]);
    git(w.path(), &["checkout", "-q", "-b", "bump"]);
    w.write(
        "good.yaml",
        &deployment("good", &[&format!("{h}/acme/web:1.1-typo")]),
    );
    w.write(
        "bad.yaml",
        &deployment("bad", &[&format!("{h}/acme/web:0.9.1")]),
    );
    git(w.path(), &["commit", "-q", "-am", "bump"]);

    let run = w.run(&[
        "check",
        "--base",
        "main",
        "--format",
        "json",
        "--no-worktree",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let json = run.json();
    let by_file = |f: &str| {
        json["references"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["file"] == f)
            .unwrap()
            .clone()
    };
    let good = by_file("good.yaml");
    assert_eq!(
        good["previous"]["image"].as_str().unwrap(),
        format!("{h}/acme/web:1.0")
    );
    assert_eq!(good["previous"]["status"], "ok");
    let hint = good["hint"].as_str().unwrap();
    assert!(
        hint.contains(&format!(
            "was `{h}/acme/web:1.0` at the merge base (exists): to roll back, restore that value"
        )),
        "{hint}"
    );
    let bad = by_file("bad.yaml");
    assert_eq!(bad["previous"]["status"], "not-found");
    assert!(
        bad["hint"]
            .as_str()
            .unwrap()
            .contains("(does not exist either)"),
        "{bad}"
    );
}

#[test]
fn inspect_single_platform_multi_arch_and_missing() {
    let reg = Registry::anonymous();
    let single = reg.push_image("acme/one", "1.0", DOCKER_MANIFEST);
    let index = reg.push_index(
        "acme/multi",
        "2.0",
        &[("linux", "amd64"), ("linux", "arm64")],
    );
    let h = &reg.host;
    let w = Workdir::new();

    let run = w.run(&["inspect", &format!("{h}/acme/one:1.0")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for want in [
        format!("canonical   {h}/acme/one:1.0"),
        format!("endpoint    http://{h}"),
        "credentials anonymous".to_string(),
        format!("digest      {single}"),
        "media type  application/vnd.docker.distribution.manifest.v2+json".to_string(),
    ] {
        assert!(run.stdout.contains(&want), "{want}\n{}", run.stdout);
    }
    assert!(run.stdout.contains("size"), "{}", run.stdout);

    let run = w.run(&[
        "inspect",
        "--format",
        "json",
        &format!("{h}/acme/multi:2.0"),
    ]);
    assert_eq!(run.code, 0);
    let img = &run.json()["images"][0];
    assert_eq!(img["digest"].as_str(), Some(index.as_str()));
    assert_eq!(img["media_type"], OCI_INDEX);
    assert_eq!(
        img["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64"])
    );

    let run = w.run(&["inspect", "--format", "json", &format!("{h}/acme/one:1.1")]);
    assert_eq!(run.code, 1);
    let img = &run.json()["images"][0];
    assert_eq!(img["status"], "not-found");
    assert_eq!(img["suggestions"], serde_json::json!(["1.0"]));

    let run = w.run(&["inspect", "Bad/Upper"]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("must be lowercase"), "{}", run.stdout);
}
