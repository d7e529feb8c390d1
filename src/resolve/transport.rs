//! The registry client's bottom layer: how bytes reach a registry host. A state per host
//! (transport and TLS client, concurrency limit, pacing and backoff gate, rate-limit
//! headers), one `send` with retries, timeouts and the overall deadline, and the check that
//! no request goes to a denied destination. It knows nothing of authentication.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use reqwest::header::RETRY_AFTER;
use reqwest::{RequestBuilder, Response, StatusCode};
use tokio::time::Instant;

use super::concurrency::{Signal, Window};
use super::hosts::{HostSettings, Transport as Scheme};
use super::{Options, Resolution, retry};

/// The largest body imagegate reads from a registry (token answers are a few KB).
const MAX_BODY: usize = 1 << 20;

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

pub struct Host {
    pub domain: String,
    /// `https://host` or `http://host`; an insecure host may drop to HTTP at its ping.
    pub base: Mutex<String>,
    pub transport: Scheme,
    /// The client for this host (its own when it has TLS settings), or why it has none.
    pub http: Result<reqwest::Client, String>,
    pub settings: HostSettings,
    pub timeout: Duration,
    /// How many requests it gets at once (adaptive, up to its ceiling).
    pub window: Window,
    pub paused_until: Mutex<Option<Instant>>,
    pub pace: Mutex<Pace>,
    pub ratelimit_remaining: Mutex<Option<String>>,
}

impl Host {
    pub fn base(&self) -> String {
        self.base.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn http(&self) -> Result<&reqwest::Client, Resolution> {
        self.http
            .as_ref()
            .map_err(|e| Resolution::RegistryError(e.clone()))
    }
}

/// Spacing between requests to a host: a fixed rate from the config, or one the host's
/// `RateLimit` headers ask for.
#[derive(Debug, Default)]
pub struct Pace {
    interval: Option<Duration>,
    next: Option<Instant>,
}

/// The hosts of a run and how to reach them.
pub struct Transport {
    http: reqwest::Client,
    pub opts: Options,
    hosts: Mutex<HashMap<String, Arc<Host>>>,
    pub stats: Stats,
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

impl Transport {
    pub fn new(opts: Options) -> Result<Transport, String> {
        let http = builder(&opts, &opts.registries.ca_files)?
            .build()
            .map_err(|e| format!("could not set up the HTTP client: {e}"))?;
        Ok(Transport {
            http,
            opts,
            hosts: Mutex::new(HashMap::new()),
            stats: Stats::default(),
        })
    }

    /// A host's state, set up on first use. Setting up reads certificate files, so it
    /// happens outside the lock; two first uses at once keep the first one's.
    pub fn host(&self, domain: &str) -> Arc<Host> {
        if let Some(h) = self
            .hosts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(domain)
        {
            return h.clone();
        }
        let host = self.set_up(domain);
        self.hosts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(domain.to_string())
            .or_insert(host)
            .clone()
    }

