//! `imagegate check --all` against a real registry (Debian's docker-registry), anonymous,
//! with htpasswd and with token auth. Regression tests for issue 2 (the core engine).

use crate::harness::*;

/// Requests by method and by path kind, from the registry's own log.
fn count(reqs: &[(String, String)], method: &str, path_part: &str) -> usize {
    reqs.iter()
        .filter(|(m, u)| m == method && u.contains(path_part))
        .count()
}

/// `GET /v2/` pings.
fn pings(reqs: &[(String, String)]) -> usize {
    reqs.iter()
        .filter(|(m, u)| m == "GET" && u == "/v2/")
        .count()
}

#[test]
fn existing_missing_and_digest_references_get_the_right_verdicts() {
    let reg = Registry::anonymous();
    let h = &reg.host;
    let web = reg.push_image("acme/web", "v1.5.0", DOCKER_MANIFEST);
    let missing_digest = sha256(b"nothing was pushed with this content");
    let w = Workdir::new();
    let images = [
        format!("{h}/acme/web:v1.5.0"),
        format!("{h}/acme/web:v1.5.0-typo"),
        format!("{h}/acme/nope:v1"),
        format!("{h}/acme/web@{web}"),
        format!("{h}/acme/web@{missing_digest}"),
    ];
    let refs: Vec<&str> = images.iter().map(String::as_str).collect();
    w.write("deploy/web.yaml", &deployment("web", &refs));

    let run = w.run(&["check", "--all", "--format", "json"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let s = run.statuses();
    assert_eq!(s[&images[0]], "ok");
    assert_eq!(s[&images[1]], "not-found");
    assert_eq!(
        s[&images[2]], "not-found",
        "a missing repository is a 404 too"
    );
    assert_eq!(s[&images[3]], "ok");
    assert_eq!(s[&images[4]], "not-found");
    let json = run.json();
    let first = &json["references"][0];
    assert_eq!(
        first["digest"].as_str(),
        Some(web.as_str()),
        "records Docker-Content-Digest"
    );
    assert_eq!(
        first["canonical"].as_str().unwrap(),
        format!("{h}/acme/web:v1.5.0")
    );
    // The missing tag is the second container: line 12, column of its first character.
    let typo = &json["references"][1];
    assert_eq!(
        (typo["line"].as_u64(), typo["column"].as_u64()),
        (Some(12), Some(16))
    );
    assert_eq!(json["summary"]["not_found"].as_u64(), Some(3));
    assert_eq!(json["summary"]["ok"].as_u64(), Some(2));

    // Never a GET: Docker Hub counts GETs as pulls.
    let reqs = reg.requests();
    assert_eq!(count(&reqs, "GET", "/manifests/"), 0, "{reqs:?}");
    assert_eq!(count(&reqs, "HEAD", "/manifests/"), 5, "{reqs:?}");
    assert_eq!(pings(&reqs), 1, "one ping per host: {reqs:?}");
}

#[test]
fn multi_arch_index_and_oci_manifest_resolve() {
    let reg = Registry::anonymous();
    let h = &reg.host;
    let index = reg.push_index(
        "multi/app",
        "2.0",
        &[("linux", "amd64"), ("linux", "arm64")],
    );
    reg.push_image("oci/app", "1.0", OCI_MANIFEST);
    // The fixture is meaningful: a Docker-only Accept list gets 404 for both.
    assert_eq!(reg.head_status("oci/app", "1.0", DOCKER_MANIFEST), 404);
    assert_eq!(reg.head_status("multi/app", "2.0", DOCKER_MANIFEST), 404);

    let w = Workdir::new();
    let multi = format!("{h}/multi/app:2.0");
    let oci = format!("{h}/oci/app:1.0");
    w.write("a.yaml", &deployment("a", &[&multi, &oci]));
    let run = w.run(&["check", "--all", "--format", "json"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let s = run.statuses();
    assert_eq!(s[&multi], "ok");
    assert_eq!(s[&oci], "ok");
    assert_eq!(
        run.json()["references"][0]["digest"].as_str(),
        Some(index.as_str())
    );
}

#[test]
fn fifty_occurrences_of_one_reference_cost_one_head() {
    let reg = Registry::anonymous();
    reg.push_image("dup/app", "1", DOCKER_MANIFEST);
    let image = format!("{}/dup/app:1", reg.host);
    let w = Workdir::new();
    for i in 0..10 {
        let images = vec![image.as_str(); 5];
        w.write(
            &format!("d{i}.yaml"),
            &deployment(&format!("d{i}"), &images),
        );
    }
    reg.reset_log();
    let run = w.run(&["check", "--all", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["references"].as_array().unwrap().len(), 50);
    assert_eq!(run.json()["summary"]["unique"].as_u64(), Some(1));
    let reqs = reg.requests();
    assert_eq!(count(&reqs, "HEAD", "/manifests/"), 1, "{reqs:?}");
    assert_eq!(pings(&reqs), 1, "{reqs:?}");
    assert_eq!(reqs.len(), 2, "nothing else: {reqs:?}");
}

#[test]
fn tag_that_moved_away_from_its_pinned_digest_is_a_warning() {
    let reg = Registry::anonymous();
    let old = reg.push_image_seeded("pin/app", "v1", DOCKER_MANIFEST, "linux", "amd64", "old");
    let new = reg.push_image_seeded("pin/app", "v1", DOCKER_MANIFEST, "linux", "amd64", "new");
    assert_ne!(old, new);
    let w = Workdir::new();
    let image = format!("{}/pin/app:v1@{old}", reg.host);
    w.write("a.yaml", &deployment("a", &[&image]));
    let run = w.run(&["check", "--all", "--format", "json"]);
    assert_eq!(run.code, 0, "a warning does not fail: {}", run.stdout);
    let r = &run.json()["references"][0];
    assert_eq!(r["status"], "ok");
    assert_eq!(r["code"], "tag-digest-mismatch");
    assert!(r["message"].as_str().unwrap().contains(&new), "{r}");
    assert_eq!(
        r["digest"].as_str(),
        Some(old.as_str()),
        "the digest is what is pulled"
    );
}

#[test]
fn htpasswd_registry_uses_docker_config_and_is_undecided_without_it() {
    let secret = "s3ntinel-Secret-4e7a";
    let reg = Registry::htpasswd("ci", secret);
    reg.push_image("private/app", "1.0", DOCKER_MANIFEST);
    let w = Workdir::new();
    let image = format!("{}/private/app:1.0", reg.host);
    let missing = format!("{}/private/app:9.9", reg.host);
    w.write("a.yaml", &deployment("a", &[&image]));

    // No login: 401 may mean missing or private, so the run is undecided (3) with a hint.
    let run = w.run(&["check", "--all"]);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("not-found-or-denied"), "{}", run.stdout);
    assert!(
        run.stdout.contains(&format!("docker login {}", reg.host)),
        "{}",
        run.stdout
    );

    // With `docker login` (config.json auths), it resolves, and a missing tag is a 404.
    w.docker_login(&reg.host, "ci", secret);
    w.write("a.yaml", &deployment("a", &[&image, &missing]));
    for format in ["human", "json", "github"] {
        for verbosity in ["-q", "-v"] {
            let run = w.run(&["check", "--all", "--format", format, verbosity]);
            assert_eq!(run.code, 1, "{format}: {}\n{}", run.stdout, run.stderr);
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "the secret leaked in {format} {verbosity}"
            );
        }
    }
    let s = w.run(&["check", "--all", "--format", "json"]).statuses();
    assert_eq!(s[&image], "ok");
    assert_eq!(s[&missing], "not-found");
}

#[test]
fn token_auth_shares_one_token_per_repository() {
    let issuer = TokenIssuer::start(&["public/"], &[("dev", "dev-pass")]);
    let reg = Registry::token(issuer.clone());
    reg.push_image("public/web", "1", DOCKER_MANIFEST);
    reg.push_image("public/web", "2", DOCKER_MANIFEST);
    reg.push_image("public/api", "1", DOCKER_MANIFEST);
    reg.push_image("secret/db", "1", DOCKER_MANIFEST);
    let h = &reg.host;
    let w = Workdir::new();
    let public = [
        format!("{h}/public/web:1"),
        format!("{h}/public/web:2"),
        format!("{h}/public/api:1"),
    ];
    let refs: Vec<&str> = public.iter().map(String::as_str).collect();
    w.write("a.yaml", &deployment("a", &refs));
    issuer
        .requests
        .store(0, std::sync::atomic::Ordering::SeqCst);
    reg.reset_log();
    let run = w.run(&["check", "--all", "--format", "json"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        issuer.requests.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one anonymous token for both repositories (issue 7: batched scopes)"
    );
    let mut batch = issuer.scopes.lock().unwrap().last().cloned().unwrap();
    batch.sort();
    assert_eq!(
        batch,
        ["repository:public/api:pull", "repository:public/web:pull"]
    );
    let reqs = reg.requests();
    assert_eq!(pings(&reqs), 1, "{reqs:?}");
    assert_eq!(count(&reqs, "HEAD", "/manifests/"), 3, "{reqs:?}");

    // A token service that grants only the first scope of a batch: the refused HEAD is asked
    // again with the repository's own token, never reported as denied (issue 7).
    issuer
        .first_scope_only
        .store(true, std::sync::atomic::Ordering::SeqCst);
    issuer
        .requests
        .store(0, std::sync::atomic::Ordering::SeqCst);
    let run = w.run(&["check", "--all", "--format", "json", "--no-cache"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        issuer.requests.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "the batch, then one of its own"
    );
    issuer
        .first_scope_only
        .store(false, std::sync::atomic::Ordering::SeqCst);

    // A private repository, anonymously: the token service grants nothing and the
    // registry answers 401, which may mean "missing" as well as "private".
    let private = format!("{h}/secret/db:1");
    w.write("a.yaml", &deployment("a", &[&private]));
    let run = w.run(&["check", "--all", "--format", "json"]);
    assert_eq!(run.code, 3, "{}", run.stdout);
    assert_eq!(run.statuses()[&private], "not-found-or-denied");

    // With credentials the token grants pull and the image resolves.
    w.docker_login(h, "dev", "dev-pass");
    let run = w.run(&["check", "--all", "--format", "json", "--no-cache"]);
    assert_eq!(run.code, 0, "{}", run.stdout);

    // Wrong credentials: the token service refuses; undecided, never a pass.
    w.docker_login(h, "dev", "wrong");
    let run = w.run(&["check", "--all", "--format", "json", "--no-cache"]);
    assert_eq!(run.code, 3, "{}", run.stdout);
    let msg = run.json()["references"][0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.contains("token service"), "{msg}");
}

#[test]
fn human_output_points_at_the_image_with_a_summary() {
    let reg = Registry::anonymous();
    reg.push_image("acme/web", "v1.4.9", DOCKER_MANIFEST);
    let w = Workdir::new();
    let good = format!("{}/acme/web:v1.4.9", reg.host);
    let bad = format!("{}/acme/web:v1.5.0-typo", reg.host);
    w.write("apps/web.yaml", &deployment("web", &[&good, &bad]));
    let run = w.run(&["check", "--all"]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("apps/web.yaml:12:16"), "{}", run.stdout);
    assert!(run.stdout.contains("not-found"), "{}", run.stdout);
    assert!(
        run.stdout.contains("checked 2 references (2 unique) in 1 registry from 1 file: 1 ok, 1 not found, 0 undecided"),
        "{}",
        run.stdout
    );
    let gh = w.run(&["check", "--all", "--format", "github"]);
    let line = gh.stdout.lines().next().unwrap();
    assert!(
        line.starts_with("::error file=apps/web.yaml,line=12,col=16,endColumn="),
        "{line}"
    );
    assert!(line.contains("title=imagegate not-found::"), "{line}");
}
