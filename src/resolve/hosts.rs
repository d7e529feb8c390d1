//! What imagegate knows about a registry host before it sends a request: how to reach it
//! (plain HTTP, verified or unverified TLS, client certificates), its limits, its mirrors or
//! rewrite, and where its credentials come from. Merged from flags, the config file, and
//! the `certs.d/<host>/` directories and `hosts.toml` files docker, podman and containerd read.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{Config, CredentialSource};
use crate::image_ref::ImageRef;

/// Where docker, podman and containerd keep per-host TLS files (and containerd its
/// `hosts.toml`), searched in this order. `~` is the home directory.
pub const CERTS_DIRS: [&str; 4] = [
    "~/.config/containers/certs.d",
    "/etc/containers/certs.d",
    "/etc/docker/certs.d",
    "/etc/containerd/certs.d",
];

/// A registry host, optionally with a repository prefix: `mirror.lan/dockerhub`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub prefix: String,
}

impl Endpoint {
    /// Parses `host[/prefix]`, with an optional `https://` or `http://` (dropped).
    pub fn parse(s: &str) -> Result<Endpoint, String> {
        let s = s
            .trim()
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/');
        let (host, prefix) = s.split_once('/').unwrap_or((s, ""));
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(format!("`{s}` is not a registry host[/prefix]"));
        }
        Ok(Endpoint {
            host: host.to_ascii_lowercase(),
            prefix: prefix.to_string(),
        })
    }

    /// `r` with its registry replaced by this endpoint (and `strip` removed from its path).
    pub fn apply(&self, r: &ImageRef, strip: &str) -> ImageRef {
        let rest = if strip.is_empty() {
            r.path.as_str()
        } else {
            r.path
                .strip_prefix(strip)
                .map_or(r.path.as_str(), |p| p.trim_start_matches('/'))
        };
        let path = if self.prefix.is_empty() {
            rest.to_string()
        } else {
            format!("{}/{rest}", self.prefix)
        };
        ImageRef {
            domain: self.host.clone(),
            path,
            ..r.clone()
        }
    }
}

/// How TLS is spoken to a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// HTTPS verified against the system roots plus any CA files.
    Https,
    /// Plain HTTP (loopback, as docker does).
    Http,
    /// Explicitly insecure: HTTPS without verification, then plain HTTP, as docker does for
    /// its insecure registries.
    Insecure,
}

/// Everything known about one host.
#[derive(Debug, Clone, Default)]
pub struct HostSettings {
    pub insecure: Option<bool>,
    pub ca_files: Vec<PathBuf>,
    pub client_cert: Option<(PathBuf, PathBuf)>,
    pub concurrency: Option<usize>,
    pub requests_per_second: Option<f64>,
    pub timeout: Option<Duration>,
    pub mirrors: Vec<Endpoint>,
    pub rewrite: Option<(String, Endpoint)>,
    pub credentials: Option<CredentialSource>,
}

impl HostSettings {
    pub fn has_tls_material(&self) -> bool {
        !self.ca_files.is_empty() || self.client_cert.is_some()
    }
}

/// Per-host settings for a run.
#[derive(Debug, Clone, Default)]
pub struct Registries {
    /// CA files trusted for every host (`--ca-file`).
    pub ca_files: Vec<PathBuf>,
    hosts: HashMap<String, HostSettings>,
    /// Rewrites keyed by `host/prefix` (longest first wins).
    rewrites: Vec<(String, Endpoint)>,
    certs_dirs: Vec<PathBuf>,
    insecure: Vec<String>,
}

/// Flags that shape the registries, besides the config file.
#[derive(Debug, Clone, Default)]
pub struct RegistryFlags {
    pub ca_files: Vec<PathBuf>,
    pub insecure: Vec<String>,
    pub mirrors: Vec<String>,
    pub rewrites: Vec<String>,
}

