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

pub use super::endpoint::{Endpoint, canonical_host};
pub use super::hosts_toml::{HostsToml, TomlHost, parse_hosts_toml};
use super::hosts_toml::{dir_of_host, host_of_dir};

/// Where docker, podman and containerd keep per-host TLS files (and containerd its
/// `hosts.toml`), searched in this order. `~` is the home directory.
pub const CERTS_DIRS: [&str; 4] = [
    "~/.config/containers/certs.d",
    "/etc/containers/certs.d",
    "/etc/docker/certs.d",
    "/etc/containerd/certs.d",
];

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
    /// Where the registry itself is asked after its mirrors, when that is another host
    /// (a `hosts.toml` `server`).
    pub upstream: Option<Endpoint>,
    /// Plain HTTP, as an `http://` URL in a `hosts.toml` says.
    pub plain_http: bool,
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
    /// Mirrors of every host without its own, from a `_default/hosts.toml`.
    default_mirrors: Vec<Endpoint>,
    /// Where no request may go.
    pub destinations: std::sync::Arc<super::destinations::Destinations>,
}

/// Flags that shape the registries, besides the config file: how registries are reached
/// (TLS, insecure hosts, mirrors and rewrites) and where no request may go. The one clap
/// group outside `cli.rs`, so that the flags are declared once and not copied field by field.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RegistryFlags {
    /// Trust the CA certificates in this PEM file, besides the system roots (repeatable).
    /// `SSL_CERT_FILE` replaces the system roots, as in curl.
    #[arg(long = "ca-file", value_name = "PEM")]
    pub ca_files: Vec<PathBuf>,

    /// Reach this registry without TLS verification, or over plain HTTP when it has no TLS
    /// (HOST or HOST:PORT, repeatable). Loopback registries use plain HTTP anyway, as
    /// Docker does.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure: Vec<String>,

    /// Try HOST[/PREFIX] before REGISTRY, as containerd's hosts.toml mirrors do; a mirror
    /// that cannot answer passes to the next, then to REGISTRY (repeatable, in order).
    #[arg(long = "mirror", value_name = "REGISTRY=HOST[/PREFIX]")]
    pub mirrors: Vec<String>,

    /// Ask HOST[/PREFIX] instead of REGISTRY[/PREFIX], with no fallback: pull-through
    /// caches such as ECR, Harbor proxy projects and GitLab's dependency proxy (repeatable).
    #[arg(long = "rewrite", value_name = "REGISTRY[/PREFIX]=HOST[/PREFIX]")]
    pub rewrites: Vec<String>,

    /// Never contact this destination: a CIDR, an address, a host name, or `private`
    /// (loopback and the private ranges). Link-local and cloud-metadata addresses are always
    /// denied (repeatable; also `IMAGEGATE_DENY_DESTINATIONS`, comma-separated).
    #[arg(
        long = "deny-destination",
        value_name = "CIDR|HOST|private",
        env = "IMAGEGATE_DENY_DESTINATIONS",
        value_delimiter = ','
    )]
    pub deny: Vec<String>,
}

