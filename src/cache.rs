//! The local result cache (`$XDG_CACHE_HOME/imagegate`), so the pre-push hook and repeated
//! runs do not ask again what was just proven. Only references that exist are kept: a
//! digest forever (its content cannot change), a tag for a short time to live. Failures
//! and undecided results are never kept, so a cache can never turn a failure into a pass.
//! An answer is kept under the route that gave it (every host asked, with its transport and
//! trust), so an answer from a mirror, a rewrite or a weaker transport is never reused by a
//! run that routes the reference otherwise (issue 13, row 6).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::image_ref::ImageRef;
use crate::resolve::Found;

/// Version 1 keyed answers by reference alone; it is never read.
const FILE: &str = "results-v2.json";

/// One remembered answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Kept {
    digest: Option<String>,
    media_type: Option<String>,
    size: Option<u64>,
    via: Option<String>,
    /// Seconds since the Unix epoch when it was learnt.
    at: u64,
}

/// The cache for a run.
#[derive(Debug)]
pub struct Cache {
    path: PathBuf,
    tag_ttl: Duration,
    entries: HashMap<String, Kept>,
    changed: bool,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The key of a reference asked along a route.
fn key(r: &ImageRef, route: &str) -> String {
    format!("{} via {route}", r.canonical())
}

/// A chart package kept by its digest (`sha256:…`), when it is still whole.
pub fn chart_package(digest: &str) -> Option<Vec<u8>> {
    let path = chart_path(digest)?;
    let bytes = std::fs::read(path).ok()?;
    crate::resolve::charts::matches_digest(&bytes, digest).then_some(bytes)
}

/// Keeps a chart package under its digest; failing to write only costs a download.
pub fn keep_chart_package(digest: &str, bytes: &[u8]) {
    let Some(path) = chart_path(digest) else {
        return;
    };
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    if std::fs::write(&tmp, bytes).is_ok() {
        let _ = std::fs::rename(&tmp, &path);
    }
}

/// `charts/sha256-<hex>.tgz` in the cache dir; only a valid digest names a file, so no
/// name from a registry or index can lead out of it.
fn chart_path(digest: &str) -> Option<PathBuf> {
    if !crate::image_ref::is_valid_digest(digest) || !digest.starts_with("sha256:") {
        return None;
    }
    Some(
        dir()?
            .join("charts")
            .join(format!("{}.tgz", digest.replace(':', "-"))),
    )
}

/// `$XDG_CACHE_HOME/imagegate`, else `~/.cache/imagegate`.
pub fn dir() -> Option<PathBuf> {
    crate::paths::cache_dir()
}

impl Cache {
    /// Opens the cache. A missing or unreadable file is an empty cache, never an error.
    pub fn open(tag_ttl: Duration) -> Option<Cache> {
        let path = dir()?.join(FILE);
        let entries = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Some(Cache {
            path,
            tag_ttl,
            entries,
            changed: false,
        })
    }

    fn fresh(&self, r: &ImageRef, kept: &Kept) -> bool {
        r.digest.is_some() || now().saturating_sub(kept.at) < self.tag_ttl.as_secs()
    }

    /// A remembered answer for a reference asked along `route`, when it is still fresh.
    pub fn get(&self, r: &ImageRef, route: &str) -> Option<Found> {
        let kept = self.entries.get(&key(r, route))?;
        self.fresh(r, kept).then(|| Found {
            digest: kept.digest.clone(),
            media_type: kept.media_type.clone(),
            size: kept.size,
            via: kept.via.clone(),
        })
    }

    pub fn put(&mut self, r: &ImageRef, route: &str, found: &Found) {
        self.entries.insert(
            key(r, route),
            Kept {
                digest: found.digest.clone(),
                media_type: found.media_type.clone(),
                size: found.size,
                via: found.via.clone(),
                at: now(),
            },
        );
        self.changed = true;
    }

    /// Writes the cache back (atomically, dropping expired tags). Failing to write only
    /// costs the next run some requests, so it is not an error.
    pub fn save(mut self) {
        if !self.changed {
            return;
        }
        let ttl = self.tag_ttl.as_secs();
        let t = now();
        self.entries
            .retain(|k, v| k.contains("@sha256:") || t.saturating_sub(v.at) < ttl);
        let Some(parent) = self.path.parent() else {
            return;
        };
        let _ = std::fs::create_dir_all(parent);
        let tmp = self
            .path
            .with_extension(format!("tmp{}", std::process::id()));
        if let Ok(bytes) = serde_json::to_vec(&self.entries)
            && std::fs::write(&tmp, bytes).is_ok()
        {
            let _ = std::fs::rename(&tmp, &self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_never_expire_and_tags_do() {
        let mut c = Cache {
            path: PathBuf::from("/nonexistent/x.json"),
            tag_ttl: Duration::from_secs(60),
            entries: HashMap::new(),
            changed: false,
        };
        let found = Found {
            digest: Some("sha256:aa".into()),
            media_type: None,
            size: Some(1),
            via: None,
        };
        let tag = ImageRef::parse("ghcr.io/a/b:1").unwrap();
        let digest = ImageRef::parse(&format!("ghcr.io/a/b@sha256:{}", "a".repeat(64))).unwrap();
        c.put(&tag, "r", &found);
        c.put(&digest, "r", &found);
        assert_eq!(c.get(&tag, "r"), Some(found.clone()));
        assert_eq!(
            c.get(&tag, "mirror"),
            None,
            "another route is another answer"
        );
        for kept in c.entries.values_mut() {
            kept.at -= 3600;
        }
        assert_eq!(c.get(&tag, "r"), None, "an old tag answer is stale");
        assert_eq!(c.get(&digest, "r"), Some(found), "a digest answer never is");
    }
}
