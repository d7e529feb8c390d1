//! The registry client's middle layer: who imagegate is to a registry. The `/v2/` challenge
//! (one ping per host), the credentials found for a host (looked up once, off the runtime),
//! and pull tokens (single-flight per repository, batched scopes, realm rules). It sends
//! through the transport layer and knows nothing of manifests.

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode, Url};
use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::Resolution;
use super::challenge::{self, Challenge, TokenResponse};
use super::credentials::{self, HostCredentials, Secret};
use super::hosts::Transport as Scheme;
use super::transport::{Host, Transport, describe_status, final_status, read_limited, with_note};
use crate::image_ref::ImageRef;

/// How long a credential helper may take.
const HELPER_TIMEOUT: Duration = Duration::from_secs(10);

/// How many repository scopes one token request asks for at most.
const SCOPES_PER_TOKEN: usize = 20;

/// A token, when it expires, and whether it was fetched for a batch of repositories.
type TokenResult = Result<(String, Instant, bool), Resolution>;

/// A host with what the auth layer knows of it.
pub struct HostAuth {
    pub host: Arc<Host>,
    challenge: OnceCell<Result<Challenge, Resolution>>,
    credentials: OnceCell<HostCredentials>,
    tokens: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<TokenResult>>>>>,
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

    /// Fetches tokens for many repositories at once, a batch of scopes per request, and
    /// seeds the per-repository cache with them. Repositories are batched only with others
    /// that use the same credentials. A registry that refuses a batch (GHCR refuses it
    /// whole when one repository is private) falls back to per-repository tokens, fetched
    /// as each reference needs one.
    pub async fn prefetch_tokens(&self, refs: &[ImageRef]) {
        let mut by_domain: HashMap<&str, Vec<&str>> = HashMap::new();
        for r in refs {
            let e = by_domain.entry(r.domain.as_str()).or_default();
            if !e.contains(&r.path.as_str()) {
                e.push(r.path.as_str());
            }
        }
        let hosts = by_domain.into_iter().filter(|(_, repos)| repos.len() > 1);
        futures::future::join_all(hosts.map(|(domain, repos)| async move {
            let host = self.host(domain);
            let Ok(Challenge::Bearer { realm, service }) = self.challenge(&host).await else {
                return;
            };
            let creds = self.credentials(&host).await;
            let mut groups: HashMap<&str, (Option<&Secret>, Vec<&str>)> = HashMap::new();
            for repo in repos {
                let (key, secret) = creds
                    .for_repository(repo)
                    .map_or(("", None), |(key, s)| (key, Some(&s.secret)));
                if matches!(secret, Some(Secret::Bearer(_))) {
                    continue;
                }
                groups
                    .entry(key)
                    .or_insert((secret, Vec::new()))
                    .1
                    .push(repo);
            }
            let batches = groups.values().flat_map(|(secret, repos)| {
                repos
                    .chunks(SCOPES_PER_TOKEN)
                    .map(move |chunk| (*secret, chunk))
            });
            let batches = batches.map(|(secret, chunk)| {
                let (host, realm, service) = (&host, &realm, &service);
                async move {
                    let fetched = self
                        .fetch_token(host, realm, service.as_deref(), chunk, secret)
                        .await;
                    let Ok((token, expires, _)) = fetched else {
                        return;
                    };
                    let mut tokens = host.tokens.lock().unwrap_or_else(|e| e.into_inner());
                    for repo in chunk {
                        let slot = tokens.entry(repo.to_string()).or_default().clone();
                        if let Ok(mut slot) = slot.try_lock()
                            && slot.is_none()
                        {
                            *slot = Some(Ok((token.clone(), expires, true)));
                        }
                    }
                }
            });
            futures::future::join_all(batches).await;
        }))
        .await;
    }

