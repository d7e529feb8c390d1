//! `imagegate auth HOST[/REPOSITORY]`: says where the credentials for a registry come from
//! (a file or a variable, never the secret) and whether the registry accepts them, so a
//! failing check can be told apart from a missing login in one command.

use std::io::Write;

use serde::Serialize;

use crate::cli::{AuthArgs, InspectFormat};
use crate::error::Error;
use crate::resolve::Resolution;

#[derive(Debug, Serialize)]
struct AuthReport {
    registry: String,
    repository: Option<String>,
    endpoint: String,
    credentials: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    /// `accepted`, `rejected` or `undecided`.
    result: &'static str,
    message: String,
}

pub fn run(args: &AuthArgs, out: &mut dyn Write) -> Result<i32, Error> {
    let (domain, repo) = match args.target.split_once('/') {
        Some((d, r)) if !r.is_empty() => (d.to_string(), Some(r.to_string())),
        _ => (args.target.trim_end_matches('/').to_string(), None),
    };
    let domain = match domain.as_str() {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        d => d.to_ascii_lowercase(),
    };
    let probe = crate::image_ref::ImageRef {
        domain: domain.clone(),
        path: repo.clone().unwrap_or_default(),
        tag: None,
        digest: None,
    };
    // Sequential: a ping, then a token or a login request; four timeouts bound it.
    let (runtime, client) = crate::inspect::probe_client(&args.probe, 4)?;
    let report = runtime.block_on(async {
        let (credentials, note) = client.credential_source(&probe).await;
        let checked = client.login_check(&domain, repo.as_deref()).await;
        let (result, message) = match checked {
            Ok(m) => ("accepted", m),
            Err(Resolution::Denied(m)) => ("rejected", m),
            Err(e) => ("undecided", e.detail()),
        };
        AuthReport {
            endpoint: client.endpoint(&probe),
            registry: domain.clone(),
            repository: repo.clone(),
            credentials,
            note,
            result,
            message,
        }
    });
    match args.probe.format {
        InspectFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &report)
                .map_err(|e| Error::Output(e.into()))?;
            writeln!(out).map_err(Error::Output)?;
        }
        InspectFormat::Human => {
            let mut row = |k: &str, v: &str| writeln!(out, "{k:<12}{v}").map_err(Error::Output);
            row("registry", &report.registry)?;
            if let Some(r) = &report.repository {
                row("repository", r)?;
            }
            row("endpoint", &report.endpoint)?;
            row("credentials", &report.credentials)?;
            if let Some(n) = &report.note {
                row("note", n)?;
            }
            row("result", &format!("{}: {}", report.result, report.message))?;
        }
    }
    Ok(match report.result {
        "accepted" => 0,
        "rejected" => 1,
        _ => 3,
    })
}
