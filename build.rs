//! Stamps the version with the commit it was built from: `imagegate --version` prints
//! `imagegate 0.1.0 (1a2b3c4d5e6f)`. The commit comes from `GIT_HASH` when set (release
//! builds, builds from a source archive), else from `git rev-parse`; outside a git checkout
//! the version is printed alone.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

fn main() {
    println!("cargo:rerun-if-env-changed=GIT_HASH");
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let commit = std::env::var("GIT_HASH")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .map(|h| h.trim().chars().take(12).collect::<String>())
        .or_else(|| {
            // Only this package's own checkout counts, not a repository it is vendored in.
            let top = git(&["rev-parse", "--show-toplevel"])?;
            let here = std::env::var("CARGO_MANIFEST_DIR").ok()?;
            let (top, here) = (
                Path::new(&top).canonicalize().ok()?,
                Path::new(&here).canonicalize().ok()?,
            );
            if top != here {
                return None;
            }
            // Rebuild when HEAD moves: HEAD itself, the branch it names, packed refs.
            for rel in ["HEAD", "packed-refs"] {
                if let Some(p) =
                    git(&["rev-parse", "--git-path", rel]).filter(|p| Path::new(p).exists())
                {
                    println!("cargo:rerun-if-changed={p}");
                }
            }
            if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"])
                && let Some(p) =
                    git(&["rev-parse", "--git-path", &branch]).filter(|p| Path::new(p).exists())
            {
                println!("cargo:rerun-if-changed={p}");
            }
            git(&["rev-parse", "--short=12", "HEAD"])
        });
    let full = match commit {
        Some(c) => format!("{version} ({c})"),
        None => version,
    };
    println!("cargo:rustc-env=IMAGEGATE_VERSION={full}");
}
