//! A registry host and repository prefix as mirrors, rewrites and `hosts.toml` servers name
//! them, and Docker Hub's canonical name.

use crate::image_ref::ImageRef;

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

/// `docker.io` for Docker Hub's other names; other hosts lower-cased.
pub fn canonical_host(h: &str) -> String {
    match h.to_ascii_lowercase().as_str() {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".into(),
        other => other.to_string(),
    }
}
