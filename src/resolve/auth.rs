//! The registry client's middle layer: who imagegate is to a registry. The `/v2/` challenge
//! (one ping per host), the credentials found for a host (looked up once, off the runtime),
//! and pull tokens (single-flight per repository, batched scopes, realm rules). It sends
//! through the transport layer and knows nothing of manifests.

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode};
use tokio::sync::OnceCell;

use super::Resolution;
use super::challenge::{self, Challenge};
use super::credentials::{self, HostCredentials, Secret};
use super::hosts::Transport as Scheme;
use super::transport::{Host, Transport, describe_status, final_status, with_note};
use crate::image_ref::ImageRef;

/// How long a credential helper may take.
const HELPER_TIMEOUT: Duration = Duration::from_secs(10);

/// A token, when it expires, and whether it was fetched for a batch of repositories.
pub(super) type TokenResult = Result<(String, tokio::time::Instant, bool), Resolution>;

/// A host with what the auth layer knows of it.
pub struct HostAuth {
    pub host: Arc<Host>,
    challenge: OnceCell<Result<Challenge, Resolution>>,
    credentials: OnceCell<HostCredentials>,
    pub(super) tokens: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<TokenResult>>>>>,
}

impl std::ops::Deref for HostAuth {
    type Target = Host;

    fn deref(&self) -> &Host {
        &self.host
    }
}

/// What a request to one repository carries.
pub struct Authorized {
    pub host: Arc<HostAuth>,
    pub header: Option<String>,
    pub with_credentials: bool,
    pub note: Option<String>,
    /// The token was fetched for a batch of repositories.
    pub batched: bool,
}

/// Classifies a 401/403 (undecided) or any other unexpected status.
pub fn refused(auth: &Authorized, status: StatusCode, what: &str) -> Resolution {
    match status.as_u16() {
        401 | 403 => {
            let who = if auth.with_credentials {
                "with credentials"
            } else {
                "anonymously"
            };
            with_note(
                Resolution::Denied(format!(
                    "{} answered {} {who}: the image does not exist or needs credentials",
                    auth.host.domain,
                    describe_status(status)
                )),
                auth.note.as_deref(),
            )
        }
        _ => final_status(status, what),
    }
}

/// The authentication layer of a run.
pub struct Auth {
    pub transport: Transport,
    hosts: Mutex<HashMap<String, Arc<HostAuth>>>,
}

impl Auth {
    pub fn new(transport: Transport) -> Auth {
        Auth {
            transport,
            hosts: Mutex::new(HashMap::new()),
        }
    }

    /// A host's auth state (and its transport state), made on first use.
    pub fn host(&self, domain: &str) -> Arc<HostAuth> {
        let host = self.transport.host(domain);
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        hosts
            .entry(domain.to_string())
            .or_insert_with(|| {
                Arc::new(HostAuth {
                    host,
                    challenge: OnceCell::new(),
                    credentials: OnceCell::new(),
                    tokens: Mutex::new(HashMap::new()),
                })
            })
            .clone()
    }

    /// The host, its auth header for a repository, and a note about credentials.
    pub async fn authorize(&self, r: &ImageRef) -> Result<Authorized, Resolution> {
        let host = self.host(&r.domain);
        let challenge = self.challenge(&host).await?;
        let creds = self.credentials(&host).await;
        let note = creds.note.clone();
        let secret = creds.for_repository(&r.path).map(|(_, s)| &s.secret);
        let mut batched = false;
        let header = match (&challenge, secret) {
            (Challenge::None, _) => None,
            (Challenge::Basic, _) | (_, Some(Secret::Bearer(_))) => {
                secret.and_then(Secret::direct_header)
            }
            (Challenge::Bearer { realm, service }, _) => {
                let (token, from_batch) = self
                    .token(&host, realm, service.as_deref(), &r.path, secret)
                    .await
                    .map_err(|res| with_note(res, note.as_deref()))?;
                batched = from_batch;
                Some(format!("Bearer {token}"))
            }
        };
        Ok(Authorized {
            with_credentials: header.is_some() && secret.is_some(),
            host,
            header,
            note,
            batched,
        })
    }

