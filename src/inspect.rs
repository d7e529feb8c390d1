//! `imagegate inspect REF...`: for a developer at a terminal, what one reference resolves
//! to: its canonical form, the registry endpoint used, where the credentials come from, the
//! digest, media type and size, and for an index the platforms it holds.

use std::io::Write;
use std::time::Duration;

use serde::Serialize;

use crate::check::Status;
use crate::cli::{InspectArgs, InspectFormat, ProbeArgs};
use crate::error::Error;
use crate::image_ref::ImageRef;
use crate::resolve::{self, Resolution};

#[derive(Debug, Serialize)]
struct Inspected {
    image: String,
    canonical: Option<String>,
    endpoint: Option<String>,
    credentials: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    credentials_note: Option<String>,
    status: Status,
    digest: Option<String>,
    media_type: Option<String>,
    size: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    platforms: Vec<String>,
    message: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    suggestions: Vec<String>,
}

const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

pub fn run(args: &InspectArgs, out: &mut dyn Write) -> Result<i32, Error> {
    let (runtime, client) = probe_client(&args.probe, 8)?;
    let results: Vec<Inspected> = runtime.block_on(async {
        let mut results = Vec::new();
        for written in &args.refs {
            results.push(inspect_one(&client, written).await);
        }
        results
    });
    match args.probe.format {
        InspectFormat::Json => {
            let doc = serde_json::json!({ "version": 1, "images": results });
            serde_json::to_writer_pretty(&mut *out, &doc).map_err(|e| Error::Output(e.into()))?;
            writeln!(out).map_err(Error::Output)?;
        }
        InspectFormat::Human => {
            for (i, r) in results.iter().enumerate() {
                if i > 0 {
                    writeln!(out).map_err(Error::Output)?;
                }
                human(r, out).map_err(Error::Output)?;
            }
        }
    }
    let code = results
        .iter()
        .map(|r| match r.status {
            Status::Ok => 0,
            Status::NotFound | Status::Invalid => 1,
            _ => 3,
        })
        .fold(0, |worst, c| match (worst, c) {
            (1, _) | (_, 1) => 1,
            (0, c) => c,
            (w, _) => w,
        });
    Ok(code)
}

/// A runtime and a client for a command that asks a registry a few things for a person:
/// `requests` at once, an overall deadline of that many timeouts, and the registry settings
/// of the flags and the config file, read as a check reads them.
pub fn probe_client(
    args: &ProbeArgs,
    requests: u32,
) -> Result<(tokio::runtime::Runtime, resolve::Client), Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let cwd = std::env::current_dir().map_err(|e| Error::Path {
        path: ".".into(),
        source: e,
    })?;
    let trusted = crate::trust::load_trusted(args.config.as_deref())?;
    let repo = crate::trust::load_repo_from_disk(&cwd, trusted.as_ref())?;
    let config = crate::trust::merge(trusted, repo)?.config;
    let registries =
        resolve::hosts::Registries::new(&args.registry, &config).map_err(Error::Registries)?;
    let seconds = args.timeout.max(1);
    let timeout = Duration::from_secs(seconds);
    let opts = resolve::Options {
        concurrency: requests as usize,
        per_registry: requests as usize,
        timeout,
        deadline: tokio::time::Instant::now() + timeout * requests,
        deadline_secs: seconds * u64::from(requests),
        registries: std::sync::Arc::new(registries),
    };
    let client = resolve::Client::new(opts).map_err(Error::Registries)?;
    Ok((runtime, client))
}

async fn inspect_one(client: &resolve::Client, written: &str) -> Inspected {
    let mut out = Inspected {
        image: written.to_string(),
        canonical: None,
        endpoint: None,
        credentials: None,
        credentials_note: None,
        status: Status::Invalid,
        digest: None,
        media_type: None,
        size: None,
        platforms: Vec::new(),
        message: None,
        suggestions: Vec::new(),
    };
    let r = match ImageRef::parse(written) {
        Ok(r) => r,
        Err(e) => {
            out.message = Some(format!("not a valid image reference: {e}"));
            return out;
        }
    };
    out.canonical = Some(r.canonical());
    out.endpoint = Some(client.endpoint(&r));
    let (source, note) = client.credential_source(&r).await;
    out.credentials = Some(source);
    out.credentials_note = note;
    match client.resolve_routed(&r).await {
        Ok(found) => {
            out.status = Status::Ok;
            if let Some(via) = &found.via {
                out.endpoint = Some(format!("{} (answered by {via})", client.endpoint(&r)));
            }
            out.digest = found.digest.or_else(|| r.digest.clone());
            out.size = found.size;
            let media = found
                .media_type
                .map(|m| m.split(';').next().unwrap_or("").trim().to_string());
            if media.as_deref().is_some_and(|m| INDEX_TYPES.contains(&m)) {
                // Listing platforms needs the index itself: the one GET inspect makes.
                match client
                    .manifest(&client.answered(&r, found.via.as_deref()))
                    .await
                {
                    Ok(body) => {
                        out.platforms =
                            resolve::registry::index_platforms(&body).unwrap_or_default()
                    }
                    Err(e) => {
                        out.message = Some(format!("the index could not be read: {}", e.detail()))
                    }
                }
            }
            out.media_type = media;
        }
        Err(Resolution::NotFound) => {
            out.status = Status::NotFound;
            out.message = Some(format!(
                "{} has no manifest {}",
                r.domain,
                r.pull_reference()
            ));
            if r.digest.is_none() {
                match client.tags(&r, 5).await {
                    Ok(None) => {
                        out.message = Some(format!(
                            "the repository {}/{} does not exist",
                            r.domain, r.path
                        ));
                    }
                    Ok(Some(tags)) => {
                        out.suggestions = crate::suggest::nearby(r.pull_reference(), &tags)
                    }
                    Err(_) => {}
                }
            }
        }
        Err(e) => {
            out.status = crate::check::status_of(&e);
            out.message = Some(e.detail());
        }
    }
    out
}

fn human(r: &Inspected, out: &mut dyn Write) -> std::io::Result<()> {
    let status = serde_json::to_value(r.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let mut row = |k: &str, v: &str| writeln!(out, "{k:<12}{v}");
    row("reference", &r.image)?;
    if let Some(c) = &r.canonical {
        row("canonical", c)?;
    }
    if let Some(e) = &r.endpoint {
        row("endpoint", e)?;
    }
    if let Some(c) = &r.credentials {
        row("credentials", c)?;
    }
    if let Some(n) = &r.credentials_note {
        row("note", n)?;
    }
    row("status", &status)?;
    if let Some(d) = &r.digest {
        row("digest", d)?;
    }
    if let Some(m) = &r.media_type {
        row("media type", m)?;
    }
    if let Some(s) = r.size {
        row("size", &format!("{s} bytes"))?;
    }
    if !r.platforms.is_empty() {
        row("platforms", &r.platforms.join(", "))?;
    }
    if let Some(m) = &r.message {
        row("message", m)?;
    }
    if !r.suggestions.is_empty() {
        row("nearby tags", &r.suggestions.join(", "))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_of_an_index() {
        let body = br#"{"manifests":[{"platform":{"os":"linux","architecture":"amd64"}},{"platform":{"os":"linux","architecture":"arm","variant":"v7"}},{"annotations":{}}]}"#;
        assert_eq!(
            resolve::registry::index_platforms(body).unwrap(),
            ["linux/amd64", "linux/arm/v7"]
        );
        assert!(resolve::registry::index_platforms(b"not json").is_none());
    }
}