    /// A new host's state: its transport, its own TLS client when it has TLS settings, its
    /// limits.
    fn set_up(&self, domain: &str) -> Arc<Host> {
        let registries = &self.opts.registries;
        let settings = registries.host(domain);
        let api = if domain == crate::image_ref::DOCKER_HUB {
            crate::image_ref::DOCKER_HUB_API
        } else {
            domain
        };
        let transport = registries.transport(domain, &settings);
        let scheme = if transport == Scheme::Http {
            "http"
        } else {
            "https"
        };
        let http = if transport == Scheme::Insecure {
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
        Arc::new(Host {
            domain: domain.to_string(),
            base: Mutex::new(format!("{scheme}://{api}")),
            transport,
            http,
            timeout: settings.timeout.unwrap_or(self.opts.timeout),
            settings,
            window: Window::new(domain, per_registry),
            paused_until: Mutex::new(None),
            pace: Mutex::new(pace),
            ratelimit_remaining: Mutex::new(None),
        })
    }

    /// Sends a request with retries, honouring the host's backoff gate, the per-request
    /// timeout and the overall deadline. `windowed` requests (manifests, tags, blobs) take a
    /// place in the host's window for each attempt, give it back before waiting to retry, and
    /// tell the window how the registry answered; pings and tokens go outside it.
    pub async fn send(
        &self,
        host: &Host,
        counter: &AtomicUsize,
        windowed: bool,
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
            let permit = match windowed {
                true => Some(host.window.acquire().await),
                false => None,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            if attempt > 0 {
                self.stats.retries.fetch_add(1, Ordering::Relaxed);
            }
            let started = Instant::now();
            let path = request.url().path().to_string();
            let sent = tokio::time::timeout_at(deadline, http.execute(request)).await;
            if let Some(permit) = &permit
                && let Ok(Ok(response)) = &sent
            {
                permit.observe(match response.status().as_u16() {
                    429 | 503 => Signal::Refused,
                    _ => Signal::Answered(started.elapsed()),
                });
            }
            drop(permit);
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
                    let wait = retry::backoff(attempt);
                    log::debug!(
                        "{}: {path}: {} after {:.1}s; retrying in {:.1}s",
                        host.domain,
                        describe_error(&e, timeout),
                        started.elapsed().as_secs_f64(),
                        wait.as_secs_f64()
                    );
                    wait
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
                    log::debug!(
                        "{} answered {status}; retrying in {:.1}s",
                        host.domain,
                        wait.as_secs_f64()
                    );
                    wait
                }
            };
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
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
        let slow_below = (2 * host.window.limit() + 2) as u64;
        match (left, reset) {
            (0, Some(reset)) => {
                let until = Instant::now() + Duration::from_secs(reset);
                let mut gate = host.paused_until.lock().unwrap_or_else(|e| e.into_inner());
                if gate.is_none_or(|g| g < until) {
                    *gate = Some(until);
                    log::debug!(
                        "{} has no requests left in its rate limit; pausing {reset}s",
                        host.domain
                    );
                }
            }
            (left, Some(reset)) if left < slow_below => {
                let spread = Duration::from_secs_f64(reset as f64 / left as f64);
                pace.interval = Some(configured.map_or(spread, |c| c.max(spread)));
            }
            _ => pace.interval = configured,
        }
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
}

pub fn gate(host: &Host) -> Option<Instant> {
    *host.paused_until.lock().unwrap_or_else(|e| e.into_inner())
}

pub async fn wait_for_gate(host: &Host) {
    if let Some(until) = gate(host) {
        tokio::time::sleep_until(until).await;
    }
}

/// Takes the host's next request slot when it is paced, and waits for it.
pub async fn wait_for_pace(host: &Host, deadline: Instant) {
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

pub fn deadline_exceeded(opts: &Options) -> Resolution {
    Resolution::Unreachable(format!(
        "the overall deadline of {}s passed before the registry answered",
        opts.deadline_secs
    ))
}

/// Classifies a status that is neither success nor a definite answer.
pub fn final_status(status: StatusCode, what: &str) -> Resolution {
    let text = format!("{what} answered {}", describe_status(status));
    match status.as_u16() {
        429 => Resolution::RateLimited(format!("{text}, past every retry")),
        _ => Resolution::RegistryError(text),
    }
}

pub fn describe_status(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// A transport error, described without its URL (URLs carry no secrets, but keep it short).
pub fn describe_error(e: &reqwest::Error, timeout: Duration) -> String {
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

pub fn with_note(res: Resolution, note: Option<&str>) -> Resolution {
    match (res, note) {
        (Resolution::Denied(d), Some(n)) => Resolution::Denied(format!("{d}; note: {n}")),
        (res, _) => res,
    }
}

/// Reads a body up to [`MAX_BODY`] bytes; more is an error, not an allocation.
pub async fn read_limited(mut response: Response) -> Result<Vec<u8>, String> {
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
#[path = "transport_tests.rs"]
mod tests;
