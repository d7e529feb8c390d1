//! Charts from registries and Helm repositories, on the registry client's layers: a
//! classic repository's `index.yaml` and chart packages (plain GETs of static files), and
//! an OCI chart's content layer. Every request goes through the transport (deny list,
//! per-host TLS, limits, retries, deadline); the only credentials sent are those found for
//! the URL's own host by the credential search, and never over plain HTTP unless a trusted
//! setting made that host plain or insecure. Bodies are bounded.

use reqwest::header::{ACCEPT, AUTHORIZATION};
use reqwest::{Response, Url};
use sha2::Digest;

use super::Resolution;
use super::auth::refused;
use super::hosts::Transport as Scheme;
use super::registry::Client;
use super::transport::final_status;
use crate::image_ref::ImageRef;

/// Helm's media type for a chart's content layer.
pub const CHART_LAYER: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";

/// Why a chart file could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    Failed(Resolution),
    /// Larger than the limit: a finding about the input, not an outage.
    TooLarge(String),
}

impl From<Resolution> for FetchError {
    fn from(r: Resolution) -> FetchError {
        FetchError::Failed(r)
    }
}

/// Reads a body up to `limit` bytes.
async fn read_bounded(
    mut response: Response,
    limit: usize,
    what: &str,
) -> Result<Vec<u8>, FetchError> {
    let large = || {
        FetchError::TooLarge(format!(
            "the {what} is larger than the limit of {limit} bytes"
        ))
    };
    if response.content_length().is_some_and(|l| l > limit as u64) {
        return Err(large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| {
        FetchError::Failed(Resolution::RegistryError(format!(
            "the {what} could not be read: {e}"
        )))
    })? {
        if body.len() + chunk.len() > limit {
            return Err(large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `host[:port]` of a URL, as hosts are keyed.
fn domain(url: &Url) -> Option<String> {
    let host = url.host_str()?;
    Some(match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    })
}

impl Client {
    /// GETs a file of a classic Helm repository (`index.yaml`, a chart package).
    pub async fn fetch_url(
        &self,
        url: &str,
        limit: usize,
        what: &str,
    ) -> Result<Vec<u8>, FetchError> {
        let parsed = Url::parse(url)
            .map_err(|e| Resolution::RegistryError(format!("`{url}` is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(
                Resolution::Refused(format!("`{}` URLs are not fetched", parsed.scheme())).into(),
            );
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            // The checked repository may not choose credentials.
            return Err(Resolution::Refused("the URL carries credentials".into()).into());
        }
        let domain = domain(&parsed)
            .ok_or_else(|| Resolution::RegistryError(format!("`{url}` names no host")))?;
        let host = self.auth.host(&domain);
        let http = host.http()?;
        // Credentials of this host only, and only where TLS protects them (or a trusted
        // setting says the host is plain or insecure).
        let plain_ok = host.transport != Scheme::Https;
        let header = if parsed.scheme() == "https" || plain_ok {
            let creds = self.auth.credentials(&host).await;
            creds
                .for_repository(parsed.path().trim_start_matches('/'))
                .and_then(|(_, s)| s.secret.direct_header())
        } else {
            None
        };
        let with_credentials = header.is_some();
        let stats = &self.auth.transport.stats;
        let response = self
            .auth
            .transport
            .send(&host, &stats.gets, true, || {
                let req = http.get(parsed.clone());
                match &header {
                    Some(h) => req.header(AUTHORIZATION, h),
                    None => req,
                }
            })
            .await?;
        match response.status().as_u16() {
            200 => read_bounded(response, limit, what).await,
            404 => Err(Resolution::NotFound.into()),
            401 | 403 => Err(Resolution::Denied(format!(
                "{domain} answered {} {}",
                response.status().as_u16(),
                if with_credentials {
                    "with credentials"
                } else {
                    "anonymously"
                }
            ))
            .into()),
            _ => Err(final_status(response.status(), &format!("{what} GET")).into()),
        }
    }

    /// An OCI chart's content layer and its digest: the manifest, then the layer's blob,
    /// whose content must match its digest.
    pub async fn oci_chart(
        &self,
        r: &ImageRef,
        limit: usize,
    ) -> Result<(Vec<u8>, String), FetchError> {
        let body = self.manifest(r).await?;
        let malformed = |why: &str| {
            FetchError::Failed(Resolution::RegistryError(format!(
                "the chart manifest {why}"
            )))
        };
        let v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|_| malformed("is not JSON"))?;
        let layer = v["layers"]
            .as_array()
            .and_then(|l| l.iter().find(|l| l["mediaType"] == CHART_LAYER))
            .ok_or_else(|| malformed("has no Helm chart layer"))?;
        let digest = layer["digest"]
            .as_str()
            .filter(|d| crate::image_ref::is_valid_digest(d))
            .ok_or_else(|| malformed("names no valid layer digest"))?
            .to_string();
        if layer["size"].as_u64().is_some_and(|s| s > limit as u64) {
            return Err(FetchError::TooLarge(format!(
                "the chart layer is {} bytes, more than the limit of {limit}",
                layer["size"]
            )));
        }
        let auth = self.auth.authorize(r).await?;
        let url = format!("{}/v2/{}/blobs/{digest}", auth.host.base(), r.path);
        let stats = &self.auth.transport.stats;
        let http = auth.host.http()?;
        let response = self
            .auth
            .transport
            .send(&auth.host, &stats.gets, true, || {
                let req = http.get(&url).header(ACCEPT, CHART_LAYER);
                match &auth.header {
                    Some(h) => req.header(AUTHORIZATION, h),
                    None => req,
                }
            })
            .await?;
        let blob = match response.status().as_u16() {
            200 => read_bounded(response, limit, "chart layer").await?,
            404 => return Err(Resolution::NotFound.into()),
            s => {
                return Err(refused(
                    &auth,
                    reqwest::StatusCode::from_u16(s).unwrap_or_default(),
                    "chart layer GET",
                )
                .into());
            }
        };
        if !matches_digest(&blob, &digest) {
            return Err(Resolution::DigestMismatch(format!(
                "the chart layer's content does not match its digest {digest}"
            ))
            .into());
        }
        Ok((blob, digest))
    }
}

/// Whether bytes have a `sha256:` digest.
pub fn matches_digest(bytes: &[u8], digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| {
        let sum = sha2::Sha256::digest(bytes);
        let ours: String = sum.iter().map(|b| format!("{b:02x}")).collect();
        ours == hex
    })
}
