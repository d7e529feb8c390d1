//! The registry client: a state per registry host (transport and TLS, challenge,
//! credentials, token cache, concurrency limit, pacing and backoff gate). It sends one
//! manifest HEAD per reference, through mirrors and rewrites, and turns every answer,
//! however odd, into a [`Resolution`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use tokio::sync::{OnceCell, Semaphore};
use tokio::time::Instant;

use super::auth::{self, Challenge, TokenResponse};
use super::credentials::{self, HostCredentials, Secret};
use super::hosts::{HostSettings, Transport};
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
    /// `https://host` or `http://host`; an insecure host may drop to HTTP at its ping.
    base: Mutex<String>,
    transport: Transport,
    /// The client for this host (its own when it has TLS settings), or why it has none.
    http: Result<reqwest::Client, String>,
    settings: HostSettings,
    timeout: Duration,
    limit: Semaphore,
    paused_until: Mutex<Option<Instant>>,
    pace: Mutex<Pace>,
    challenge: OnceCell<Result<Challenge, Resolution>>,
    credentials: OnceCell<HostCredentials>,
    tokens: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<TokenResult>>>>>,
    ratelimit_remaining: Mutex<Option<String>>,
}

impl Host {
    fn base(&self) -> String {
        self.base.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn http(&self) -> Result<&reqwest::Client, Resolution> {
        self.http
            .as_ref()
            .map_err(|e| Resolution::RegistryError(e.clone()))
    }
}

/// Spacing between requests to a host: a fixed rate from the config, or one the host's
/// `RateLimit` headers ask for.
#[derive(Debug, Default)]
struct Pace {
    interval: Option<Duration>,
    next: Option<Instant>,
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
    /// The host that answered, when it is not the reference's own (a mirror or rewrite).
    pub via: Option<String>,
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

/// A registry that answers a pinned digest must name that digest: content addressing is
/// the point of the pin, so another (or a malformed) `Docker-Content-Digest` is a failure,
/// never a pass (issue 13, row 10). A registry that names none is taken at its word.
fn check_pinned_digest(r: &ImageRef, host: &str, answered: Option<&str>) -> Result<(), Resolution> {
    let (Some(pinned), Some(answered)) = (r.digest.as_deref(), answered) else {
        return Ok(());
    };
    if answered == pinned {
        return Ok(());
    }
    let shown: String = answered.chars().take(80).collect();
    let what = if crate::image_ref::is_valid_digest(answered) {
        "a different digest"
    } else {
        "a malformed digest"
    };
    Err(Resolution::DigestMismatch(format!(
        "{host} answered the pinned {pinned} with {what}, Docker-Content-Digest {:?}",
        shown
    )))
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

/// A pagination link resolved against the page that sent it, when it stays on the same
/// scheme, host and port: the next page is asked with the same credentials, so a link may
/// not lead them anywhere else (issue 13, row 8).
fn same_origin_link(current: &str, link: &str) -> Option<String> {
    let current = Url::parse(current).ok()?;
    let next = current.join(link).ok()?;
    let same = next.scheme() == current.scheme()
        && next.host_str() == current.host_str()
        && next.port_or_known_default() == current.port_or_known_default()
        && next.username().is_empty()
        && next.password().is_none();
    same.then(|| next.to_string())
}

/// A client builder with imagegate's defaults, trusting `ca_files` besides the system roots
/// (and `SSL_CERT_FILE`, which replaces them, as curl and Go do).
fn builder(
    opts: &Options,
    ca_files: &[std::path::PathBuf],
) -> Result<reqwest::ClientBuilder, String> {
    let destinations = opts.registries.destinations.clone();
    let redirects = destinations.clone();
    // Redirects are followed at most five times, never to a denied destination; reqwest
    // drops the Authorization header when a redirect leaves the host.
    let redirect = reqwest::redirect::Policy::custom(move |attempt| {
        let denied = attempt
            .url()
            .host_str()
            .and_then(|h| redirects.denies_host(h));
        if let Some(why) = denied {
            attempt.error(format!("a redirect led to a denied destination: {why}"))
        } else if attempt.previous().len() >= 5 {
            attempt.error("too many redirects")
        } else {
            attempt.follow()
        }
    });
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("imagegate/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(opts.timeout)
        .redirect(redirect)
        .dns_resolver(Arc::new(super::destinations::Resolver { destinations }))
        .http2_adaptive_window(true);
    let mut certs = Vec::new();
    for f in ca_files {
        let pem = std::fs::read(f).map_err(|e| format!("cannot read {}: {e}", f.display()))?;
        let found = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|_| format!("{} holds no PEM certificate", f.display()))?;
        if found.is_empty() {
            return Err(format!("{} holds no PEM certificate", f.display()));
        }
        certs.extend(found);
    }
    if !certs.is_empty() {
        b = b.tls_certs_merge(certs);
    }
    Ok(b)
}

impl Client {
    pub fn new(opts: Options) -> Result<Client, String> {
        let http = builder(&opts, &opts.registries.ca_files)?
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

    fn host_of(&self, domain: &str) -> Arc<Host> {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = hosts.get(domain) {
            return h.clone();
        }
        let registries = &self.opts.registries;
        let settings = registries.host(domain);
        let api = if domain == crate::image_ref::DOCKER_HUB {
            crate::image_ref::DOCKER_HUB_API
        } else {
            domain
        };
        let transport = registries.transport(domain, &settings);
        let scheme = if transport == Transport::Http {
            "http"
        } else {
            "https"
        };
        let http = if transport == Transport::Insecure {
            // A host is set up once per run, so this warns once per host.
            log::warn!(
                "{domain} is insecure: its TLS certificate is not verified, and plain HTTP is tried when it has no TLS"
            );
            builder(&self.opts, &[])
                .and_then(|b| {
                    b.tls_danger_accept_invalid_certs(true)
                        .build()
                        .map_err(|e| e.to_string())
                })
        } else if settings.has_tls_material() {
            let cas: Vec<_> = [registries.ca_files.clone(), settings.ca_files.clone()].concat();
            builder(&self.opts, &cas).and_then(|mut b| {
                if let Some((cert, key)) = &settings.client_cert {
                    let mut pem = std::fs::read(cert)
                        .map_err(|e| format!("cannot read {}: {e}", cert.display()))?;
                    pem.push(b'\n');
                    pem.extend(
                        std::fs::read(key)
                            .map_err(|e| format!("cannot read {}: {e}", key.display()))?,
                    );
                    let id = reqwest::Identity::from_pem(&pem).map_err(|_| {
                        format!(
                            "{} and {} are not a PEM certificate and private key",
                            cert.display(),
                            key.display()
                        )
                    })?;
                    b = b.identity(id);
                }
                b.build().map_err(|e| e.to_string())
            })
        } else {
            Ok(self.http.clone())
        }
        .map_err(|e| format!("the TLS settings for {domain} cannot be used: {e}"));
        let per_registry = settings
            .concurrency
            .unwrap_or(self.opts.per_registry)
            .max(1);
        let pace = Pace {
            interval: settings
                .requests_per_second
                .map(|r| Duration::from_secs_f64(1.0 / r)),
            next: None,
        };
        let host = Arc::new(Host {
            domain: domain.to_string(),
            base: Mutex::new(format!("{scheme}://{api}")),
            transport,
            http,
            timeout: settings.timeout.unwrap_or(self.opts.timeout),
            settings,
            limit: Semaphore::new(per_registry),
            paused_until: Mutex::new(None),
            pace: Mutex::new(pace),
            challenge: OnceCell::new(),
            credentials: OnceCell::new(),
            tokens: Mutex::new(HashMap::new()),
            ratelimit_remaining: Mutex::new(None),
        });
        hosts.insert(domain.to_string(), host.clone());
        host
    }

    fn host(&self, r: &ImageRef) -> Arc<Host> {
        self.host_of(&r.domain)
    }

    /// The host, its auth header for a repository, and a note about credentials.
    async fn authorize(&self, r: &ImageRef) -> Result<Authorized, Resolution> {
        let host = self.host(r);
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
            let host = self.host_of(domain);
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

    /// Where a repository's credentials come from (never the secret), and the note of a
    /// lookup that failed.
    pub async fn credential_source(&self, r: &ImageRef) -> (String, Option<String>) {
        let host = self.host(r);
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
        let host = self.host_of(domain);
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
                    .send(&host, &self.stats.pings, || {
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

    /// The URL base actually used for a reference's registry (`https://ghcr.io`).
    pub fn endpoint(&self, r: &ImageRef) -> String {
        self.host(r).base()
    }

    /// Resolves a reference where it is really served: through its rewrite, else its
    /// mirrors in order (a mirror that cannot answer passes to the next), else itself.
    pub async fn resolve_routed(&self, r: &ImageRef) -> Result<Found, Resolution> {
        let routes = self.routes(r);
        let last = routes.len() - 1;
        for (i, (target, via)) in routes.into_iter().enumerate() {
            match self.resolve(&target).await {
                Ok(f) => return Ok(Found { via, ..f }),
                Err(res) if i < last => log_note(&format!(
                    "mirror {} could not answer for {}: {}; trying the next",
                    target.domain,
                    r.canonical(),
                    res.detail()
                )),
                Err(res) => return Err(res),
            }
        }
        unreachable!("a reference has at least one route")
    }

    /// Where a reference is asked, in order, with the host named as having answered: its
    /// rewrite alone; else its mirrors, then the registry (or the host its `hosts.toml`
    /// names as `server`).
    pub fn routes(&self, r: &ImageRef) -> Vec<(ImageRef, Option<String>)> {
        let registries = &self.opts.registries;
        if let Some(target) = registries.rewrite(r) {
            let via = Some(target.domain.clone());
            return vec![(target, via)];
        }
        let host = self.host(r);
        let settings = &host.settings;
        let mut out: Vec<(ImageRef, Option<String>)> = settings
            .mirrors
            .iter()
            .map(|m| (m.apply(r, ""), Some(m.host.clone())))
            .collect();
        out.push(match &settings.upstream {
            Some(u) => (u.apply(r, ""), Some(u.host.clone())),
            None => (r.clone(), None),
        });
        out
    }

    /// Every host a reference is asked at, with how it is reached and what is trusted
    /// there: the key under which the cache keeps its answer.
    pub fn route_key(&self, r: &ImageRef) -> String {
        let routes = self.routes(r);
        let mut key = String::new();
        for (target, _) in &routes {
            let host = self.host(target);
            let cas: Vec<String> = host
                .settings
                .ca_files
                .iter()
                .chain(&self.opts.registries.ca_files)
                .map(|p| p.display().to_string())
                .collect();
            key.push_str(&format!(
                "{:?}:{}/{}[{}] ",
                host.transport,
                host.base(),
                target.path,
                cas.join(",")
            ));
        }
        key
    }

    /// The reference as the host that answered for it (`via`) knows it.
    pub fn answered(&self, r: &ImageRef, via: Option<&str>) -> ImageRef {
        let mut routes = self.routes(r);
        let at = routes
            .iter()
            .position(|(_, v)| v.as_deref() == via)
            .unwrap_or(routes.len() - 1);
        routes.swap_remove(at).0
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
            200 => {
                let digest = header("docker-content-digest").filter(|d| !d.is_empty());
                check_pinned_digest(r, &auth.host.domain, digest.as_deref())?;
                Ok(Found {
                    // A tag's digest is only kept when it is one.
                    digest: digest.filter(|d| crate::image_ref::is_valid_digest(d)),
                    media_type: header(CONTENT_TYPE.as_str()),
                    size: header("content-length").and_then(|v| v.parse().ok()),
                    via: None,
                })
            }
            404 => Err(Resolution::NotFound),
            _ => Err(refused(&auth, status, "manifest HEAD")),
        }
    }

    /// The platforms an image provides (`linux/arm64/v8`): an index lists them; a single
    /// image's platform is in its config blob. Two GETs at most, only where asked for.
    /// `via` is the host that answered the reference's HEAD, so the GETs go where it lives.
    pub async fn platforms(
        &self,
        r: &ImageRef,
        via: Option<&str>,
    ) -> Result<Vec<String>, Resolution> {
        let target = self.answered(r, via);
        let body = self.manifest(&target).await?;
        if let Some(list) = index_platforms(&body) {
            return Ok(list);
        }
        let malformed =
            || Resolution::RegistryError("the manifest is not the JSON the API defines".into());
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|_| malformed())?;
        let digest = v["config"]["digest"].as_str().ok_or_else(malformed)?;
        let auth = self.authorize(&target).await?;
        let url = format!("{}/v2/{}/blobs/{digest}", auth.host.base(), target.path);
        let response = self
            .request(&auth, &self.stats.gets, Method::GET, &url, None)
            .await?;
        match response.status().as_u16() {
            200 => {}
            404 => return Err(Resolution::NotFound),
            _ => return Err(refused(&auth, response.status(), "config blob GET")),
        }
        let blob = read_limited(response).await.map_err(|e| {
            Resolution::RegistryError(format!("the image config could not be read: {e}"))
        })?;
        let c: serde_json::Value = serde_json::from_slice(&blob).map_err(|_| malformed())?;
        Ok(platform_of(&c).into_iter().collect())
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
        // Asked of the registry itself, or of the host its rewrite or hosts.toml names.
        let r = &self.answered(r, None);
        let auth = self.authorize(r).await?;
        let base = auth.host.base();
        let mut url = format!("{base}/v2/{}/tags/list?n={TAGS_PAGE}", r.path);
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
            match next.and_then(|link| same_origin_link(&url, &link)) {
                Some(link) => url = link,
                None => break,
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
            auth.host.base(),
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
        let http = auth.host.http()?;
        self.send(&auth.host, counter, || {
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
    async fn ping(&self, host: &Host) -> Result<Challenge, Resolution> {
        let http = host.http()?;
        let url = format!("{}/v2/", host.base());
        let mut sent = self.send(host, &self.stats.pings, || http.get(&url)).await;
        if host.transport == Transport::Insecure && matches!(sent, Err(Resolution::Unreachable(_)))
        {
            let plain = format!("http://{}", host.base().trim_start_matches("https://"));
            log_note(&format!("{} has no TLS; trying plain HTTP", host.domain));
            let url = format!("{plain}/v2/");
            sent = self.send(host, &self.stats.pings, || http.get(&url)).await;
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

    /// The host's credentials, looked up once, off the runtime, with a timeout (a
    /// credential helper may hang). A failed lookup means anonymous, with a note.
    async fn credentials<'h>(&self, host: &'h Host) -> &'h HostCredentials {
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
    async fn challenge(&self, host: &Host) -> Result<Challenge, Resolution> {
        host.challenge.get_or_init(|| self.ping(host)).await.clone()
    }

    /// A pull token for one repository, fetched once and shared (single-flight).
    async fn token(
        &self,
        host: &Host,
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

    async fn fetch_token(
        &self,
        host: &Host,
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
            .send(host, &self.stats.tokens, || match secret {
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
        host: &Host,
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

    /// Slows a host down before it hits its rate limit: with few requests left, requests
    /// are spread over the time until the budget resets; with none left, the host pauses
    /// until then (and what cannot wait that long ends rate-limited at once).
    fn observe_rate_limit(&self, host: &Host, headers: &reqwest::header::HeaderMap) {
        if let Some(v) = headers
            .get("ratelimit-remaining")
            .and_then(|v| v.to_str().ok())
            && let Ok(mut r) = host.ratelimit_remaining.lock()
        {
            *r = Some(v.to_string());
        }
        let Some((left, reset)) = rate_limit(headers) else {
            return;
        };
        let configured = host
            .settings
            .requests_per_second
            .map(|r| Duration::from_secs_f64(1.0 / r));
        let mut pace = host.pace.lock().unwrap_or_else(|e| e.into_inner());
        let slow_below = (2 * host.limit.available_permits().max(1) + 2) as u64;
        match (left, reset) {
            (0, Some(reset)) => {
                let until = Instant::now() + Duration::from_secs(reset);
                let mut gate = host.paused_until.lock().unwrap_or_else(|e| e.into_inner());
                if gate.is_none_or(|g| g < until) {
                    *gate = Some(until);
                    log_note(&format!(
                        "{} has no requests left in its rate limit; pausing {reset}s",
                        host.domain
                    ));
                }
            }
            (left, Some(reset)) if left < slow_below => {
                let spread = Duration::from_secs_f64(reset as f64 / left as f64);
                pace.interval = Some(configured.map_or(spread, |c| c.max(spread)));
            }
            _ => pace.interval = configured,
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
            if let Some(until) = gate(host)
                && until >= deadline
            {
                // The registry asked for a pause that outlasts the run: say so now.
                return Err(Resolution::RateLimited(format!(
                    "{} asked for a pause of {:.0}s for its rate limit, past the overall deadline",
                    host.domain,
                    (until - Instant::now()).as_secs_f64()
                )));
            }
            wait_for_gate(host).await;
            wait_for_pace(host, deadline).await;
            let now = Instant::now();
            if now >= deadline {
                return Err(deadline_exceeded(&self.opts));
            }
            let timeout = host.timeout.min(deadline - now);
            let (http, request) = build().timeout(timeout).build_split();
            let request = request.map_err(|e| {
                Resolution::RegistryError(format!(
                    "{}: a request could not be built: {e}",
                    host.domain
                ))
            })?;
            if let Some(why) = request
                .url()
                .host_str()
                .and_then(|h| self.opts.registries.destinations.denies_host(h))
            {
                return Err(Resolution::Refused(why));
            }
            counter.fetch_add(1, Ordering::Relaxed);
            if attempt > 0 {
                self.stats.retries.fetch_add(1, Ordering::Relaxed);
            }
            let sent = tokio::time::timeout_at(deadline, http.execute(request)).await;
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
                    self.observe_rate_limit(host, response.headers());
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
                    log_note(&format!(
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

fn gate(host: &Host) -> Option<Instant> {
    *host.paused_until.lock().unwrap_or_else(|e| e.into_inner())
}

async fn wait_for_gate(host: &Host) {
    if let Some(until) = gate(host) {
        tokio::time::sleep_until(until).await;
    }
}

/// Takes the host's next request slot when it is paced, and waits for it.
async fn wait_for_pace(host: &Host, deadline: Instant) {
    let slot = {
        let mut pace = host.pace.lock().unwrap_or_else(|e| e.into_inner());
        pace.interval.map(|interval| {
            let now = Instant::now();
            let at = pace.next.map_or(now, |n| n.max(now));
            pace.next = Some(at + interval);
            at
        })
    };
    if let Some(at) = slot {
        tokio::time::sleep_until(at.min(deadline)).await;
    }
}

/// What a response's rate-limit headers say: requests left, and seconds until the
/// budget resets. Reads `RateLimit-Remaining: 76;w=21600` with `RateLimit-Reset`, and the
/// combined `RateLimit: limit=100, remaining=76, reset=30` of the IETF draft.
pub fn rate_limit(headers: &reqwest::header::HeaderMap) -> Option<(u64, Option<u64>)> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let number = |s: &str| s.trim().split(';').next()?.trim().parse::<u64>().ok();
    let window = |s: &str| {
        s.split(';')
            .find_map(|p| p.trim().strip_prefix("w="))
            .and_then(|w| w.trim().parse::<u64>().ok())
    };
    if let Some(remaining) = get("ratelimit-remaining") {
        let left = number(remaining)?;
        let reset = get("ratelimit-reset")
            .and_then(number)
            .or_else(|| window(remaining))
            .or_else(|| get("ratelimit-limit").and_then(window));
        return Some((left, reset));
    }
    let combined = get("ratelimit")?;
    let field = |name: &str| {
        combined.split(',').find_map(|p| {
            let (k, v) = p.trim().split_once('=')?;
            (k.trim() == name).then(|| v.trim().parse::<u64>().ok())?
        })
    };
    Some((field("remaining")?, field("reset")))
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

/// `os/architecture[/variant]` of a JSON object with those fields.
fn platform_of(p: &serde_json::Value) -> Option<String> {
    let os = p["os"].as_str()?;
    let arch = p["architecture"].as_str()?;
    Some(match p["variant"].as_str() {
        Some(variant) => format!("{os}/{arch}/{variant}"),
        None => format!("{os}/{arch}"),
    })
}

/// The platforms of an index (attestation entries, `unknown/unknown`, left out); `None`
/// when the body is not an index.
pub fn index_platforms(body: &[u8]) -> Option<Vec<String>> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let manifests = v["manifests"].as_array()?;
    Some(
        manifests
            .iter()
            .filter_map(|m| platform_of(&m["platform"]))
            .filter(|p| !p.starts_with("unknown/"))
            .collect(),
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn rate_limit_headers_in_their_forms() {
        // Docker Hub: the window rides on the value.
        assert_eq!(
            rate_limit(&headers(&[
                ("ratelimit-limit", "100;w=21600"),
                ("ratelimit-remaining", "76;w=21600")
            ])),
            Some((76, Some(21600)))
        );
        assert_eq!(
            rate_limit(&headers(&[
                ("ratelimit-remaining", "3"),
                ("ratelimit-reset", "20")
            ])),
            Some((3, Some(20)))
        );
        assert_eq!(
            rate_limit(&headers(&[("ratelimit", "limit=10, remaining=0, reset=5")])),
            Some((0, Some(5)))
        );
        assert_eq!(
            rate_limit(&headers(&[("ratelimit-remaining", "lots")])),
            None
        );
        assert_eq!(rate_limit(&HeaderMap::new()), None);
    }
}
