//! TLS against the real registry serving HTTPS with a CA and certificates generated in the
//! test (rcgen): CA files from the config, `--ca-file` and `SSL_CERT_FILE`, mutual TLS from
//! a `certs.d` directory, insecure hosts, and a certificate for the wrong name. Issue 6
//! (TLS) and issue 7 (a TLS name mismatch never passes).

use crate::harness::*;

/// A TLS registry with htpasswd, one image pushed, and a workdir referencing it and a
/// missing tag.
fn setup(pki: &Pki, client_auth: bool) -> (Registry, Workdir, [String; 2]) {
    let reg = Registry::start_with(
        Auth::Htpasswd {
            user: "ci".into(),
            password: "tls-pass".into(),
        },
        Some(Tls { pki, client_auth }),
    );
    reg.push_image("team/api", "1.0", OCI_MANIFEST);
    let (w, images) = app_workdir(&reg.host, "team/api", ["1.0", "1.1"]);
    w.docker_login(&reg.host, "ci", "tls-pass");
    (reg, w, images)
}

/// A TLS registry for a certificate of `names`, checked by a workdir whose user's config
/// trusts its CA.
fn checked_trusting_the_ca(names: &[&str]) -> (Registry, Run, [String; 2]) {
    let pki = Pki::new(names);
    let (reg, w, images) = setup(&pki, false);
    trust_in_config(&w, &reg, &pki);
    let run = w.run(&CHECK_JSON);
    (reg, run, images)
}

/// Names the test CA as the registry's `ca-file` in the user's own config
/// (`~/.config/imagegate/config.yaml`; the workdir is `HOME`): a trusted source, since a
/// repository config may not choose the CA of a host it sends credentials to (issue 13).
fn trust_in_config(w: &Workdir, reg: &Registry, pki: &Pki) {
    w.write(
        ".config/imagegate/config.yaml",
        &format!(
            "registries:\n  '{}':\n    ca-file: {}\n",
            reg.host,
            pki.ca.display()
        ),
    );
}

#[test]
fn a_tls_registry_with_htpasswd_is_checked_with_the_configured_ca() {
    let (reg, run, images) = checked_trusting_the_ca(&["127.0.0.1"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let s = run.statuses();
    assert_eq!(s[&images[0]], "ok");
    assert_eq!(s[&images[1]], "not-found");
    // The registry really saw HTTPS requests with credentials.
    assert!(
        reg.requests()
            .iter()
            .any(|(m, u)| m == "HEAD" && u == "/v2/team/api/manifests/1.0")
    );
}

#[test]
fn ca_file_flag_and_ssl_cert_file_are_trusted_and_nothing_else_is() {
    let pki = Pki::new(&["127.0.0.1"]);
    let (reg, w, images) = setup(&pki, false);
    // Loopback speaks plain HTTP unless told otherwise: `insecure: false` asks for
    // verified HTTPS.
    w.write(
        ".imagegate.yaml",
        &format!("registries:\n  '{}':\n    insecure: false\n", reg.host),
    );
    let ca = pki.ca.to_str().unwrap();
    let run = w.run(&check_json_with(&["--ca-file", ca]));
    assert_eq!(run.statuses()[&images[0]], "ok", "{}", run.stderr);

    let run = w.run_env(&CHECK_JSON, &[("SSL_CERT_FILE", ca)]);
    assert_eq!(run.statuses()[&images[0]], "ok", "{}", run.stderr);

    // Without the CA the certificate is not trusted: undecided, never a pass.
    let run = w.run(&CHECK_JSON);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.statuses()[&images[0]], "unreachable");
    assert!(
        run.stdout.contains("certificate") || run.stdout.contains("Certificate"),
        "the message says it is about the certificate: {}",
        run.stdout
    );
}

/// Issue 7: a TLS name mismatch.
#[test]
fn a_certificate_for_another_name_is_unreachable_not_ok() {
    let (_reg, run, images) = checked_trusting_the_ca(&["registry.other.example"]);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    for image in &images {
        assert_eq!(run.statuses()[image], "unreachable");
    }
    assert!(
        run.stdout.contains("not valid for name"),
        "the message names the mismatch: {}",
        run.stdout
    );
}

#[test]
fn mutual_tls_reads_the_certs_d_directory() {
    let pki = Pki::new(&["127.0.0.1"]);
    let (reg, w, images) = setup(&pki, true);
    // podman's per-user certs.d: CA as *.crt, client pair as *.cert and *.key.
    let dir = w.path().join(".config/containers/certs.d").join(&reg.host);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&pki.ca, dir.join("ca.crt")).unwrap();
    let run_without_client = w.run(&CHECK_JSON);
    assert_eq!(
        run_without_client.code, 3,
        "the registry demands a client certificate: {}",
        run_without_client.stdout
    );
    std::fs::copy(&pki.client_cert, dir.join("client.cert")).unwrap();
    std::fs::copy(&pki.client_key, dir.join("client.key")).unwrap();
    let run = w.run(&CHECK_JSON);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.statuses()[&images[0]], "ok");
    assert_eq!(run.statuses()[&images[1]], "not-found");
}