    /// Where a repository's credentials come from (never the secret), and the note of a
    /// lookup that failed.
    pub async fn credential_source(&self, r: &ImageRef) -> (String, Option<String>) {
        let host = self.host(&r.domain);
        let creds = self.credentials(&host).await;
        let source = creds.for_repository(&r.path).map_or_else(
            || "anonymous".to_string(),
            |(_, s)| format!("{} ({})", s.source, s.secret.kind()),
        );
        (source, creds.note.clone())
    }

    /// Whether a registry accepts the credentials found for it, as `docker login` checks:
    /// Basic credentials on `/v2/`, or a token request (for `repo`'s pull scope when one is
    /// given). `Ok` says what was accepted; `Denied` means rejected.
    pub async fn login_check(
        &self,
        domain: &str,
        repo: Option<&str>,
    ) -> Result<String, Resolution> {
        let host = self.host(domain);
        let challenge = self.challenge(&host).await?;
        let creds = self.credentials(&host).await;
        let secret = creds
            .for_repository(repo.unwrap_or(""))
            .map(|(_, s)| &s.secret);
        match (&challenge, secret) {
            (Challenge::None, _) => Ok(format!(
                "{domain} asks for no credentials: anonymous access works"
            )),
            (_, None) => Err(Resolution::Denied(format!(
                "{domain} asks for credentials and none were found"
            ))),
            (Challenge::Basic, Some(secret)) => {
                let Some(header) = secret.direct_header() else {
                    return Err(Resolution::Denied(format!(
                        "{domain} asks for Basic credentials, and an identity token cannot be used for Basic"
                    )));
                };
                let http = host.http()?;
                let url = format!("{}/v2/", host.base());
                let response = self
                    .transport
                    .send(&host, &self.transport.stats.pings, false, || {
                        http.get(&url).header(AUTHORIZATION, &header)
                    })
                    .await?;
                match response.status().as_u16() {
                    200..=299 => Ok(format!("{domain} accepted them (Basic)")),
                    401 | 403 => Err(Resolution::Denied(format!(
                        "{domain} rejected them ({})",
                        describe_status(response.status())
                    ))),
                    _ => Err(final_status(response.status(), "registry API check (/v2/)")),
                }
            }
            (Challenge::Bearer { .. }, Some(Secret::Bearer(_))) => Ok(format!(
                "a bearer token is sent as is; {domain} checks it on each request"
            )),
            (Challenge::Bearer { realm, service }, Some(secret)) => {
                let repos: Vec<&str> = repo.into_iter().collect();
                self.fetch_token(&host, realm, service.as_deref(), &repos, Some(secret))
                    .await
                    .map(|_| format!("the token service of {domain} accepted them"))
            }
        }
    }

    /// Sends one request with the host's permit and the reference's authorization.
    pub async fn request(
        &self,
        auth: &Authorized,
        counter: &AtomicUsize,
        method: Method,
        url: &str,
        accept: Option<&str>,
    ) -> Result<Response, Resolution> {
        let http = auth.host.http()?;
        self.transport
            .send(&auth.host, counter, true, || {
                let mut req = http.request(method.clone(), url);
                if let Some(a) = accept {
                    req = req.header(ACCEPT, a);
                }
                match &auth.header {
                    Some(h) => req.header(AUTHORIZATION, h),
                    None => req,
                }
            })
            .await
    }

    /// `GET /v2/`, once per host, to learn how it wants to be authenticated. An insecure
    /// host that does not speak TLS is asked again over plain HTTP, as docker does.
    pub async fn ping(&self, host: &HostAuth) -> Result<Challenge, Resolution> {
        let http = host.http()?;
        let url = format!("{}/v2/", host.base());
        let mut sent = self
            .transport
            .send(host, &self.transport.stats.pings, false, || http.get(&url))
            .await;
        if host.transport == Scheme::Insecure && matches!(sent, Err(Resolution::Unreachable(_))) {
            let plain = format!("http://{}", host.base().trim_start_matches("https://"));
            log_note(&format!("{} has no TLS; trying plain HTTP", host.domain));
            let url = format!("{plain}/v2/");
            sent = self
                .transport
                .send(host, &self.transport.stats.pings, false, || http.get(&url))
                .await;
            if sent.is_ok() {
                *host.base.lock().unwrap_or_else(|e| e.into_inner()) = plain;
            }
        }
        let response = sent?;
        match response.status().as_u16() {
            200..=299 => Ok(Challenge::None),
            401 => response
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .and_then(challenge::parse_challenge)
                .ok_or_else(|| {
                    Resolution::RegistryError(format!(
                        "{} answered 401 without a usable WWW-Authenticate challenge",
                        host.domain
                    ))
                }),
            _ => Err(final_status(response.status(), "registry API check (/v2/)")),
        }
    }

