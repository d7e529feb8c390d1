//! The test harness: a real registry process (Debian's `docker-registry`, CNCF distribution
//! 2.8) on 127.0.0.1, a JWT token issuer for its `auth: token` mode, image pushes with plain
//! blob and manifest PUTs, and a runner for the imagegate binary. Everything stays on loopback.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use sha2::{Digest, Sha256};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// The result of one imagegate run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// The JSON report's file findings with this code.
    pub fn file_findings(&self, code: &str) -> Vec<serde_json::Value> {
        self.json()["files"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["code"] == code)
            .cloned()
            .collect()
    }

    /// The codes of the JSON report's file findings.
    pub fn file_codes(&self) -> Vec<String> {
        self.json()["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["code"].as_str().unwrap().to_string())
            .collect()
    }

    /// Asserts that stderr says `what`.
    pub fn says(&self, what: &str) {
        assert!(self.stderr.contains(what), "{}", self.stderr);
    }

    /// One line per JSON reference entry for which `row` gives one, sorted.
    pub fn rows(&self, row: impl Fn(&serde_json::Value) -> Option<String>) -> Vec<String> {
        let mut v: Vec<String> = self.json()["references"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(row)
            .collect();
        v.sort();
        v
    }

    /// The JSON reference entries' statuses, by image as written.
    pub fn statuses(&self) -> HashMap<String, String> {
        self.by_image("status")
    }

    /// One string field of every JSON reference entry (empty when null), by image as
    /// written.
    pub fn by_image(&self, field: &str) -> HashMap<String, String> {
        self.json()["references"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["image"].as_str().unwrap().to_string(),
                    r[field].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }
}

/// A working directory for one test, with an isolated, empty Docker config.
pub struct Workdir {
    pub dir: tempfile::TempDir,
    pub docker_config: PathBuf,
}

impl Workdir {
    pub fn new() -> Workdir {
        let dir = tempfile::tempdir().unwrap();
        let docker_config = dir.path().join(".docker-config");
        std::fs::create_dir_all(&docker_config).unwrap();
        Workdir { dir, docker_config }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Writes a Docker `config.json` with `auths` for one registry.
    pub fn docker_login(&self, registry: &str, user: &str, password: &str) {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let config = serde_json::json!({ "auths": { registry: { "auth": auth } } });
        std::fs::write(self.docker_config.join("config.json"), config.to_string()).unwrap();
    }

    /// Runs imagegate in this directory with a clean CI environment.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.run_full(args, env, None)
    }

    /// Runs imagegate with `input` on its standard input (git's pre-push lines, say).
    pub fn run_stdin(&self, args: &[&str], input: &str) -> Run {
        self.run_full(args, &[], Some(input))
    }

    fn run_full(&self, args: &[&str], env: &[(&str, &str)], input: Option<&str>) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_imagegate"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("DOCKER_CONFIG", &self.docker_config)
            .env("HOME", self.dir.path())
            .env("NO_COLOR", "1")
            .env("RUST_BACKTRACE", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .stdin(Stdio::null());
        for var in CI_VARIABLES {
            cmd.env_remove(var);
        }
        for (var, _) in std::env::vars_os() {
            if var.to_string_lossy().starts_with("IMAGEGATE_") {
                cmd.env_remove(var);
            }
        }
        cmd.env("XDG_CACHE_HOME", self.dir.path().join(".cache"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = match input {
            None => cmd.output().expect("imagegate runs"),
            Some(text) => output_with_stdin(&mut cmd, text),
        };
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert!(
            !run.stderr.contains("panicked"),
            "imagegate panicked:\n{}",
            run.stderr
        );
        run
    }
}

/// Runs a command with `text` on its standard input and collects its output.
pub fn output_with_stdin(cmd: &mut Command, text: &str) -> std::process::Output {
    use std::io::Write;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("the command starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Variables that change imagegate's behaviour in CI; tests start without them.
pub const CI_VARIABLES: [&str; 26] = [
    "XDG_RUNTIME_DIR",
    "XDG_CONFIG_HOME",
    "DOCKER_AUTH_CONFIG",
    "GITHUB_TOKEN",
    "GITHUB_ACTOR",
    "CI_REGISTRY",
    "CI_REGISTRY_USER",
    "CI_REGISTRY_PASSWORD",
    "CI_JOB_TOKEN",
    "CI_DEPENDENCY_PROXY_SERVER",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "CI",
    "GITHUB_ACTIONS",
    "GITHUB_BASE_REF",
    "GITHUB_EVENT_BEFORE",
    "GITHUB_EVENT_NAME",
    "GITHUB_EVENT_PATH",
    "GITHUB_STEP_SUMMARY",
    "GITLAB_CI",
    "CI_MERGE_REQUEST_DIFF_BASE_SHA",
    "CI_MERGE_REQUEST_TARGET_BRANCH_NAME",
    "CI_COMMIT_BEFORE_SHA",
    "PRE_COMMIT_FROM_REF",
    "PRE_COMMIT_TO_REF",
    "REGISTRY_AUTH_FILE",
];

/// Runs git in `dir` with a fixed identity and no user or system config; panics on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
        .stdin(Stdio::null())
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Gives the repository in `w` an `origin` (a bare repository at `bare`) holding `main`,
/// fetched, as a CI checkout has it.
pub fn add_origin(w: &Workdir, bare: &Path) {
    git(w.path(), &["init", "-q", "--bare", bare.to_str().unwrap()]);
    git(
        w.path(),
        &["remote", "add", "origin", bare.to_str().unwrap()],
    );
    git(w.path(), &["push", "-q", "origin", "main"]);
    git(w.path(), &["fetch", "-q", "origin"]);
}

/// A Deployment with one container per image, images written exactly as given.
pub fn deployment(name: &str, images: &[&str]) -> String {
    let mut s = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  template:\n    spec:\n      containers:\n"
    );
    for (i, image) in images.iter().enumerate() {
        s.push_str(&format!("      - name: c{i}\n        image: {image}\n"));
    }
    s
}

/// A workdir whose `deploy.yaml` references `repo` at two tags on `host`, and those two
/// references as written.
pub fn app_workdir(host: &str, repo: &str, tags: [&str; 2]) -> (Workdir, [String; 2]) {
    let w = Workdir::new();
    let images = tags.map(|t| format!("{host}/{repo}:{t}"));
    w.write(
        "deploy.yaml",
        &deployment("app", &[images[0].as_str(), images[1].as_str()]),
    );
    (w, images)
}

/// Reads an HTTP request's head (up to the blank line) for the scripted servers; `None` when
/// the client went away first.
pub fn read_request_head(stream: &mut impl Read) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How the registry authenticates.
pub enum Auth {
    Anonymous,
    Htpasswd { user: String, password: String },
    Token(Arc<TokenIssuer>),
}

/// A test certificate authority and what it signed, as PEM files in a directory.
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Pki {
    /// A CA, a server certificate for `names` (DNS names or IP addresses), and a client
    /// certificate, all generated here with rcgen.
    pub fn new(names: &[&str]) -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "imagegate test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let write = |name: &str, text: String| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let server_key = KeyPair::generate().unwrap();
        let server =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap()
                .signed_by(&server_key, &issuer)
                .unwrap();
        let client_key = KeyPair::generate().unwrap();
        let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        client_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "imagegate test client");
        client_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let client = client_params.signed_by(&client_key, &issuer).unwrap();
        Pki {
            ca: write("ca.pem", ca_cert.pem()),
            server_cert: write("server.pem", server.pem()),
            server_key: write("server.key", server_key.serialize_pem()),
            client_cert: write("client.cert", client.pem()),
            client_key: write("client.key", client_key.serialize_pem()),
            dir,
        }
    }
}

/// How the registry speaks TLS.
pub struct Tls<'a> {
    pub pki: &'a Pki,
    /// Require a client certificate signed by the CA (mutual TLS).
    pub client_auth: bool,
}

/// A running `docker-registry` process, stopped on drop.
pub struct Registry {
    child: Child,
    pub port: u16,
    pub host: String,
    scheme: &'static str,
    auth: Auth,
    log: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
    http: reqwest::blocking::Client,
}

fn registry_binary() -> PathBuf {
    for candidate in ["/usr/bin/docker-registry", "/usr/local/bin/docker-registry"] {
        if Path::new(candidate).exists() {
            return candidate.into();
        }
    }
    panic!(
        "the real registry is needed and `docker-registry` is not installed: \
         run `apt-get install -y docker-registry` (the README's test command does this)"
    );
}

impl Registry {
    pub fn anonymous() -> Registry {
        Registry::start(Auth::Anonymous)
    }

    /// An anonymous registry holding an image of `media_type` at each repository and tag.
    pub fn holding(images: &[(&str, &str)], media_type: &str) -> Registry {
        let reg = Registry::anonymous();
        for (repo, tag) in images {
            reg.push_image(repo, tag, media_type);
        }
        reg
    }

    pub fn htpasswd(user: &str, password: &str) -> Registry {
        Registry::start(Auth::Htpasswd {
            user: user.into(),
            password: password.into(),
        })
    }

    pub fn token(issuer: Arc<TokenIssuer>) -> Registry {
        Registry::start(Auth::Token(issuer))
    }

    pub fn start(auth: Auth) -> Registry {
        Registry::start_with(auth, None)
    }

    /// `http://127.0.0.1:PORT` or `https://…`.
    pub fn base(&self) -> String {
        format!("{}://{}", self.scheme, self.host)
    }

    pub fn start_with(auth: Auth, tls: Option<Tls>) -> Registry {
        let bin = registry_binary();
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let auth_yaml = match &auth {
            Auth::Anonymous => String::new(),
            Auth::Htpasswd { user, password } => {
                let hash = bcrypt::hash(password, 4).unwrap();
                let path = dir.path().join("htpasswd");
                std::fs::write(&path, format!("{user}:{hash}\n")).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: imagegate-test\n    path: {}\n",
                    path.display()
                )
            }
            Auth::Token(issuer) => {
                let bundle = dir.path().join("issuer.pem");
                std::fs::write(&bundle, &issuer.cert_pem).unwrap();
                format!(
                    "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                    issuer.realm(),
                    TokenIssuer::SERVICE,
                    TokenIssuer::ISSUER,
                    bundle.display()
                )
            }
        };
        let tls_yaml = match &tls {
            None => String::new(),
            Some(t) => {
                let mut y = format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    t.pki.server_cert.display(),
                    t.pki.server_key.display()
                );
                if t.client_auth {
                    y.push_str(&format!("    clientcas:\n      - {}\n", t.pki.ca.display()));
                }
                y
            }
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: info\n  formatter: json\n  accesslog:\n    disabled: true\nstorage:\n  cache:\n    blobdescriptor: inmemory\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{tls_yaml}{auth_yaml}",
            dir.path().join("data").display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let mut child = Command::new(&bin)
            .arg("serve")
            .arg(&config_path)
            .env_clear()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let log = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    log.lock().unwrap().push(line);
                }
            });
        }
        let mut builder = reqwest::blocking::Client::builder().timeout(Duration::from_secs(10));
        if let Some(t) = &tls {
            let ca = std::fs::read(&t.pki.ca).unwrap();
            builder = builder
                .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
                // The harness pushes fixtures; whether the name matches is imagegate's test.
                .tls_danger_accept_invalid_hostnames(true);
            if t.client_auth {
                let mut pem = std::fs::read(&t.pki.client_cert).unwrap();
                pem.extend(std::fs::read(&t.pki.client_key).unwrap());
                builder = builder.identity(reqwest::Identity::from_pem(&pem).unwrap());
            }
        }
        let http = builder.build().unwrap();
        let mut registry = Registry {
            child,
            port,
            host: format!("127.0.0.1:{port}"),
            scheme: if tls.is_some() { "https" } else { "http" },
            auth,
            log,
            _dir: dir,
            http,
        };
        registry.wait_ready();
        registry
    }

    fn wait_ready(&mut self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "docker-registry exited ({status}) before it was ready:\n{}",
                    self.log.lock().unwrap().join("\n")
                );
            }
            if let Ok(r) = self.http.get(format!("{}/v2/", self.base())).send()
                && matches!(r.status().as_u16(), 200 | 401)
            {
                // The registry logs a request after answering it: wait for the readiness
                // ping's line before clearing, or it lands in the first test's requests.
                let logged = Instant::now() + Duration::from_secs(3);
                while Instant::now() < logged
                    && !self.log.lock().unwrap().iter().any(|l| {
                        l.contains("\"http.request.uri\":\"/v2/\"")
                            && (l.contains("response completed")
                                || l.contains("error authorizing context"))
                    })
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                self.log.lock().unwrap().clear();
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "docker-registry did not become ready on {} within 15 s:\n{}",
            self.host,
            self.log.lock().unwrap().join("\n")
        );
    }

    /// Requests the registry has logged, as (method, uri), since the last call to
    /// [`Registry::reset_log`]. Waits briefly for the log to settle.
    pub fn requests(&self) -> Vec<(String, String)> {
        // The registry logs after it answers; wait until the log stops growing (under load
        // a fixed pause was not always enough).
        let mut seen = usize::MAX;
        let settle = Instant::now() + Duration::from_secs(5);
        loop {
            std::thread::sleep(Duration::from_millis(250));
            let now = self.log.lock().unwrap().len();
            if now == seen || Instant::now() > settle {
                break;
            }
            seen = now;
        }
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| {
                // Requests refused by auth are logged as "error authorizing context" only.
                v["msg"].as_str().is_some_and(|m| {
                    m.starts_with("response completed")
                        || m.starts_with("error authorizing context")
                })
            })
            .map(|v| {
                (
                    v["http.request.method"].as_str().unwrap_or("").to_string(),
                    v["http.request.uri"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    /// CPU seconds (user + system) the registry process has used so far, from
    /// `/proc/PID/stat`: the benchmarks show how much of a run the registry itself costs.
    pub fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command name (which is in parentheses and may hold spaces).
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace()
            .collect();
        let ticks: f64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
            .sum();
        ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
    }

    pub fn reset_log(&self) {
        std::thread::sleep(Duration::from_millis(200));
        self.log.lock().unwrap().clear();
    }

    fn push_auth(&self, repo: &str) -> Option<String> {
        match &self.auth {
            Auth::Anonymous => None,
            Auth::Htpasswd { user, password } => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )),
            Auth::Token(issuer) => Some(format!(
                "Bearer {}",
                issuer.sign(&[(repo.to_string(), vec!["pull", "push"])])
            )),
        }
    }

    fn with_auth(
        &self,
        req: reqwest::blocking::RequestBuilder,
        repo: &str,
    ) -> reqwest::blocking::RequestBuilder {
        match self.push_auth(repo) {
            Some(a) => req.header("Authorization", a),
            None => req,
        }
    }

    /// Uploads a blob and returns its digest.
    pub fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let digest = sha256(data);
        let start = self
            .with_auth(
                self.http
                    .post(format!("{}/v2/{repo}/blobs/uploads/", self.base())),
                repo,
            )
            .send()
            .unwrap();
        assert_eq!(
            start.status().as_u16(),
            202,
            "blob upload start: {:?}",
            start.text()
        );
        let location = start.headers()["location"].to_str().unwrap().to_string();
        let url = if location.starts_with("http") {
            location
        } else {
            format!("{}{location}", self.base())
        };
        let sep = if url.contains('?') { '&' } else { '?' };
        let put = self
            .with_auth(self.http.put(format!("{url}{sep}digest={digest}")), repo)
            .header("Content-Type", "application/octet-stream")
            .body(data.to_vec())
            .send()
            .unwrap();
        assert_eq!(put.status().as_u16(), 201, "blob upload: {:?}", put.text());
        digest
    }

    /// Puts a manifest under a tag (or digest) and returns its digest.
    pub fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &str,
    ) -> String {
        let r = self
            .with_auth(
                self.http
                    .put(format!("{}/v2/{repo}/manifests/{reference}", self.base())),
                repo,
            )
            .header("Content-Type", media_type)
            .body(body.to_string())
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 201, "manifest put: {:?}", r.text());
        sha256(body.as_bytes())
    }

    /// Pushes a single-platform image (Docker v2 or OCI manifest) and returns its digest.
    pub fn push_image(&self, repo: &str, tag: &str, media_type: &str) -> String {
        self.push_image_seeded(repo, tag, media_type, "linux", "amd64", tag)
    }

    pub fn push_image_seeded(
        &self,
        repo: &str,
        tag: &str,
        media_type: &str,
        os: &str,
        arch: &str,
        seed: &str,
    ) -> String {
        let (config_type, layer_type) = if media_type == OCI_MANIFEST {
            (
                "application/vnd.oci.image.config.v1+json",
                "application/vnd.oci.image.layer.v1.tar+gzip",
            )
        } else {
            (
                "application/vnd.docker.container.image.v1+json",
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
            )
        };
        let config = serde_json::json!({
            "architecture": arch, "os": os,
            "config": { "Labels": { "seed": seed } },
            "rootfs": { "type": "layers", "diff_ids": [] }
        })
        .to_string();
        let layer = format!("layer {repo} {seed} {arch}").into_bytes();
        let config_digest = self.push_blob(repo, config.as_bytes());
        let layer_digest = self.push_blob(repo, &layer);
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": { "mediaType": config_type, "digest": config_digest, "size": config.len() },
            "layers": [ { "mediaType": layer_type, "digest": layer_digest, "size": layer.len() } ]
        })
        .to_string();
        self.push_manifest(repo, tag, media_type, &manifest)
    }

    /// Pushes an OCI index over one image per platform and returns the index digest.
    pub fn push_index(&self, repo: &str, tag: &str, platforms: &[(&str, &str)]) -> String {
        let mut manifests = Vec::new();
        for (os, arch) in platforms {
            let body_digest = self.push_image_seeded(
                repo,
                &format!("{tag}-{os}-{arch}"),
                OCI_MANIFEST,
                os,
                arch,
                tag,
            );
            let size = self.manifest_size(repo, &body_digest);
            manifests.push(serde_json::json!({
                "mediaType": OCI_MANIFEST, "digest": body_digest, "size": size,
                "platform": { "os": os, "architecture": arch }
            }));
        }
        let index = serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests
        })
        .to_string();
        self.push_manifest(repo, tag, OCI_INDEX, &index)
    }

    fn manifest_size(&self, repo: &str, digest: &str) -> u64 {
        let r = self
            .with_auth(
                self.http
                    .get(format!("{}/v2/{repo}/manifests/{digest}", self.base())),
                repo,
            )
            .header("Accept", OCI_MANIFEST)
            .send()
            .unwrap();
        r.bytes().unwrap().len() as u64
    }

    /// A HEAD with a chosen Accept header, straight to the registry (for fixture checks).
    pub fn head_status(&self, repo: &str, reference: &str, accept: &str) -> u16 {
        self.with_auth(
            self.http
                .head(format!("{}/v2/{repo}/manifests/{reference}", self.base())),
            repo,
        )
        .header("Accept", accept)
        .send()
        .unwrap()
        .status()
        .as_u16()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn sha256(data: &[u8]) -> String {
    let digest = Sha256::digest(data);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// A token issuer for distribution's `auth: token` mode: it signs ES256 JWTs with a
/// certificate generated here, which the registry trusts through its root bundle.
pub struct TokenIssuer {
    pub cert_pem: String,
    cert_der_b64: String,
    key: jsonwebtoken::EncodingKey,
    port: u16,
    /// Where clients are told to fetch tokens, when not straight from `port` (a proxy).
    pub realm_override: Mutex<Option<String>>,
    /// Repositories anyone may pull (by prefix).
    public: Vec<String>,
    /// username → password of accounts that may pull everything.
    users: HashMap<String, String>,
    pub requests: AtomicUsize,
    /// Grant only the first scope of a request, as some registries do.
    pub first_scope_only: std::sync::atomic::AtomicBool,
    /// The scopes asked for, one entry per token request.
    pub scopes: Mutex<Vec<Vec<String>>>,
}

impl TokenIssuer {
    pub const SERVICE: &'static str = "imagegate-test";
    pub const ISSUER: &'static str = "imagegate-test-issuer";

    /// Starts the issuer's HTTP server on loopback.
    pub fn start(public: &[&str], users: &[(&str, &str)]) -> Arc<TokenIssuer> {
        let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["imagegate-token-issuer".to_string()])
            .unwrap()
            .self_signed(&key_pair)
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let issuer = Arc::new(TokenIssuer {
            cert_pem: cert.pem(),
            cert_der_b64: base64::engine::general_purpose::STANDARD.encode(cert.der()),
            key: jsonwebtoken::EncodingKey::from_ec_pem(key_pair.serialize_pem().as_bytes())
                .unwrap(),
            port,
            realm_override: Mutex::new(None),
            public: public.iter().map(|s| s.to_string()).collect(),
            users: users
                .iter()
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .collect(),
            requests: AtomicUsize::new(0),
            first_scope_only: std::sync::atomic::AtomicBool::new(false),
            scopes: Mutex::new(Vec::new()),
        });
        let served = issuer.clone();
        crate::loopback_http::serve_on(listener, move |r| served.answer(&r)).detach();
        issuer
    }

    pub fn realm(&self) -> String {
        self.realm_override
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_else(|| format!("http://127.0.0.1:{}/token", self.port))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The refresh token (identity token) this issuer accepts for a user.
    pub fn refresh_token(user: &str) -> String {
        format!("refresh-token-of-{user}")
    }

    fn answer(&self, request: &crate::loopback_http::Request) -> crate::loopback_http::Reply {
        use crate::loopback_http::Reply;
        self.requests.fetch_add(1, Ordering::SeqCst);
        let url = reqwest::Url::parse(&format!("http://x{}", request.target)).unwrap();
        let unauthorized = || Reply::new(401, "{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}");
        let mut scopes: Vec<String> = url
            .query_pairs()
            .filter(|(k, _)| k == "scope")
            .map(|(_, v)| v.into_owned())
            .collect();
        // The OAuth2 refresh-token grant (docker's identity tokens): a form POST.
        let mut refreshed_user = false;
        if request.method == reqwest::Method::POST {
            let body = String::from_utf8_lossy(&request.body);
            let form: HashMap<String, String> = reqwest::Url::parse(&format!("http://x/?{body}"))
                .unwrap()
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            let valid = form.get("grant_type").map(String::as_str) == Some("refresh_token")
                && self
                    .users
                    .keys()
                    .any(|u| form.get("refresh_token") == Some(&Self::refresh_token(u)));
            if !valid {
                return unauthorized();
            }
            refreshed_user = true;
            scopes = form
                .get("scope")
                .map(|s| {
                    s.split(' ')
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
        }
        self.scopes.lock().unwrap().push(scopes.clone());
        let authorized_user = request.header("Authorization").map(str::to_string);
        let mut is_user = refreshed_user;
        if let Some(auth) = authorized_user.filter(|_| !refreshed_user) {
            let decoded = auth
                .strip_prefix("Basic ")
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_default();
            let (u, p) = decoded.split_once(':').unwrap_or(("", ""));
            if self.users.get(u).map(String::as_str) != Some(p) {
                return unauthorized();
            }
            is_user = true;
        }
        // Grant the intersection of what was asked and what is allowed, as real token
        // services do: a repository the caller may not pull gets an empty grant, not an error.
        let mut access = Vec::new();
        let scopes = if self.first_scope_only.load(Ordering::SeqCst) {
            scopes.into_iter().take(1).collect()
        } else {
            scopes
        };
        for scope in scopes {
            let parts: Vec<&str> = scope.split(':').collect();
            if parts.len() == 3 && parts[0] == "repository" {
                let repo = parts[1];
                if is_user || self.public.iter().any(|p| repo.starts_with(p.as_str())) {
                    access.push((repo.to_string(), vec!["pull"]));
                }
            }
        }
        let token = self.sign(&access);
        let body = if refreshed_user {
            serde_json::json!({ "access_token": token, "expires_in": 300 }).to_string()
        } else {
            serde_json::json!({ "token": token, "expires_in": 300 }).to_string()
        };
        Reply::new(200, body).with_header("Content-Type", "application/json")
    }

    /// Signs a token granting the given actions per repository.
    pub fn sign(&self, access: &[(String, Vec<&str>)]) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let claims = serde_json::json!({
            "iss": Self::ISSUER,
            "sub": "test",
            "aud": Self::SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": format!("{now}-{}", self.requests.load(Ordering::SeqCst)),
            "access": access.iter().map(|(name, actions)| serde_json::json!({
                "type": "repository", "name": name, "actions": actions
            })).collect::<Vec<_>>()
        });
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.x5c = Some(vec![self.cert_der_b64.clone()]);
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }
}

/// A scripted server for faults a real registry cannot be made to produce: it answers
/// every request with `reply(path, headers)` and records the requests it saw.
pub struct Scripted {
    pub host: String,
    pub seen: Arc<Mutex<Vec<String>>>,
}

impl Scripted {
    pub fn start(reply: impl Fn(&str, &str) -> Vec<u8> + Send + Sync + 'static) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (reply, log) = (Arc::new(reply), seen.clone());
        std::thread::spawn(move || {
            for mut stream in listener.incoming().map_while(Result::ok) {
                let (reply, log) = (reply.clone(), log.clone());
                std::thread::spawn(move || {
                    let Some(head) = read_request_head(&mut stream) else {
                        return;
                    };
                    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                    log.lock().unwrap().push(head.clone());
                    let _ = stream.write_all(&reply(&path, &head));
                });
            }
        });
        Scripted { host, seen }
    }
}

pub fn http(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut s = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    s.push_str("\r\n");
    let mut out = s.into_bytes();
    out.extend_from_slice(body);
    out
}

impl Scripted {
    /// A server that answers 200 with a digest to every request: a lying mirror, or the far
    /// end of a redirect.
    pub fn yes_to_everything() -> Scripted {
        Scripted::start(|_, _| {
            http(
                "200 OK",
                &[(
                    "Docker-Content-Digest",
                    &format!("sha256:{}", "c".repeat(64)),
                )],
                b"",
            )
        })
    }
}

/// A 401 asking for Basic credentials, as a registry's `/v2/` answers.
pub fn basic_challenge() -> Vec<u8> {
    http(
        "401 Unauthorized",
        &[("WWW-Authenticate", "Basic realm=\"x\"")],
        b"",
    )
}

/// A workdir whose `a.yaml` deploys one image.
pub fn one_image(image: &str) -> Workdir {
    let w = Workdir::new();
    w.write("a.yaml", &deployment("a", &[image]));
    w
}

/// `check --all` of a workdir, fresh from the registry, as JSON.
pub const CHECK_JSON: [&str; 5] = ["check", "--all", "--no-cache", "--format", "json"];

/// [`CHECK_JSON`] with `extra` arguments.
pub fn check_json_with<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = CHECK_JSON.to_vec();
    args.extend_from_slice(extra);
    args
}

/// `check --all --offline` of a workdir, as JSON.
pub const OFFLINE_JSON: [&str; 5] = ["check", "--all", "--offline", "--format", "json"];

/// `OFFLINE_JSON` with `--render`.
pub const RENDER_OFFLINE_JSON: [&str; 6] = [
    "check",
    "--all",
    "--offline",
    "--format",
    "json",
    "--render",
];

/// A real engine from `$IMAGEGATE_ENGINES` (`scripts/engines` installs them and
/// `scripts/test` sets it; `target/engines` otherwise), or a loud failure: the tests that
/// need one never skip.
pub fn engine(name: &str) -> PathBuf {
    let dir = std::env::var_os("IMAGEGATE_ENGINES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/engines"));
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "real {name} is needed at {}: run scripts/engines (scripts/test does) or set IMAGEGATE_ENGINES",
        bin.display()
    );
    bin
}

/// The real engine `name` to run in `dir` with `home` as its home, helm's homes inside it.
pub fn engine_at_home(name: &str, dir: &Path, home: &Path) -> Command {
    let mut cmd = Command::new(engine(name));
    cmd.current_dir(dir)
        .env("HOME", home)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"));
    cmd
}

/// Real kubectl whose kustomize is v5.8.1, the version the model follows.
pub fn kubectl() -> PathBuf {
    let k = engine("kubectl");
    let version = Command::new(&k).args(["version", "--client"]).output();
    match version {
        Ok(o) if String::from_utf8_lossy(&o.stdout).contains("Kustomize Version: v5.8.1") => k,
        _ => panic!(
            "the tests need kubectl with kustomize v5.8.1 at {}; run scripts/engines",
            k.display()
        ),
    }
}

/// Real helm v4.
pub fn helm_bin() -> PathBuf {
    engine("helm")
}