impl Registries {
    /// Builds the table from flags and the config. Files named in the config are relative
    /// to the config file's directory.
    pub fn new(flags: &RegistryFlags, config: &Config) -> Result<Registries, String> {
        let base = config
            .path
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let certs_dirs = CERTS_DIRS
            .iter()
            .filter_map(|d| match d.strip_prefix("~/") {
                Some(rest) => home.as_ref().map(|h| h.join(rest)),
                None => Some(PathBuf::from(d)),
            })
            .collect();
        let mut out = Registries {
            ca_files: flags.ca_files.clone(),
            certs_dirs,
            insecure: [flags.insecure.clone(), config.insecure_registries.clone()].concat(),
            ..Registries::default()
        };
        for f in &out.ca_files {
            check_readable(f)?;
        }
        for (host, s) in &config.registries {
            let host = host.to_ascii_lowercase();
            let file = |p: &str| base.join(p);
            let mut h = HostSettings {
                insecure: s.insecure,
                ca_files: s.ca_file.iter().map(|p| file(p)).collect(),
                concurrency: s.concurrency,
                requests_per_second: s.requests_per_second.filter(|r| *r > 0.0),
                timeout: s.timeout.map(Duration::from_secs),
                credentials: s.credentials.clone(),
                ..HostSettings::default()
            };
            match (&s.client_cert, &s.client_key) {
                (Some(c), Some(k)) => h.client_cert = Some((file(c), file(k))),
                (None, None) => {}
                _ => {
                    return Err(format!(
                        "registry {host}: client-cert and client-key go together"
                    ));
                }
            }
            for f in h
                .ca_files
                .iter()
                .chain(h.client_cert.iter().flat_map(|(c, k)| [c, k]))
            {
                check_readable(f)?;
            }
            for m in &s.mirrors {
                h.mirrors
                    .push(Endpoint::parse(m).map_err(|e| format!("registry {host}: mirror {e}"))?);
            }
            if let Some(to) = &s.rewrite {
                let to =
                    Endpoint::parse(to).map_err(|e| format!("registry {host}: rewrite {e}"))?;
                out.rewrites.push((host.clone(), to));
            }
            out.hosts.insert(host, h);
        }
        for m in &flags.mirrors {
            let (from, to) = m
                .split_once('=')
                .ok_or_else(|| format!("--mirror expects REGISTRY=HOST[/PREFIX], got `{m}`"))?;
            let to = Endpoint::parse(to).map_err(|e| format!("--mirror {e}"))?;
            out.hosts
                .entry(canonical_host(from))
                .or_default()
                .mirrors
                .push(to);
        }
        for w in &flags.rewrites {
            let (from, to) = w.split_once('=').ok_or_else(|| {
                format!("--rewrite expects REGISTRY[/PREFIX]=HOST[/PREFIX], got `{w}`")
            })?;
            let to = Endpoint::parse(to).map_err(|e| format!("--rewrite {e}"))?;
            let from = Endpoint::parse(from).map_err(|e| format!("--rewrite {e}"))?;
            let key = if from.prefix.is_empty() {
                canonical_host(&from.host)
            } else {
                format!("{}/{}", canonical_host(&from.host), from.prefix)
            };
            out.rewrites.push((key, to));
        }
        // Longest source first, so `docker.io/library` wins over `docker.io`.
        out.rewrites
            .sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
        Ok(out)
    }

    /// Settings for a host, with what its `certs.d` directory holds merged in.
    pub fn host(&self, host: &str) -> HostSettings {
        let mut h = self.hosts.get(host).cloned().unwrap_or_default();
        if self
            .insecure
            .iter()
            .any(|i| i == host || i == strip_port(host))
        {
            h.insecure.get_or_insert(true);
        }
        if let Some(dir) = self.certs_dir(host) {
            let (cas, client, mirrors) = read_certs_dir(&dir);
            h.ca_files.extend(cas);
            if h.client_cert.is_none() {
                h.client_cert = client;
            }
            if h.mirrors.is_empty() {
                h.mirrors = mirrors;
            }
        }
        h
    }

