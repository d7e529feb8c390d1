//! Resolution: the only async code. Every unique reference gets one manifest HEAD, run in
//! parallel under a global and a per-registry limit, and comes back as a [`Resolution`].
//! Nothing here panics on a registry's reply, and nothing here is a finding yet.

pub mod auth;
pub mod registry;
pub mod retry;

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use futures::StreamExt;
use tokio::time::Instant;

use crate::image_ref::ImageRef;
pub use registry::{Client, Found, RequestCounts};

/// How one unique reference resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Found(Found),
    /// 404: the manifest (tag, digest or repository) does not exist.
    NotFound,
    /// 401/403 after authenticating: missing, or no access. Undecided.
    Denied(String),
    Unreachable(String),
    RateLimited(String),
    RegistryError(String),
}

/// Limits and network settings for a run.
#[derive(Debug, Clone)]
pub struct Options {
    pub concurrency: usize,
    pub per_registry: usize,
    pub timeout: Duration,
    pub deadline: Instant,
    pub deadline_secs: u64,
    /// Hosts (`host` or `host:port`) that speak plain HTTP besides loopback.
    pub insecure: Vec<String>,
    pub verbose: bool,
}

impl Options {
    /// Loopback registries speak plain HTTP (the Docker and containerd convention), and so
    /// do hosts named with `--insecure-registry`.
    pub fn plain_http(&self, host_port: &str) -> bool {
        if self.insecure.iter().any(|h| h == host_port) {
            return true;
        }
        let host = strip_port(host_port);
        if self.insecure.iter().any(|h| h == host) {
            return true;
        }
        host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    pub fn verbose_note(&self, message: &str) {
        if self.verbose {
            eprintln!("imagegate: {message}");
        }
    }
}

fn strip_port(host_port: &str) -> &str {
    if let Some(rest) = host_port.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(h, _)| h);
    }
    host_port.split_once(':').map_or(host_port, |(h, _)| h)
}

/// Resolves every reference once, in parallel. `tick` is called as each one finishes.
pub async fn resolve_all(
    client: &Client,
    refs: Vec<ImageRef>,
    tick: &(dyn Fn() + Sync),
) -> HashMap<ImageRef, Resolution> {
    let opts = client.options();
    // One token request per batch of repositories instead of one per repository.
    let _ = tokio::time::timeout_at(opts.deadline, client.prefetch_tokens(&refs)).await;
    futures::stream::iter(refs)
        .map(|r| async move {
            let res = match tokio::time::timeout_at(opts.deadline, client.resolve(&r)).await {
                Ok(Ok(found)) => Resolution::Found(found),
                Ok(Err(res)) => res,
                Err(_) => Resolution::Unreachable(format!(
                    "the overall deadline of {}s passed before the registry answered",
                    opts.deadline_secs
                )),
            };
            tick();
            (r, res)
        })
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(insecure: &[&str]) -> Options {
        Options {
            concurrency: 1,
            per_registry: 1,
            timeout: Duration::from_secs(1),
            deadline: Instant::now(),
            deadline_secs: 1,
            insecure: insecure.iter().map(|s| s.to_string()).collect(),
            verbose: false,
        }
    }

    #[test]
    fn loopback_and_listed_hosts_are_plain_http() {
        let o = opts(&["registry.internal:5000", "plain.example"]);
        for h in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
            "registry.internal:5000",
            "plain.example:443",
        ] {
            assert!(o.plain_http(h), "{h}");
        }
        for h in [
            "ghcr.io",
            "registry.internal",
            "10.0.0.1:5000",
            "[2001:db8::1]:5000",
        ] {
            assert!(!o.plain_http(h), "{h}");
        }
    }
}