    /// Replaces a batched token for a repository with one of its own.
    pub async fn unbatch(&self, r: &ImageRef) {
        let host = self.host(&r.domain);
        let slot = {
            let tokens = host.tokens.lock().unwrap_or_else(|e| e.into_inner());
            tokens.get(&r.path).cloned()
        };
        if let Some(slot) = slot {
            let mut slot = slot.lock().await;
            if matches!(slot.as_ref(), Some(Ok((_, _, true)))) {
                *slot = None;
            }
        }
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
                    .send(&host, &self.transport.stats.pings, || {
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
        let _permit = auth.host.limit.acquire().await;
        let http = auth.host.http()?;
        self.transport
            .send(&auth.host, counter, || {
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
            .send(host, &self.transport.stats.pings, || http.get(&url))
            .await;
        if host.transport == Scheme::Insecure && matches!(sent, Err(Resolution::Unreachable(_))) {
            let plain = format!("http://{}", host.base().trim_start_matches("https://"));
            log_note(&format!("{} has no TLS; trying plain HTTP", host.domain));
            let url = format!("{plain}/v2/");
            sent = self
                .transport
                .send(host, &self.transport.stats.pings, || http.get(&url))
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

    /// A pull token for one repository, fetched once and shared (single-flight).
    pub async fn token(
        &self,
        host: &HostAuth,
        realm: &str,
        service: Option<&str>,
        repo: &str,
        secret: Option<&Secret>,
    ) -> Result<(String, bool), Resolution> {
        let slot = {
            let mut tokens = host.tokens.lock().unwrap_or_else(|e| e.into_inner());
            tokens.entry(repo.to_string()).or_default().clone()
        };
        let mut slot = slot.lock().await;
        if let Some(cached) = slot.as_ref() {
            match cached {
                Ok((token, expires, batched)) if *expires > Instant::now() => {
                    return Ok((token.clone(), *batched));
                }
                Err(res) => return Err(res.clone()),
                Ok(_) => {}
            }
        }
        let fetched = self
            .fetch_token(host, realm, service, &[repo], secret)
            .await;
        // Transient failures are not cached: a later reference may still get through.
        let cacheable = !matches!(
            fetched,
            Err(Resolution::Unreachable(_) | Resolution::RateLimited(_))
        );
        if cacheable {
            *slot = Some(fetched.clone());
        }
        fetched.map(|(t, _, batched)| (t, batched))
    }

    pub async fn fetch_token(
        &self,
        host: &HostAuth,
        realm: &str,
        service: Option<&str>,
        repos: &[&str],
        secret: Option<&Secret>,
    ) -> TokenResult {
        let mut url = Url::parse(realm).map_err(|_| {
            Resolution::RegistryError(format!(
                "{} named a token realm that is not a URL",
                host.domain
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Resolution::RegistryError(format!(
                "{} named a token realm that is not HTTP(S)",
                host.domain
            )));
        }
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            for repo in repos {
                q.append_pair("scope", &format!("repository:{repo}:pull"));
            }
        }
        let secret = match self.realm_may_have_credentials(host, &url).await? {
            None => secret,
            Some(why) => {
                if secret.is_some() {
                    log_note(&why);
                }
                None
            }
        };
        let http = host.http()?;
        let scopes: Vec<String> = repos
            .iter()
            .map(|repo| format!("repository:{repo}:pull"))
            .collect();
        let response = self
            .transport
            .send(host, &self.transport.stats.tokens, || match secret {
                // An identity token is an OAuth2 refresh token: exchanged with a POST.
                Some(Secret::IdentityToken(refresh)) => {
                    let mut form = vec![
                        ("grant_type", "refresh_token".to_string()),
                        ("client_id", "imagegate".to_string()),
                        ("refresh_token", refresh.clone()),
                        ("scope", scopes.join(" ")),
                    ];
                    if let Some(s) = service {
                        form.push(("service", s.to_string()));
                    }
                    let mut post = url.clone();
                    post.set_query(None);
                    http.post(post).form(&form)
                }
                Some(Secret::Basic(c)) => http
                    .get(url.clone())
                    .header(AUTHORIZATION, c.basic_header()),
                _ => http.get(url.clone()),
            })
            .await?;
        let status = response.status();
        match status.as_u16() {
            200..=299 => {
                let body = read_limited(response).await.map_err(|e| {
                    Resolution::RegistryError(format!(
                        "the token service of {} sent an unreadable answer: {e}",
                        host.domain
                    ))
                })?;
                let parsed: Option<TokenResponse> = serde_json::from_slice(&body).ok();
                let (token, ttl) = parsed.and_then(TokenResponse::into_token).ok_or_else(|| {
                    Resolution::RegistryError(format!(
                        "the token service of {} answered without a token",
                        host.domain
                    ))
                })?;
                Ok((token, Instant::now() + ttl, repos.len() > 1))
            }
            401 | 403 => Err(Resolution::Denied(format!(
                "the token service of {} refused {} for {} ({})",
                host.domain,
                if secret.is_some() {
                    "the configured credentials"
                } else {
                    "anonymous access"
                },
                repos.join(", "),
                describe_status(status)
            ))),
            _ => Err(final_status(status, "token request")),
        }
    }

    /// Whether a registry's token realm may be sent the registry's credentials: only on the
    /// registry's own site (`auth.docker.io` for `registry-1.docker.io`, `gitlab.com` for
    /// `registry.gitlab.com`) and over TLS unless the registry itself is plain HTTP. `Some`
    /// says why not. A realm on another site that leads into a private network the registry
    /// is not in is refused outright: a registry may not aim imagegate at internal hosts.
    async fn realm_may_have_credentials(
        &self,
        host: &HostAuth,
        realm: &Url,
    ) -> Result<Option<String>, Resolution> {
        let registry = Url::parse(&host.base()).ok();
        let registry_host = registry
            .as_ref()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| host.domain.clone());
        let realm_host = realm.host_str().unwrap_or_default().to_string();
        if !same_site(&registry_host, &realm_host) {
            let internal = |h: String| async move {
                tokio::net::lookup_host((h.trim_matches(['[', ']']), 0))
                    .await
                    .map(|addrs| addrs.map(|a| a.ip()).any(super::destinations::is_internal))
                    .unwrap_or(false)
            };
            if internal(realm_host.clone()).await && !internal(registry_host.clone()).await {
                return Err(Resolution::Refused(format!(
                    "{} named a token realm at {realm_host}, inside a private network it is not in; imagegate does not follow it",
                    host.domain
                )));
            }
            return Ok(Some(format!(
                "credentials for {} are not sent to its token realm at {realm_host}, another site; the token is asked for anonymously",
                host.domain
            )));
        }
        let plain_registry = registry.as_ref().is_some_and(|u| u.scheme() == "http");
        if realm.scheme() != "https" && !plain_registry {
            return Ok(Some(format!(
                "credentials for {} are not sent to its token realm over plain HTTP",
                host.domain
            )));
        }
        Ok(None)
    }
}

/// Whether two hosts are one site: the same host, or the same registrable domain under the
/// public suffix list (`auth.docker.io` and `registry-1.docker.io`; not `a.github.io` and
/// `b.github.io`). Addresses are only their own site.
fn same_site(a: &str, b: &str) -> bool {
    let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
    if a == b {
        return true;
    }
    let is_ip = |h: &str| {
        h.trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok()
    };
    if is_ip(&a) || is_ip(&b) {
        return false;
    }
    match (psl::domain_str(&a), psl::domain_str(&b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// A note for `-v`.
fn log_note(message: &str) {
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

    #[test]
    fn sites_follow_the_public_suffix_list() {
        assert!(same_site("registry-1.docker.io", "auth.docker.io"));
        assert!(same_site("registry.gitlab.com", "gitlab.com"));
        assert!(same_site("127.0.0.1", "127.0.0.1"));
        assert!(!same_site("a.github.io", "b.github.io"));
        assert!(!same_site("127.0.0.1", "localhost"));
        assert!(!same_site("ghcr.io", "ghcr.io.evil.com"));
    }
}
