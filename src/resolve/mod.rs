//! Resolution: the only async code. Every unique reference gets one manifest HEAD, run in
//! parallel under a global and a per-registry limit, and comes back as a [`Resolution`].
//! Nothing here panics on a registry's reply, and nothing here is a finding yet.

pub mod auth;
pub mod challenge;
pub mod charts;
pub mod concurrency;
pub mod credentials;
pub mod destinations;
pub mod endpoint;
pub mod hosts;
pub mod hosts_toml;
pub mod registry;
pub mod retry;
#[cfg(test)]
mod scripted;
mod tokens;
pub mod transport;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::time::Instant;

use crate::image_ref::ImageRef;
pub use registry::{Client, Found};
pub use transport::RequestCounts;

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
    /// Not asked: the destination is one imagegate never contacts.
    Refused(String),
    /// A pinned digest answered with a different or malformed `Docker-Content-Digest`.
    DigestMismatch(String),
}

impl Resolution {
    /// A manifest found with this digest, answered by the reference's own registry.
    pub fn found(digest: &str) -> Resolution {
        Resolution::Found(Found {
            digest: Some(digest.to_string()),
            media_type: None,
            size: None,
            via: None,
        })
    }

    /// What happened, in words, for messages and notes.
    pub fn detail(&self) -> String {
        match self {
            Resolution::Found(_) => "found".into(),
            Resolution::NotFound => "not found".into(),
            Resolution::Denied(d)
            | Resolution::Unreachable(d)
            | Resolution::RateLimited(d)
            | Resolution::RegistryError(d)
            | Resolution::Refused(d)
            | Resolution::DigestMismatch(d) => d.clone(),
        }
    }
}

/// Limits and network settings for a run.
#[derive(Debug, Clone)]
pub struct Options {
    pub concurrency: usize,
    pub per_registry: usize,
    pub timeout: Duration,
    pub deadline: Instant,
    pub deadline_secs: u64,
    /// Per-host transport, TLS, limits, mirrors, rewrites and credential sources.
    pub registries: Arc<hosts::Registries>,
}

/// Resolves every reference once, in parallel. `tick` is called as each one finishes.
pub async fn resolve_all(
    client: &Client,
    refs: Vec<ImageRef>,
    tick: &(dyn Fn() + Sync),
) -> HashMap<ImageRef, Resolution> {
    let opts = client.options();
    // One token request per batch of repositories instead of one per repository, for the
    // host each reference is asked first (its rewrite, first mirror, or hosts.toml server).
    let targets: Vec<ImageRef> = refs
        .iter()
        .filter_map(|r| client.routes(r).into_iter().next().map(|(t, _)| t))
        .collect();
    let _ = tokio::time::timeout_at(opts.deadline, client.prefetch_tokens(&targets)).await;
    futures::stream::iter(refs)
        .map(|r| async move {
            let res = match tokio::time::timeout_at(opts.deadline, client.resolve_routed(&r)).await
            {
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