    /// How a host is reached.
    pub fn transport(&self, host: &str, settings: &HostSettings) -> Transport {
        match settings.insecure {
            Some(true) => Transport::Insecure,
            Some(false) => Transport::Https,
            None if settings.has_tls_material() => Transport::Https,
            None if is_loopback(host) => Transport::Http,
            None => Transport::Https,
        }
    }

    /// Where a reference is really asked: its rewrite when one applies (and the prefix it
    /// replaced), else itself.
    pub fn rewrite(&self, r: &ImageRef) -> Option<ImageRef> {
        let name = format!("{}/{}", r.domain, r.path);
        self.rewrites.iter().find_map(|(from, to)| {
            let rest = name.strip_prefix(from.as_str())?;
            if !(rest.is_empty() || rest.starts_with('/')) {
                return None;
            }
            let strip = from.split_once('/').map_or("", |(_, p)| p);
            Some(to.apply(r, strip))
        })
    }

    fn certs_dir(&self, host: &str) -> Option<PathBuf> {
        let api = if host == crate::image_ref::DOCKER_HUB {
            crate::image_ref::DOCKER_HUB_API
        } else {
            host
        };
        self.certs_dirs
            .iter()
            .find_map(|d| [host, api].iter().map(|h| d.join(h)).find(|p| p.is_dir()))
    }
}

/// `docker.io` for Docker Hub's other names; other hosts lower-cased.
fn canonical_host(h: &str) -> String {
    match h.to_ascii_lowercase().as_str() {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".into(),
        other => other.to_string(),
    }
}

fn check_readable(p: &Path) -> Result<(), String> {
    std::fs::metadata(p)
        .map(|_| ())
        .map_err(|e| format!("cannot read {}: {e}", p.display()))
}

/// CA files (`*.crt`), a client pair (`*.cert` with its `*.key`) and `hosts.toml` mirrors
/// of one `certs.d/<host>/` directory.
fn read_certs_dir(dir: &Path) -> (Vec<PathBuf>, Option<(PathBuf, PathBuf)>, Vec<Endpoint>) {
    let mut cas = Vec::new();
    let mut client = None;
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in &entries {
        match p.extension().and_then(|e| e.to_str()) {
            Some("crt") => cas.push(p.clone()),
            Some("cert") => {
                let key = p.with_extension("key");
                if key.is_file() && client.is_none() {
                    client = Some((p.clone(), key));
                }
            }
            _ => {}
        }
    }
    let mirrors = std::fs::read_to_string(dir.join("hosts.toml"))
        .ok()
        .map(|t| hosts_toml_mirrors(&t))
        .unwrap_or_default();
    (cas, client, mirrors)
}

/// The mirrors of a containerd `hosts.toml`, in file order: `[host."URL"]` tables whose
/// capabilities include `resolve` (or name none). The upstream `server` comes last anyway.
pub fn hosts_toml_mirrors(text: &str) -> Vec<Endpoint> {
    // Without its `preserve_order` feature the toml crate sorts table keys, so the file's
    // order is recovered from where each URL stands in the text.
    let Ok(doc) = toml::from_str::<toml::Table>(text) else {
        return Vec::new();
    };
    let Some(hosts) = doc.get("host").and_then(|h| h.as_table()) else {
        return Vec::new();
    };
    let mut found: Vec<(usize, Endpoint)> = hosts
        .iter()
        .filter(|(_, v)| {
            v.get("capabilities")
                .and_then(|c| c.as_array())
                .is_none_or(|caps| caps.iter().any(|c| c.as_str() == Some("resolve")))
        })
        .filter_map(|(url, _)| {
            let at = text.find(&format!("\"{url}\"")).unwrap_or(usize::MAX);
            let ep = Endpoint::parse(url).ok()?;
            // containerd's mirror URLs carry `/v2/<prefix>`; keep only the prefix.
            let prefix = ep
                .prefix
                .strip_prefix("v2")
                .map(|p| p.trim_start_matches('/').to_string())
                .unwrap_or(ep.prefix);
            Some((at, Endpoint { prefix, ..ep }))
        })
        .collect();
    found.sort_by_key(|(at, _)| *at);
    found.into_iter().map(|(_, e)| e).collect()
}

