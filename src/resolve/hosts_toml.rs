//! containerd's `hosts.toml`, read as containerd reads it: mirrors (`[host."URL"]` with their
//! capabilities), `server`, `ca`, `client`, `skip_verify`, `http://` URLs, `override_path`
//! and API roots under `/v2`, and the `host_port_` directory names of `certs.d`.

use std::path::{Path, PathBuf};

use super::endpoint::{Endpoint, canonical_host};

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
pub(super) fn host_of_dir(name: &str) -> String {
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
pub(super) fn dir_of_host(host: &str) -> String {
    match host.rsplit_once(':') {
        Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{h}_{port}_")
        }
        _ => host.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
