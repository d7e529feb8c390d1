//! The registry client: one shared HTTP client and a state per registry host (challenge,
//! credentials, token cache, concurrency limit, backoff gate). It sends one manifest HEAD per
//! reference and turns every answer, however odd, into a [`Resolution`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use tokio::sync::{OnceCell, Semaphore};
use tokio::time::Instant;

use super::auth::{self, Challenge, Credential, TokenResponse};
use super::retry;
use super::{Options, Resolution};
use crate::image_ref::ImageRef;

/// Every manifest type a pull may meet. A narrower list makes registries answer 404 for
/// images that exist (an OCI index asked for with Docker types only, for example).
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.v1+prettyjws, \
application/vnd.docker.distribution.manifest.v1+json, \
application/vnd.oci.artifact.manifest.v1+json";

/// The largest body imagegate reads from a registry (token answers are a few KB).
const MAX_BODY: usize = 1 << 20;
/// Tags asked for per page of a tag list.
const TAGS_PAGE: usize = 200;
/// How long a credential helper may take.
const HELPER_TIMEOUT: Duration = Duration::from_secs(10);

/// Requests sent, by kind. Retries count as requests too.
#[derive(Debug, Default)]
pub struct Stats {
    pub pings: AtomicUsize,
    pub tokens: AtomicUsize,
    pub heads: AtomicUsize,
    pub gets: AtomicUsize,
    pub tag_lists: AtomicUsize,
    pub retries: AtomicUsize,
}

/// A snapshot of [`Stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RequestCounts {
    pub pings: usize,
    pub tokens: usize,
    pub heads: usize,
    pub gets: usize,
    pub tag_lists: usize,
    pub retries: usize,
}

/// A token, when it expires, and whether it was fetched for a batch of repositories.
type TokenResult = Result<(String, Instant, bool), Resolution>;

/// How many repository scopes one token request asks for at most.
const SCOPES_PER_TOKEN: usize = 20;

struct Host {
    domain: String,
    base: String,
    limit: Semaphore,
    paused_until: Mutex<Option<Instant>>,
    challenge: OnceCell<Result<Challenge, Resolution>>,
    credential: OnceCell<(Option<Credential>, &'static str, Option<String>)>,
    tokens: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<TokenResult>>>>>,
    ratelimit_remaining: Mutex<Option<String>>,
}

/// The registry client shared by every request of a run.
pub struct Client {
    http: reqwest::Client,
    opts: Options,
    hosts: Mutex<HashMap<String, Arc<Host>>>,
    pub stats: Stats,
}

/// An answer to a manifest HEAD that resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub digest: Option<String>,
    pub media_type: Option<String>,
    pub size: Option<u64>,
}

/// What a request to one repository carries.
struct Authorized {
    host: Arc<Host>,
    header: Option<String>,
    with_credentials: bool,
    note: Option<String>,
    /// The token was fetched for a batch of repositories.
    batched: bool,
}

