//! `--render`'s egress (issue 15): kustomize fetches remote resources and bases itself, so
//! what it fetches goes through imagegate's proxy under the destination rules imagegate's
//! own requests obey, and git may speak only HTTP(S), with an empty private home: no ssh,
//! no user config, no agent. The real kubectl (kustomize v5.8.1) runs; the server holding a
//! remote resource is scripted because no registry is involved in serving YAML.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

use crate::harness::*;
use crate::render::{assert_rendered, executable, none_reached, offline_render, recording_wrapper};

/// A plain HTTP server on `addr` serving `body` at every path, recording the paths asked.
fn yaml_server(addr: &str, body: String) -> (u16, Arc<Mutex<Vec<String>>>) {
    let asked = Arc::new(Mutex::new(Vec::new()));
    let log = asked.clone();
    let port = crate::loopback_http::serve(addr, move |request| {
        log.lock().unwrap().push(request.target);
        crate::loopback_http::Reply::new(200, body.clone())
    })
    .detach();
    (port, asked)
}

/// The `-v`/warning lines of imagegate's proxy.
fn proxy_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains("--render: refused") || l.contains("through imagegate's proxy"))
        .collect()
}

/// Issue 15: a remote resource is fetched through imagegate's proxy and its image checked
/// against the registry; with `--deny-destination` covering the server's address, the proxy
/// refuses it, the server sees no request, and the render is exit 2 naming the host.
///
/// The resource is `http://127.0.2:PORT/`: Go (kubectl) connects to loopback addresses
/// directly whatever the proxy variables say, and does not take `127.0.2` for an address,
/// while the proxy's system resolver reads it as 127.0.0.2. So kubectl reaches the server
/// only through the proxy (the oracle below shows it cannot on its own), and the rule is
/// applied to the address the name resolves to, as for imagegate's own requests.
#[test]
fn a_remote_resource_goes_through_the_proxy_and_its_rules() {
    let reg = Registry::anonymous();
    let h = &reg.host;
    let (port, asked) = yaml_server(
        "127.0.0.2:0",
        deployment("remote", &[&format!("{h}/acme/web:remote")]),
    );
    let url = format!("http://127.0.2:{port}/deploy.yaml?token=s3cret");
    let w = Workdir::new();
    w.write(
        "app/kustomization.yaml",
        &format!("resources:\n  - {url}\n"),
    );
    let k = kubectl();

    // The oracle: kubectl alone, without the proxy, does not reach the server.
    let alone = Command::new(&k)
        .args(["kustomize", "app"])
        .current_dir(w.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("HOME", w.path())
        .output()
        .unwrap();
    assert!(!alone.status.success(), "{alone:?}");
    assert!(asked.lock().unwrap().is_empty());

    let mut args = vec![
        "check",
        "--all",
        "--no-cache",
        "--format",
        "json",
        "-v",
        "--render",
        "--kustomize",
    ];
    args.push(k.to_str().unwrap());
    let run = w.run(&args);
    assert_rendered(
        &run,
        "kustomize",
        1,
        &[format!(
            "app/kustomization.yaml:1 {h}/acme/web:remote not-found Deployment/remote containers[c0] (rendered by kustomize)"
        )],
    );
    assert_eq!(*asked.lock().unwrap(), ["/deploy.yaml?token=s3cret"]);
    assert_eq!(
        proxy_lines(&run.stderr),
        [format!(
            "imagegate: --render: the engine reaches 127.0.2:{port} through imagegate's proxy"
        )]
    );
    reg.push_image("acme/web", "remote", DOCKER_MANIFEST);
    assert_eq!(w.run(&args).code, 0);
    assert_eq!(asked.lock().unwrap().len(), 2);

    // Denied by address: refused before connecting, and the render fails.
    args.extend(["--deny-destination", "127.0.0.2/32"]);
    let run = w.run(&args);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(asked.lock().unwrap().len(), 2, "a denied server was asked");
    assert!(
        run.stderr
            .contains("`kubectl kustomize app` failed (--render)")
            && run.stderr.contains("403"),
        "{}",
        run.stderr
    );
    let refused = proxy_lines(&run.stderr);
    assert!(!refused.is_empty(), "{}", run.stderr);
    for line in refused {
        assert_eq!(
            line,
            format!(
                "imagegate: warning: --render: refused the engine's connection to 127.0.2:{port}: 127.0.2 resolves only to link-local, metadata or denied addresses"
            )
        );
    }
}

/// Issue 15: the cloud metadata service is never fetched, over HTTP or HTTPS, by address or
/// by name, whatever the repository asks for; the warning names the host, never the path or
/// the query.
#[test]
fn metadata_services_are_never_fetched() {
    let w = Workdir::new();
    let urls = [
        (
            "http",
            "http://169.254.169.254/latest/meta-data/iam/security-credentials/?x=s3cret",
        ),
        ("https", "https://169.254.169.254/latest/api/token?x=s3cret"),
        ("v6", "https://[fd00:ec2::254]/latest/meta-data/?x=s3cret"),
        (
            "gcp",
            "https://metadata.google.internal/computeMetadata/v1/?x=s3cret",
        ),
    ];
    for (dir, url) in urls {
        w.write(
            &format!("{dir}/kustomization.yaml"),
            &format!("resources:\n  - {url}\n"),
        );
    }
    let k = kubectl();
    let run = w.run(&offline_render(&k));
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let refused = proxy_lines(&run.stderr);
    for (host, port) in [
        ("169.254.169.254", 80),
        ("169.254.169.254", 443),
        ("[fd00:ec2::254]", 443),
        ("metadata.google.internal", 443),
    ] {
        let prefix = format!(
            "imagegate: warning: --render: refused the engine's connection to {host}:{port}: "
        );
        assert!(
            refused.iter().any(|l| l.starts_with(&prefix)),
            "{host}:{port}: {}",
            run.stderr
        );
    }
    for line in &refused {
        assert!(
            !line.contains("s3cret")
                && !line.contains("latest")
                && !line.contains("computeMetadata"),
            "{line}"
        );
    }
    // kustomize's message (of the first root that fails) carries the proxy's reason.
    assert!(
        run.stderr.contains("failed (--render)") && run.stderr.contains("Forbidden by imagegate: "),
        "{}",
        run.stderr
    );
}

/// Issue 15: a base fetched with git over ssh (`git@host:org/repo`) fails without ssh ever
/// being run, and git gets neither the caller's home (`~/.gitconfig`, `~/.ssh`,
/// credentials) nor `SSH_AUTH_SOCK`: a recording `git` wrapper shows its environment, and a
/// fake `ssh` on PATH would leave a marker. The oracle: kubectl alone runs that ssh.
#[test]
fn git_gets_no_ssh_no_home_and_only_https_through_the_proxy() {
    let k = kubectl();
    let w = Workdir::new();
    w.write(
        "ssh/kustomization.yaml",
        "resources:\n  - git@github.com:acme/deploy//base?ref=main\n",
    );
    w.write(
        "sshurl/kustomization.yaml",
        "resources:\n  - ssh://git@github.com/acme/deploy//base?ref=main\n",
    );
    // The caller's home (the harness sets HOME to the workdir) holds what must not be used.
    w.write(".ssh/id_ed25519", "not a key\n");
    w.write(".gitconfig", "[credential]\n\thelper = store\n");
    let marker = w.path().join("SSH-RAN");
    let record = w.path().join("git-record");
    let real_git = which("git");
    let after = format!(
        "{}:{}",
        k.parent().unwrap().display(),
        std::env::var("PATH").unwrap()
    );
    let (tools, path) = recording_wrapper(
        "git",
        "echo \"git $*\"; /usr/bin/env; echo \"home holds: $(ls -A \"$HOME\")\";",
        &record,
        &format!("exec {} \"$@\"", real_git.display()),
        &after,
    );
    executable(
        &tools,
        "ssh",
        &format!("#!/bin/sh\ntouch {}\nexit 1\n", marker.display()),
    );

    let oracle = Command::new(&k)
        .args(["kustomize", "ssh"])
        .current_dir(w.path())
        .env_clear()
        .env("PATH", &path)
        .env("HOME", w.path())
        .output()
        .unwrap();
    assert!(!oracle.status.success());
    assert!(marker.exists(), "the oracle: on its own, git runs ssh");
    std::fs::remove_file(&marker).unwrap();
    std::fs::remove_file(&record).unwrap();

    for dir in ["ssh", "sshurl"] {
        let run = w.run_env(
            &["check", "--all", "--offline", "--render", dir],
            &[
                ("PATH", &path),
                ("SSH_AUTH_SOCK", "/tmp/imagegate-test-agent.sock"),
                ("GIT_SSH_COMMAND", "touch /tmp/never"),
            ],
        );
        assert_eq!(run.code, 2, "{dir}: {}\n{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains("transport 'ssh' not allowed"),
            "{dir}: {}",
            run.stderr
        );
        assert!(!marker.exists(), "{dir}: ssh ran");
    }
    let record = std::fs::read_to_string(&record).unwrap();
    assert!(record.contains("git fetch --depth=1"), "{record}");
    for want in [
        "GIT_ALLOW_PROTOCOL=https:http\n",
        "GIT_SSH_COMMAND=false\n",
        "GIT_CONFIG_GLOBAL=/dev/null\n",
        "GIT_CONFIG_NOSYSTEM=1\n",
        "GIT_TERMINAL_PROMPT=0\n",
        "https_proxy=http://127.0.0.1:",
        "http_proxy=http://127.0.0.1:",
        "NO_PROXY=\n",
        "home holds: \n",
    ] {
        assert!(record.contains(want), "{want} is missing: {record}");
    }
    let caller_home = format!("HOME={}\n", w.path().display());
    none_reached(
        &record,
        "git",
        &["SSH_AUTH_SOCK", "touch /tmp/never", caller_home.as_str()],
    );
    assert!(record.contains("HOME=/"), "{record}");
}

/// The absolute path of a program on PATH.
fn which(name: &str) -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| panic!("{name} is not on PATH"))
}