pub fn strip_port(host_port: &str) -> &str {
    if let Some(rest) = host_port.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(h, _)| h);
    }
    host_port.split_once(':').map_or(host_port, |(h, _)| h)
}

/// `localhost` and loopback addresses, with or without a port.
pub fn is_loopback(host_port: &str) -> bool {
    let host = strip_port(host_port);
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> ImageRef {
        ImageRef::parse(s).unwrap()
    }

    #[test]
    fn rewrites_replace_the_longest_matching_prefix() {
        let flags = RegistryFlags {
            rewrites: vec![
                "docker.io=mirror.lan/hub".into(),
                "docker.io/library=123.dkr.ecr.eu-west-1.amazonaws.com/docker-hub/library".into(),
            ],
            ..Default::default()
        };
        let regs = Registries::new(&flags, &Config::default()).unwrap();
        assert_eq!(
            regs.rewrite(&r("nginx:1.27")).unwrap().canonical(),
            "123.dkr.ecr.eu-west-1.amazonaws.com/docker-hub/library/nginx:1.27"
        );
        assert_eq!(
            regs.rewrite(&r("bitnami/redis:7")).unwrap().canonical(),
            "mirror.lan/hub/bitnami/redis:7"
        );
        assert_eq!(regs.rewrite(&r("ghcr.io/a/b:1")), None);
        // `docker.io/lib` must not match `docker.io/library`.
        let flags = RegistryFlags {
            rewrites: vec!["docker.io/lib=x.lan".into()],
            ..Default::default()
        };
        let regs = Registries::new(&flags, &Config::default()).unwrap();
        assert_eq!(regs.rewrite(&r("nginx")), None);
    }

    #[test]
    fn transports_follow_docker() {
        let flags = RegistryFlags {
            insecure: vec!["lan.example:5000".into()],
            ..Default::default()
        };
        let regs = Registries::new(&flags, &Config::default()).unwrap();
        let t = |h: &str| regs.transport(h, &regs.host(h));
        assert_eq!(t("127.0.0.1:5000"), Transport::Http);
        assert_eq!(t("[::1]:5000"), Transport::Http);
        assert_eq!(t("localhost"), Transport::Http);
        assert_eq!(t("ghcr.io"), Transport::Https);
        assert_eq!(t("10.0.0.1:5000"), Transport::Https);
        assert_eq!(t("lan.example:5000"), Transport::Insecure);
        let tls = HostSettings {
            insecure: Some(false),
            ..Default::default()
        };
        assert_eq!(regs.transport("127.0.0.1:5000", &tls), Transport::Https);
    }

    #[test]
    fn hosts_toml_mirrors_in_file_order() {
        let text = r#"
server = "https://registry-1.docker.io"

[host."https://second.lan/v2/hub"]
  capabilities = ["pull", "resolve"]
  override_path = true

[host."https://push-only.lan"]
  capabilities = ["push"]

[host."http://a-first.lan:5000"]
"#;
        let m = hosts_toml_mirrors(text);
        assert_eq!(
            m,
            [
                Endpoint {
                    host: "second.lan".into(),
                    prefix: "hub".into()
                },
                Endpoint {
                    host: "a-first.lan:5000".into(),
                    prefix: String::new()
                }
            ]
        );
        assert!(hosts_toml_mirrors("not toml [").is_empty());
    }

    #[test]
    fn bad_flags_are_errors() {
        let bad = |f: RegistryFlags| Registries::new(&f, &Config::default()).unwrap_err();
        assert!(
            bad(RegistryFlags {
                mirrors: vec!["docker.io".into()],
                ..Default::default()
            })
            .contains("REGISTRY=HOST")
        );
        assert!(
            bad(RegistryFlags {
                ca_files: vec!["/nonexistent/ca.pem".into()],
                ..Default::default()
            })
            .contains("/nonexistent/ca.pem")
        );
    }
}