/// Classifies a 401/403 (undecided) or any other unexpected status.
fn refused(auth: &Authorized, status: StatusCode, what: &str) -> Resolution {
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

/// The `rel="next"` target of a `Link` header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

impl Client {
    pub fn new(opts: Options) -> Result<Client, String> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("imagegate/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(opts.timeout)
            .redirect(reqwest::redirect::Policy::limited(5))
            .http2_adaptive_window(true)
            .build()
            .map_err(|e| format!("could not set up the HTTP client: {e}"))?;
        Ok(Client {
            http,
            opts,
            hosts: Mutex::new(HashMap::new()),
            stats: Stats::default(),
        })
    }

    pub fn options(&self) -> &Options {
        &self.opts
    }

    pub fn counts(&self) -> RequestCounts {
        RequestCounts {
            pings: self.stats.pings.load(Ordering::Relaxed),
            tokens: self.stats.tokens.load(Ordering::Relaxed),
            heads: self.stats.heads.load(Ordering::Relaxed),
            gets: self.stats.gets.load(Ordering::Relaxed),
            tag_lists: self.stats.tag_lists.load(Ordering::Relaxed),
            retries: self.stats.retries.load(Ordering::Relaxed),
        }
    }

    /// The last `ratelimit-remaining` each registry sent, for verbose output.
    pub fn rate_limits(&self) -> Vec<(String, String)> {
        let hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<_> = hosts
            .values()
            .filter_map(|h| {
                let r = h.ratelimit_remaining.lock().ok()?.clone()?;
                Some((h.domain.clone(), r))
            })
            .collect();
        out.sort();
        out
    }

    fn host(&self, r: &ImageRef) -> Arc<Host> {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        hosts
            .entry(r.domain.clone())
            .or_insert_with(|| {
                let api = r.api_host();
                let scheme = if self.opts.plain_http(api) || self.opts.plain_http(&r.domain) {
                    "http"
                } else {
                    "https"
                };
                Arc::new(Host {
                    domain: r.domain.clone(),
                    base: format!("{scheme}://{api}"),
                    limit: Semaphore::new(self.opts.per_registry.max(1)),
                    paused_until: Mutex::new(None),
                    challenge: OnceCell::new(),
                    credential: OnceCell::new(),
                    tokens: Mutex::new(HashMap::new()),
                    ratelimit_remaining: Mutex::new(None),
                })
            })
            .clone()
    }

    /// The host, its auth header for a repository, and a note about credentials.
    async fn authorize(&self, r: &ImageRef) -> Result<Authorized, Resolution> {
        let host = self.host(r);
        let challenge = host
            .challenge
            .get_or_init(|| self.ping(&host))
            .await
            .clone()?;
        let (credential, _, note) = self.credential(&host).await;
        let mut batched = false;
        let header = match &challenge {
            Challenge::None => None,
            Challenge::Basic => credential.as_ref().map(Credential::basic_header),
            Challenge::Bearer { realm, service } => {
                let (token, from_batch) = self
                    .token(
                        &host,
                        realm,
                        service.as_deref(),
                        &r.path,
                        credential.as_ref(),
                    )
                    .await
                    .map_err(|res| with_note(res, note.as_deref()))?;
                batched = from_batch;
                Some(format!("Bearer {token}"))
            }
        };
        Ok(Authorized {
            with_credentials: header.is_some() && credential.is_some(),
            host,
            header,
            note,
            batched,
        })
    }

    /// Fetches tokens for many repositories at once, a batch of scopes per request, and
    /// seeds the per-repository cache with them. A registry that refuses a batch (GHCR
    /// refuses it whole when one repository is private) falls back to per-repository
    /// tokens, fetched as each reference needs one.
    pub async fn prefetch_tokens(&self, refs: &[ImageRef]) {
        let mut by_domain: HashMap<&str, (&ImageRef, Vec<&str>)> = HashMap::new();
        for r in refs {
            let e = by_domain
                .entry(r.domain.as_str())
                .or_insert((r, Vec::new()));
            if !e.1.contains(&r.path.as_str()) {
                e.1.push(r.path.as_str());
            }
        }
        let hosts = by_domain.into_values().filter(|(_, repos)| repos.len() > 1);
        futures::future::join_all(hosts.map(|(r, repos)| async move {
            let host = self.host(r);
            let Ok(Challenge::Bearer { realm, service }) = host
                .challenge
                .get_or_init(|| self.ping(&host))
                .await
                .clone()
            else {
                return;
            };
            let (credential, _, _) = self.credential(&host).await;
            let batches = repos.chunks(SCOPES_PER_TOKEN).map(|chunk| {
                let (host, realm, service, credential) = (&host, &realm, &service, &credential);
                async move {
                    let fetched = self
                        .fetch_token(host, realm, service.as_deref(), chunk, credential.as_ref())
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
    async fn unbatch(&self, r: &ImageRef) {
        let host = self.host(r);
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

    /// Where a registry's credentials come from (never the secret).
    pub async fn credential_source(&self, r: &ImageRef) -> &'static str {
        let host = self.host(r);
        self.credential(&host).await.1
    }

    /// The URL base actually used for a reference's registry (`https://ghcr.io`).
    pub fn endpoint(&self, r: &ImageRef) -> String {
        self.host(r).base.clone()
    }

    /// Resolves one reference by what it pulls (its digest, else its tag): one HEAD.
    pub async fn resolve(&self, r: &ImageRef) -> Result<Found, Resolution> {
        let (mut auth, mut response) = self.manifest_request(r, Method::HEAD).await?;
        // Some registries grant only part of a batch of scopes: a refusal under a batched
        // token is asked again with the repository's own token before it counts.
        if matches!(response.status().as_u16(), 401 | 403) && auth.batched {
            self.unbatch(r).await;
            (auth, response) = self.manifest_request(r, Method::HEAD).await?;
        }
        let status = response.status();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        match status.as_u16() {
            200 => Ok(Found {
                digest: header("docker-content-digest").filter(|d| !d.is_empty()),
                media_type: header(CONTENT_TYPE.as_str()),
                size: header("content-length").and_then(|v| v.parse().ok()),
            }),
            404 => Err(Resolution::NotFound),
            _ => Err(refused(&auth, status, "manifest HEAD")),
        }
    }

    /// Fetches a manifest's body (a GET): only where a user asks for more than existence.
    pub async fn manifest(&self, r: &ImageRef) -> Result<Vec<u8>, Resolution> {
        let (auth, response) = self.manifest_request(r, Method::GET).await?;
        match response.status().as_u16() {
            200 => read_limited(response).await.map_err(|e| {
                Resolution::RegistryError(format!("the manifest could not be read: {e}"))
            }),
            404 => Err(Resolution::NotFound),
            _ => Err(refused(&auth, response.status(), "manifest GET")),
        }
    }

    /// Lists a repository's tags, following `Link` pagination for at most `max_pages`
    /// pages. `Ok(None)` means the repository does not exist (404).
    pub async fn tags(
        &self,
        r: &ImageRef,
        max_pages: usize,
    ) -> Result<Option<Vec<String>>, Resolution> {
        let auth = self.authorize(r).await?;
        let mut url = format!("{}/v2/{}/tags/list?n={TAGS_PAGE}", auth.host.base, r.path);
        let mut tags = Vec::new();
        for _ in 0..max_pages {
            let response = self
                .request(&auth, &self.stats.tag_lists, Method::GET, &url, None)
                .await?;
            match response.status().as_u16() {
                200 => {}
                404 => return Ok(None),
                _ => return Err(refused(&auth, response.status(), "tag list")),
            }
            let next = response
                .headers()
                .get(reqwest::header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(next_link);
            let body = read_limited(response).await.map_err(|e| {
                Resolution::RegistryError(format!("the tag list could not be read: {e}"))
            })?;
            #[derive(serde::Deserialize)]
            struct TagList {
                #[serde(default)]
                tags: Option<Vec<String>>,
            }
            let page: TagList = serde_json::from_slice(&body).map_err(|_| {
                Resolution::RegistryError("the tag list is not the JSON the API defines".into())
            })?;
            tags.extend(page.tags.unwrap_or_default());
            match next {
                Some(link) if link.starts_with('/') => url = format!("{}{link}", auth.host.base),
                Some(link) if link.starts_with(&auth.host.base) => url = link,
                _ => break,
            }
        }
        Ok(Some(tags))
    }

    /// A HEAD or GET of the manifest a reference pulls, with the full Accept list.
    async fn manifest_request(
        &self,
        r: &ImageRef,
        method: Method,
    ) -> Result<(Authorized, Response), Resolution> {
        let auth = self.authorize(r).await?;
        let url = format!(
            "{}/v2/{}/manifests/{}",
            auth.host.base,
            r.path,
            r.pull_reference()
        );
        let counter = if method == Method::HEAD {
            &self.stats.heads
        } else {
            &self.stats.gets
        };
        let response = self
            .request(&auth, counter, method, &url, Some(MANIFEST_ACCEPT))
            .await?;
        Ok((auth, response))
    }

    /// Sends one request with the host's permit and the reference's authorization.
    async fn request(
        &self,
        auth: &Authorized,
        counter: &AtomicUsize,
        method: Method,
        url: &str,
        accept: Option<&str>,
    ) -> Result<Response, Resolution> {
        let _permit = auth.host.limit.acquire().await;
        self.send(&auth.host, counter, || {
            let mut req = self.http.request(method.clone(), url);
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

    /// `GET /v2/`, once per host, to learn how it wants to be authenticated.
    async fn ping(&self, host: &Host) -> Result<Challenge, Resolution> {
        let url = format!("{}/v2/", host.base);
        let response = self
            .send(host, &self.stats.pings, || self.http.get(&url))
            .await?;
        match response.status().as_u16() {
            200..=299 => Ok(Challenge::None),
            401 => response
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .and_then(auth::parse_challenge)
                .ok_or_else(|| {
                    Resolution::RegistryError(format!(
                        "{} answered 401 without a usable WWW-Authenticate challenge",
                        host.domain
                    ))
                }),
            _ => Err(final_status(response.status(), "registry API check (/v2/)")),
        }
    }

    /// The host's credentials (looked up once, off the runtime, with a timeout), where
    /// they came from, and a note when the lookup failed.
    async fn credential(&self, host: &Host) -> (Option<Credential>, &'static str, Option<String>) {
        host.credential
            .get_or_init(|| async {
                let domain = host.domain.clone();
                let lookup = tokio::task::spawn_blocking(move || auth::lookup(&domain));
                let failed = |note: String| {
                    self.opts.verbose_note(&note);
                    (None, "anonymous", Some(note))
                };
                match tokio::time::timeout(HELPER_TIMEOUT, lookup).await {
                    Ok(Ok(Ok(Some((c, source))))) => (Some(c), source, None),
                    Ok(Ok(Ok(None))) => (None, "anonymous", None),
                    Ok(Ok(Err(note))) => failed(note),
                    Ok(Err(_)) => failed("the credential lookup failed".into()),
                    Err(_) => failed(format!(
                        "the credential helper for {} took longer than {}s",
                        host.domain,
                        HELPER_TIMEOUT.as_secs()
                    )),
                }
            })
            .await
            .clone()
    }

    /// A pull token for one repository, fetched once and shared (single-flight).
    async fn token(
        &self,
        host: &Host,
        realm: &str,
        service: Option<&str>,
        repo: &str,
        credential: Option<&Credential>,
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
            .fetch_token(host, realm, service, &[repo], credential)
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

    async fn fetch_token(
        &self,
        host: &Host,
        realm: &str,
        service: Option<&str>,
        repos: &[&str],
        credential: Option<&Credential>,
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
        let response = self
            .send(host, &self.stats.tokens, || {
                let req = self.http.get(url.clone());
                match credential {
                    Some(c) => req.header(AUTHORIZATION, c.basic_header()),
                    None => req,
                }
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
                if credential.is_some() {
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

    /// Sends a request with retries, honouring the host's backoff gate, the per-request
    /// timeout and the overall deadline.
    async fn send(
        &self,
        host: &Host,
        counter: &AtomicUsize,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, Resolution> {
        let deadline = self.opts.deadline;
        let mut attempt = 0;
        loop {
            wait_for_gate(host).await;
            let now = Instant::now();
            if now >= deadline {
                return Err(deadline_exceeded(&self.opts));
            }
            let timeout = self.opts.timeout.min(deadline - now);
            counter.fetch_add(1, Ordering::Relaxed);
            if attempt > 0 {
                self.stats.retries.fetch_add(1, Ordering::Relaxed);
            }
            let sent = tokio::time::timeout_at(deadline, build().timeout(timeout).send()).await;
            let last = attempt + 1 >= retry::MAX_ATTEMPTS;
            let wait = match sent {
                Err(_) => return Err(deadline_exceeded(&self.opts)),
                Ok(Err(e)) => {
                    if last {
                        return Err(Resolution::Unreachable(format!(
                            "{}: {}",
                            host.domain,
                            describe_error(&e, timeout)
                        )));
                    }
                    retry::backoff(attempt)
                }
                Ok(Ok(response)) => {
                    if let Some(v) = response
                        .headers()
                        .get("ratelimit-remaining")
                        .and_then(|v| v.to_str().ok())
                        && let Ok(mut r) = host.ratelimit_remaining.lock()
                    {
                        *r = Some(v.to_string());
                    }
                    let status = response.status().as_u16();
                    if !retry::retryable_status(status) || last {
                        return Ok(response);
                    }
                    let wait = response
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| retry::parse_retry_after(v, SystemTime::now()))
                        .unwrap_or_else(|| retry::backoff(attempt));
                    if Instant::now() + wait >= deadline {
                        // Waiting would pass the deadline: give the answer we have.
                        return Ok(response);
                    }
                    if status == 429 {
                        // A 429 pauses every request to this host, not just this one.
                        let mut gate = host.paused_until.lock().unwrap_or_else(|e| e.into_inner());
                        let until = Instant::now() + wait;
                        if gate.is_none_or(|g| g < until) {
                            *gate = Some(until);
                        }
                    }
                    self.opts.verbose_note(&format!(
                        "{} answered {status}; retrying in {:.1}s",
                        host.domain,
                        wait.as_secs_f64()
                    ));
                    wait
                }
            };
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

async fn wait_for_gate(host: &Host) {
    let until = *host.paused_until.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(until) = until {
        tokio::time::sleep_until(until).await;
    }
}

fn deadline_exceeded(opts: &Options) -> Resolution {
    Resolution::Unreachable(format!(
        "the overall deadline of {}s passed before the registry answered",
        opts.deadline_secs
    ))
}

/// Classifies a status that is neither success nor a definite answer.
fn final_status(status: StatusCode, what: &str) -> Resolution {
    let text = format!("{what} answered {}", describe_status(status));
    match status.as_u16() {
        429 => Resolution::RateLimited(format!("{text}, past every retry")),
        _ => Resolution::RegistryError(text),
    }
}

fn describe_status(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// A transport error, described without its URL (URLs carry no secrets, but keep it short).
fn describe_error(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("no answer within {}s", timeout.as_secs_f64());
    }
    let mut root: &dyn std::error::Error = e;
    while let Some(source) = root.source() {
        root = source;
    }
    if e.is_connect() {
        format!("could not connect ({root})")
    } else {
        format!("request failed ({root})")
    }
}

fn with_note(res: Resolution, note: Option<&str>) -> Resolution {
    match (res, note) {
        (Resolution::Denied(d), Some(n)) => Resolution::Denied(format!("{d}; note: {n}")),
        (res, _) => res,
    }
}

/// Reads a body up to [`MAX_BODY`] bytes; more is an error, not an allocation.
async fn read_limited(mut response: Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(format!("body larger than {MAX_BODY} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
