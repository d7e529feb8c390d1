//! Pull tokens, the part of the auth layer that talks to token services: one token per
//! repository fetched once and shared (single-flight), scopes batched per request, identity
//! tokens exchanged, and the realm rules: a registry's credentials go to its token realm
//! only on the registry's own site and over TLS, and a realm may not lead into a private
//! network the registry is not in.

use std::collections::HashMap;

use reqwest::Url;
use reqwest::header::AUTHORIZATION;
use tokio::time::Instant;

use super::Resolution;
use super::auth::{Auth, HostAuth, TokenResult, log_note};
use super::challenge::{Challenge, TokenResponse};
use super::credentials::Secret;
use super::transport::{describe_status, final_status, read_limited};
use crate::image_ref::ImageRef;

/// How many repository scopes one token request asks for at most.
const SCOPES_PER_TOKEN: usize = 20;

impl Auth {
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
            .send(host, &self.transport.stats.tokens, false, || match secret {
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

#[cfg(test)]
mod tests {
    use super::*;

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