    /// The host's credentials, looked up once, off the runtime, with a timeout (a
    /// credential helper may hang). A failed lookup means anonymous, with a note.
    pub async fn credentials<'h>(&self, host: &'h HostAuth) -> &'h HostCredentials {
        host.credentials
            .get_or_init(|| async {
                let domain = host.domain.clone();
                let configured = host.settings.credentials.clone();
                let lookup = tokio::task::spawn_blocking(move || {
                    credentials::lookup(&domain, configured.as_ref())
                });
                let failed = |note: String| HostCredentials {
                    note: Some(note),
                    ..HostCredentials::default()
                };
                let found = match tokio::time::timeout(HELPER_TIMEOUT, lookup).await {
                    Ok(Ok(found)) => found,
                    Ok(Err(_)) => failed("the credential lookup failed".into()),
                    Err(_) => failed(format!(
                        "the credential helper for {} took longer than {}s",
                        host.domain,
                        HELPER_TIMEOUT.as_secs()
                    )),
                };
                if let Some(note) = &found.note {
                    log_note(note);
                }
                found
            })
            .await
    }

    /// How the host wants to be authenticated, learnt by one ping per host and run.
    pub async fn challenge(&self, host: &HostAuth) -> Result<Challenge, Resolution> {
        host.challenge.get_or_init(|| self.ping(host)).await.clone()
    }
}

/// A note for `-v`.
pub(super) fn log_note(message: &str) {
    log::debug!("{message}");
}

#[cfg(test)]
mod tests {
    use super::super::scripted::{Server, options, reply};
    use super::*;

    fn bearer_registry(token_host: String) -> Server {
        let challenge = format!("Bearer realm=\"http://{token_host}/token\",service=\"test\"");
        Server::start(move |path, _| match path {
            "/v2/" => reply("401 Unauthorized", &[("WWW-Authenticate", &challenge)], ""),
            _ => reply("404 Not Found", &[], ""),
        })
    }

    #[tokio::test]
    async fn one_ping_per_host_and_one_token_per_repository() {
        let tokens = Server::start(|_, _| reply("200 OK", &[], r#"{"token":"t1"}"#));
        let registry = bearer_registry(tokens.host.clone());
        let auth = Auth::new(Transport::new(options()).unwrap());
        let r = ImageRef::parse(&format!("{}/team/app:1", registry.host)).unwrap();
        let (a, b) = tokio::join!(auth.authorize(&r), auth.authorize(&r));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.header.as_deref(), Some("Bearer t1"));
        assert_eq!(b.header.as_deref(), Some("Bearer t1"));
        assert!(!a.with_credentials, "anonymous");
        assert_eq!(registry.count("/v2/"), 1, "one ping");
        assert_eq!(
            tokens.count("/token"),
            1,
            "one token, shared (single-flight)"
        );
        let seen = tokens.seen.lock().unwrap().join("\n");
        assert!(
            seen.contains("scope=repository%3Ateam%2Fapp%3Apull"),
            "{seen}"
        );
    }

    #[tokio::test]
    async fn a_registry_without_a_challenge_gets_no_header() {
        let registry = Server::start(|_, _| reply("200 OK", &[], ""));
        let auth = Auth::new(Transport::new(options()).unwrap());
        let r = ImageRef::parse(&format!("{}/app:1", registry.host)).unwrap();
        let a = auth.authorize(&r).await.unwrap();
        assert_eq!(a.header, None);
        assert_eq!(auth.transport.counts().tokens, 0);
    }

    #[tokio::test]
    async fn a_token_service_that_refuses_is_denied_not_found() {
        let tokens = Server::start(|_, _| reply("401 Unauthorized", &[], ""));
        let registry = bearer_registry(tokens.host.clone());
        let auth = Auth::new(Transport::new(options()).unwrap());
        let r = ImageRef::parse(&format!("{}/private/app:1", registry.host)).unwrap();
        let denied = auth.authorize(&r).await.err().unwrap();
        assert!(matches!(denied, Resolution::Denied(_)), "{denied:?}");
    }
}
