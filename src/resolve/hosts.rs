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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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

/// Flags that shape the registries, besides the config file.
#[derive(Debug, Clone, Default)]
pub struct RegistryFlags {
    pub ca_files: Vec<PathBuf>,
    pub insecure: Vec<String>,
    pub mirrors: Vec<String>,
    pub rewrites: Vec<String>,
    /// Trusted additions to the destinations never contacted.
    pub deny: Vec<String>,
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

/// `docker.io` for Docker Hub's other names; other hosts lower-cased.
pub fn canonical_host(h: &str) -> String {
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

/// One endpoint of a containerd `hosts.toml` (a mirror, or the `server`) with its TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TomlHost {
    pub endpoint: Endpoint,
    pub plain_http: bool,
    pub ca_files: Vec<PathBuf>,
    pub client: Option<(PathBuf, PathBuf)>,
    pub skip_verify: Option<bool>,
}

/// What a `hosts.toml` says, as far as resolving goes.
#[derive(Debug, Default)]
pub struct HostsToml {
    /// `[host."URL"]` tables that can resolve, in file order.
    pub mirrors: Vec<TomlHost>,
    /// `server`, with the top-level TLS keys.
    pub server: Option<TomlHost>,
    /// The top-level TLS keys when there is no `server` (they are the registry's own).
    pub root_tls: TomlHost,
    /// What could not be followed, said as a warning.
    pub problems: Vec<String>,
}

/// Reads a containerd `hosts.toml` with containerd's rules: an URL's path is its API root
/// with `/v2` added unless `override_path` is set; `ca` and `client` (a PEM file, a list
/// of them, or `[cert, key]` pairs) are relative to the file's directory; `skip_verify`;
/// and only tables whose `capabilities` include `resolve` (or name none) are mirrors.
pub fn parse_hosts_toml(text: &str, dir: &Path) -> HostsToml {
    let mut out = HostsToml::default();
    let doc = match toml::from_str::<toml::Table>(text) {
        Ok(doc) => doc,
        Err(e) => {
            out.problems
                .push(format!("not TOML, ignored: {}", e.message()));
            return out;
        }
    };
    out.root_tls = toml_host(None, &doc, dir, &mut out.problems).unwrap_or_default();
    if let Some(server) = doc.get("server").and_then(|v| v.as_str()) {
        out.server = toml_host(Some(server), &doc, dir, &mut out.problems);
    }
    let Some(hosts) = doc.get("host").and_then(|h| h.as_table()) else {
        return out;
    };
    // Without its `preserve_order` feature the toml crate sorts table keys, so the file's
    // order is recovered from where each URL stands in the text.
    let mut found: Vec<(usize, TomlHost)> = hosts
        .iter()
        .filter(|(_, v)| {
            v.get("capabilities")
                .and_then(|c| c.as_array())
                .is_none_or(|caps| caps.iter().any(|c| c.as_str() == Some("resolve")))
        })
        .filter_map(|(url, v)| {
            let at = text.find(&format!("\"{url}\"")).unwrap_or(usize::MAX);
            let table = v.as_table()?;
            Some((at, toml_host(Some(url), table, dir, &mut out.problems)?))
        })
        .collect();
    found.sort_by_key(|(at, _)| *at);
    out.mirrors = found.into_iter().map(|(_, h)| h).collect();
    out
}

/// One endpoint: its URL (none for the top-level TLS keys alone) and TLS keys.
fn toml_host(
    url: Option<&str>,
    table: &toml::Table,
    dir: &Path,
    problems: &mut Vec<String>,
) -> Option<TomlHost> {
    let file = |p: &str| dir.join(p);
    let strings = |v: &toml::Value| -> Vec<String> {
        match v {
            toml::Value::String(s) => vec![s.clone()],
            toml::Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    };
    let mut host = TomlHost {
        ca_files: table
            .get("ca")
            .map(strings)
            .unwrap_or_default()
            .iter()
            .map(|p| file(p))
            .collect(),
        skip_verify: table.get("skip_verify").and_then(|v| v.as_bool()),
        ..TomlHost::default()
    };
    match table.get("client") {
        Some(toml::Value::String(pem)) => host.client = Some((file(pem), file(pem))),
        Some(toml::Value::Array(items)) => {
            host.client = items.iter().find_map(|i| match i {
                toml::Value::String(pem) => Some((file(pem), file(pem))),
                toml::Value::Array(pair) => match (pair.first()?.as_str(), pair.get(1)?.as_str()) {
                    (Some(c), Some(k)) => Some((file(c), file(k))),
                    _ => None,
                },
                _ => None,
            });
        }
        _ => {}
    }
    let Some(url) = url else {
        return Some(host);
    };
    let with_scheme = if url.starts_with("http") {
        url.to_string()
    } else {
        format!("https://{url}")
    };
    host.plain_http = with_scheme.starts_with("http://");
    let Ok(ep) = Endpoint::parse(&with_scheme) else {
        problems.push(format!("`{url}` is not a registry URL, passed over"));
        return None;
    };
    let override_path = table.get("override_path").and_then(|v| v.as_bool()) == Some(true);
    let mut root = ep.prefix.trim_matches('/').to_string();
    if !override_path && root != "v2" && !root.ends_with("/v2") {
        root = if root.is_empty() {
            "v2".into()
        } else {
            format!("{root}/v2")
        };
    }
    // imagegate asks `/v2/<prefix>/<name>/...`: an API root elsewhere cannot be followed.
    let prefix = match root.strip_prefix("v2") {
        Some("") => String::new(),
        Some(rest) if rest.starts_with('/') => rest.trim_start_matches('/').to_string(),
        _ => {
            problems.push(format!(
                "`{url}`: an API root at /{root} (not under /v2) is not supported, passed over"
            ));
            return None;
        }
    };
    host.endpoint = Endpoint { prefix, ..ep };
    Some(host)
}

/// The registry a `certs.d` directory name stands for (`host_port_` is `host:port`).
fn host_of_dir(name: &str) -> String {
    if let Some(rest) = name.strip_suffix('_')
        && let Some((host, port)) = rest.rsplit_once('_')
        && !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
    {
        return canonical_host(&format!("{host}:{port}"));
    }
    if name == "_default" {
        return name.to_string();
    }
    canonical_host(name)
}

/// containerd's directory name for a host (`host:port` → `host_port_`).
fn dir_of_host(host: &str) -> String {
    match host.rsplit_once(':') {
        Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{h}_{port}_")
        }
        _ => host.to_string(),
    }
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
    fn hosts_toml_as_containerd_reads_it() {
        let text = r#"
server = "https://registry-1.docker.io"
ca = "root.pem"

[host."https://second.lan/v2/hub"]
  capabilities = ["pull", "resolve"]
  override_path = true
  ca = ["a.pem", "/abs/b.pem"]
  client = [["c.cert", "c.key"]]

[host."https://push-only.lan"]
  capabilities = ["push"]

[host."http://a-first.lan:5000"]
  skip_verify = true

[host."https://artifactory.lan/api/docker/hub"]

[host."mirror.lan/v2/cache"]
"#;
        let dir = Path::new("/etc/containerd/certs.d/docker.io");
        let t = parse_hosts_toml(text, dir);
        let eps: Vec<(&str, &str)> = t
            .mirrors
            .iter()
            .map(|m| (m.endpoint.host.as_str(), m.endpoint.prefix.as_str()))
            .collect();
        // containerd adds /v2 to a path unless override_path: `cache/v2` under /v2/.
        assert_eq!(
            eps,
            [
                ("second.lan", "hub"),
                ("a-first.lan:5000", ""),
                ("mirror.lan", "cache/v2")
            ]
        );
        let second = &t.mirrors[0];
        assert_eq!(
            second.ca_files,
            [dir.join("a.pem"), PathBuf::from("/abs/b.pem")]
        );
        assert_eq!(second.client, Some((dir.join("c.cert"), dir.join("c.key"))));
        assert!(t.mirrors[1].plain_http && t.mirrors[1].skip_verify == Some(true));
        let server = t.server.unwrap();
        assert_eq!(server.endpoint.host, "registry-1.docker.io");
        assert_eq!(server.ca_files, [dir.join("root.pem")]);
        assert_eq!(t.problems.len(), 1, "{:?}", t.problems);
        assert!(
            t.problems[0].contains("artifactory.lan"),
            "{:?}",
            t.problems
        );
        assert!(!parse_hosts_toml("not toml [", dir).problems.is_empty());
        assert_eq!(host_of_dir("registry.lan_5000_"), "registry.lan:5000");
        assert_eq!(dir_of_host("registry.lan:5000"), "registry.lan_5000_");
        assert_eq!(host_of_dir("index.docker.io"), "docker.io");
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