impl Registries {
    /// Builds the table from flags and the config. Files named in the config are relative
    /// to the config file's directory.
    pub fn new(flags: &RegistryFlags, config: &Config) -> Result<Registries, String> {
        let base = config.dir();
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let certs_dirs = CERTS_DIRS
            .iter()
            .filter_map(|d| match d.strip_prefix("~/") {
                Some(rest) => home.as_ref().map(|h| h.join(rest)),
                None => Some(PathBuf::from(d)),
            })
            .collect();
        let mut out = Registries {
            destinations: std::sync::Arc::new(super::destinations::Destinations::new(&flags.deny)?),
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
        out.read_hosts_tomls();
        out.refuse_denied_routes()?;
        Ok(out)
    }

    /// A mirror, rewrite or `hosts.toml` server may not lead to a denied destination.
    fn refuse_denied_routes(&self) -> Result<(), String> {
        let targets = self
            .rewrites
            .iter()
            .map(|(from, to)| (from.as_str(), to))
            .chain(self.hosts.iter().flat_map(|(h, s)| {
                s.mirrors
                    .iter()
                    .chain(s.upstream.iter())
                    .map(move |e| (h.as_str(), e))
            }))
            .chain(self.default_mirrors.iter().map(|e| ("_default", e)));
        for (from, to) in targets {
            if let Some(why) = self.destinations.denies_host(&to.host) {
                return Err(format!(
                    "registry {from} is routed to {}, which imagegate never contacts: {why}",
                    to.host
                ));
            }
        }
        Ok(())
    }

    /// Every `certs.d/<host>/hosts.toml` (the first directory that has one for a host
    /// wins). What the config or flags set is kept; the files only fill in.
    fn read_hosts_tomls(&mut self) {
        let mut seen = std::collections::HashSet::new();
        for dir in self.certs_dirs.clone() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            entries.sort();
            for sub in entries {
                let Some(name) = sub.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                let file = sub.join("hosts.toml");
                let Ok(text) = std::fs::read_to_string(&file) else {
                    continue;
                };
                let ns = host_of_dir(name);
                if !seen.insert(ns.clone()) {
                    continue;
                }
                let parsed = parse_hosts_toml(&text, &sub);
                for p in &parsed.problems {
                    log::warn!("{}: {p}", file.display());
                }
                self.apply_hosts_toml(&ns, parsed);
            }
        }
    }

    fn apply_hosts_toml(&mut self, ns: &str, t: HostsToml) {
        for m in &t.mirrors {
            self.fill_in(m);
        }
        let mirrors: Vec<Endpoint> = t.mirrors.into_iter().map(|m| m.endpoint).collect();
        if ns == "_default" {
            self.default_mirrors = mirrors;
            return;
        }
        let server = t.server.unwrap_or_else(|| TomlHost {
            endpoint: Endpoint {
                host: ns.to_string(),
                prefix: String::new(),
            },
            ..t.root_tls.clone()
        });
        self.fill_in(&server);
        let h = self.hosts.entry(ns.to_string()).or_default();
        if h.mirrors.is_empty() {
            h.mirrors = mirrors;
        }
        // Docker Hub's API host is Docker Hub: canonical names compare equal.
        let same = server.endpoint.prefix.is_empty() && canonical_host(&server.endpoint.host) == ns;
        if !same && h.upstream.is_none() {
            h.upstream = Some(server.endpoint);
        }
    }

    /// A `hosts.toml` endpoint's TLS, for its host, where nothing else set it.
    fn fill_in(&mut self, t: &TomlHost) {
        let h = self
            .hosts
            .entry(canonical_host(&t.endpoint.host))
            .or_default();
        if h.ca_files.is_empty() {
            h.ca_files.clone_from(&t.ca_files);
        }
        if h.client_cert.is_none() {
            h.client_cert.clone_from(&t.client);
        }
        if h.insecure.is_none() {
            h.insecure = t.skip_verify;
        }
        h.plain_http |= t.plain_http;
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
            let (cas, client) = read_certs_dir(&dir);
            h.ca_files.extend(cas);
            if h.client_cert.is_none() {
                h.client_cert = client;
            }
        }
        if h.mirrors.is_empty() && h.upstream.is_none() {
            h.mirrors = self
                .default_mirrors
                .iter()
                .filter(|m| m.host != host)
                .cloned()
                .collect();
        }
        h
    }

    /// How a host is reached.
    pub fn transport(&self, host: &str, settings: &HostSettings) -> Transport {
        match settings.insecure {
            Some(true) => Transport::Insecure,
            _ if settings.plain_http => Transport::Http,
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
        // containerd names `host:port` directories `host_port_`.
        let underscored = dir_of_host(host);
        self.certs_dirs.iter().find_map(|d| {
            [host, api, underscored.as_str()]
                .iter()
                .map(|h| d.join(h))
                .find(|p| p.is_dir())
        })
    }
}

fn check_readable(p: &Path) -> Result<(), String> {
    std::fs::metadata(p)
        .map(|_| ())
        .map_err(|e| format!("cannot read {}: {e}", p.display()))
}

/// CA files (`*.crt`) and a client pair (`*.cert` with its `*.key`) of one
/// `certs.d/<host>/` directory.
fn read_certs_dir(dir: &Path) -> (Vec<PathBuf>, Option<(PathBuf, PathBuf)>) {
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
    (cas, client)
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