#[test]
fn an_insecure_registry_is_warned_about_and_falls_back_to_plain_http() {
    // TLS with a CA imagegate is not given: only --insecure-registry gets through.
    let pki = Pki::new(&["127.0.0.1"]);
    let (reg, w, images) = setup(&pki, false);
    let run = w.run(&check_json_with(&["--insecure-registry", &reg.host]));
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.statuses()[&images[0]], "ok");
    assert!(
        run.stderr.contains("warning") && run.stderr.contains("not verified"),
        "{}",
        run.stderr
    );

    // A plain-HTTP registry named insecure in the config: HTTPS fails, HTTP answers.
    let plain = Registry::anonymous();
    plain.push_image("team/web", "2", OCI_MANIFEST);
    let w = Workdir::new();
    let image = format!("{}/team/web:2", plain.host);
    w.write("deploy.yaml", &deployment("web", &[image.as_str()]));
    w.write(
        ".imagegate.yaml",
        &format!("registries:\n  '{}':\n    insecure: true\n", plain.host),
    );
    let run = w.run(&CHECK_JSON);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.statuses()[&image], "ok");
}

/// containerd's `hosts.toml`, read as containerd reads it: `server` (the host the registry
/// really is, over TLS with a `ca` named relative to the file) and a plain-HTTP mirror
/// whose API root is its path (`override_path`). A mirror's 404 passes to the server;
/// `via` names the answering host; the platform policy and `inspect` fetch the index from
/// the host that answered, never from the name in the manifest (issue 6).
#[test]
fn hosts_toml_server_ca_and_override_path_are_followed() {
    let pki = Pki::new(&["127.0.0.1"]);
    let server = Registry::start_with(
        Auth::Anonymous,
        Some(Tls {
            pki: &pki,
            client_auth: false,
        }),
    );
    server.push_index("team/multi", "1", &[("linux", "amd64"), ("linux", "arm64")]);
    let mirror = Registry::anonymous();
    mirror.push_image("hub/team/other", "1", OCI_MANIFEST);
    let w = Workdir::new();
    let dir = w.path().join(".config/containers/certs.d/upstream.invalid");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&pki.ca, dir.join("ca.pem")).unwrap();
    std::fs::write(
        dir.join("hosts.toml"),
        format!(
            "server = \"https://{}\"\nca = \"ca.pem\"\n\n[host.\"http://{}/v2/hub\"]\n  capabilities = [\"pull\", \"resolve\"]\n  override_path = true\n",
            server.host, mirror.host
        ),
    )
    .unwrap();
    w.write(
        "d.yaml",
        &deployment(
            "d",
            &[
                "upstream.invalid/team/multi:1",
                "upstream.invalid/team/multi:2",
                "upstream.invalid/team/other:1",
            ],
        ),
    );
    w.write(".imagegate.yaml", "policy:\n  platforms: [linux/arm64]\n");
    let run = w.run(&CHECK_JSON);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let s = run.statuses();
    assert_eq!(s["upstream.invalid/team/multi:1"], "ok", "{}", run.stdout);
    assert_eq!(s["upstream.invalid/team/multi:2"], "not-found");
    assert_eq!(s["upstream.invalid/team/other:1"], "ok");
    // One ping per host that answers, none to the name in the manifest (not even for the
    // missing tag's suggestions, which the server lists).
    assert_eq!(
        run.json()["summary"]["requests"]["pings"],
        2,
        "{}",
        run.stdout
    );
    let via = run.by_image("via");
    assert_eq!(via["upstream.invalid/team/multi:1"], server.host);
    assert_eq!(via["upstream.invalid/team/other:1"], mirror.host);
    assert!(
        mirror
            .requests()
            .iter()
            .any(|(m, u)| m == "HEAD" && u == "/v2/hub/team/multi/manifests/1"),
        "the mirror was asked first, under its API root"
    );
    // The platform policy's GET went to the server, which has the index.
    assert!(
        server
            .requests()
            .iter()
            .any(|(m, u)| m == "GET" && u == "/v2/team/multi/manifests/1"),
        "{:?}",
        server.requests()
    );
    // The index has both platforms; the mirror's single image (read from the mirror) has
    // no arm64.
    let codes = run.by_image("code");
    assert_eq!(codes["upstream.invalid/team/multi:1"], "", "{}", run.stdout);
    assert_eq!(codes["upstream.invalid/team/other:1"], "policy-platform");

    let inspect = w.run(&[
        "inspect",
        "--format",
        "json",
        "upstream.invalid/team/multi:1",
    ]);
    assert_eq!(inspect.code, 0, "{}\n{}", inspect.stdout, inspect.stderr);
    let img = &inspect.json()["images"][0];
    assert_eq!(
        img["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64"]),
        "{}",
        inspect.stdout
    );
}
