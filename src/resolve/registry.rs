//! The registry client's top layer: what imagegate asks a registry. One manifest HEAD per
//! reference (through its rewrite or mirrors), tag lists, and the GETs of the platform policy
//! and `inspect`; every answer, however odd, becomes a [`Found`] or a [`Resolution`]. It asks
//! through the auth layer, which sends through the transport layer.

use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, Response, Url};

use super::auth::{Auth, Authorized, refused};
use super::transport::{RequestCounts, Transport, read_limited};
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

/// Tags asked for per page of a tag list.
const TAGS_PAGE: usize = 200;

/// The registry client shared by every request of a run.
pub struct Client {
    pub(super) auth: Auth,
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

/// A GET's body: read (bounded) on 200, `NotFound` on 404, and any other status refused.
async fn read_body(
    auth: &Authorized,
    response: Response,
    what: &str,
) -> Result<Vec<u8>, Resolution> {
    match response.status().as_u16() {
        200 => read_limited(response)
            .await
            .map_err(|e| Resolution::RegistryError(format!("the {what} could not be read: {e}"))),
        404 => Err(Resolution::NotFound),
        _ => Err(refused(auth, response.status(), &format!("{what} GET"))),
    }
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

impl Client {
    pub fn new(opts: Options) -> Result<Client, String> {
        Ok(Client {
            auth: Auth::new(Transport::new(opts)?),
        })
    }

    /// Fetches tokens for many repositories at once (see [`Auth::prefetch_tokens`]).
    pub async fn prefetch_tokens(&self, refs: &[ImageRef]) {
        self.auth.prefetch_tokens(refs).await;
    }

    /// Where a repository's credentials come from (never the secret).
    pub async fn credential_source(&self, r: &ImageRef) -> (String, Option<String>) {
        self.auth.credential_source(r).await
    }

    /// Whether a registry accepts the credentials found for it (`imagegate auth`).
    pub async fn login_check(
        &self,
        domain: &str,
        repo: Option<&str>,
    ) -> Result<String, Resolution> {
        self.auth.login_check(domain, repo).await
    }

    pub fn options(&self) -> &Options {
        &self.auth.transport.opts
    }

    pub fn counts(&self) -> RequestCounts {
        self.auth.transport.counts()
    }

    /// The last `ratelimit-remaining` each registry sent, for verbose output.
    pub fn rate_limits(&self) -> Vec<(String, String)> {
        self.auth.transport.rate_limits()
    }

    /// The URL base actually used for a reference's registry (`https://ghcr.io`).
    pub fn endpoint(&self, r: &ImageRef) -> String {
        self.auth.host(&r.domain).base()
    }

    /// Resolves a reference where it is really served: through its rewrite, else its
    /// mirrors in order (a mirror that cannot answer passes to the next), else itself.
    pub async fn resolve_routed(&self, r: &ImageRef) -> Result<Found, Resolution> {
        let routes = self.routes(r);
        let last = routes.len() - 1;
        for (i, (target, via)) in routes.into_iter().enumerate() {
            match self.resolve(&target).await {
                Ok(f) => return Ok(Found { via, ..f }),
                Err(res) if i < last => log::debug!(
                    "mirror {} could not answer for {}: {}; trying the next",
                    target.domain,
                    r.canonical(),
                    res.detail()
                ),
                Err(res) => return Err(res),
            }
        }
        unreachable!("a reference has at least one route")
    }

    /// Where a reference is asked, in order, with the host named as having answered: its
    /// rewrite alone; else its mirrors, then the registry (or the host its `hosts.toml`
    /// names as `server`).
    pub fn routes(&self, r: &ImageRef) -> Vec<(ImageRef, Option<String>)> {
        let registries = &self.auth.transport.opts.registries;
        if let Some(target) = registries.rewrite(r) {
            let via = Some(target.domain.clone());
            return vec![(target, via)];
        }
        let host = self.auth.host(&r.domain);
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
            let host = self.auth.host(&target.domain);
            let cas: Vec<String> = host
                .settings
                .ca_files
                .iter()
                .chain(&self.auth.transport.opts.registries.ca_files)
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
            self.auth.unbatch(r).await;
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
        let auth = self.auth.authorize(&target).await?;
        let url = format!("{}/v2/{}/blobs/{digest}", auth.host.base(), target.path);
        let response = self
            .get(&auth, &self.auth.transport.stats.gets, &url)
            .await?;
        let blob = read_body(&auth, response, "image config").await?;
        let c: serde_json::Value = serde_json::from_slice(&blob).map_err(|_| malformed())?;
        Ok(platform_of(&c).into_iter().collect())
    }

    /// Fetches a manifest's body (a GET): only where a user asks for more than existence.
    pub async fn manifest(&self, r: &ImageRef) -> Result<Vec<u8>, Resolution> {
        let (auth, response) = self.manifest_request(r, Method::GET).await?;
        read_body(&auth, response, "manifest").await
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
        let auth = self.auth.authorize(r).await?;
        let base = auth.host.base();
        let mut url = format!("{base}/v2/{}/tags/list?n={TAGS_PAGE}", r.path);
        let mut tags = Vec::new();
        for _ in 0..max_pages {
            let response = self
                .get(&auth, &self.auth.transport.stats.tag_lists, &url)
                .await?;
            let next = response
                .headers()
                .get(reqwest::header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(next_link);
            let page = match read_body(&auth, response, "tag list").await {
                Err(Resolution::NotFound) => return Ok(None),
                other => other?,
            };
            #[derive(serde::Deserialize)]
            struct TagList {
                #[serde(default)]
                tags: Option<Vec<String>>,
            }
            let page: TagList = serde_json::from_slice(&page).map_err(|_| {
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

    /// A GET with the reference's authorization.
    async fn get(
        &self,
        auth: &Authorized,
        counter: &std::sync::atomic::AtomicUsize,
        url: &str,
    ) -> Result<Response, Resolution> {
        self.auth
            .request(auth, counter, Method::GET, url, None)
            .await
    }

    /// A HEAD or GET of the manifest a reference pulls, with the full Accept list.
    async fn manifest_request(
        &self,
        r: &ImageRef,
        method: Method,
    ) -> Result<(Authorized, Response), Resolution> {
        let auth = self.auth.authorize(r).await?;
        let url = format!(
            "{}/v2/{}/manifests/{}",
            auth.host.base(),
            r.path,
            r.pull_reference()
        );
        let counter = if method == Method::HEAD {
            &self.auth.transport.stats.heads
        } else {
            &self.auth.transport.stats.gets
        };
        let response = self
            .auth
            .request(&auth, counter, method, &url, Some(MANIFEST_ACCEPT))
            .await?;
        Ok((auth, response))
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

#[cfg(test)]
mod tests {
    use super::super::scripted::{Server, options, reply};
    use super::*;

    fn digest(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[tokio::test]
    async fn a_head_answers_found_not_found_or_a_digest_mismatch() {
        let d = digest('a');
        let answer = d.clone();
        let registry = Server::start(move |path, _| {
            // The tag exists; the pinned digest `b` is answered with digest `a`.
            if path == "/v2/" || path.ends_with("/manifests/1") || path.contains(&digest('b')) {
                reply("200 OK", &[("Docker-Content-Digest", &answer)], "")
            } else {
                reply("404 Not Found", &[], "")
            }
        });
        let client = Client::new(options()).unwrap();
        let at = |s: &str| ImageRef::parse(&format!("{}/app{s}", registry.host)).unwrap();
        let found = client.resolve(&at(":1")).await.unwrap();
        assert_eq!(found.digest.as_deref(), Some(d.as_str()));
        assert_eq!(client.resolve(&at(":2")).await, Err(Resolution::NotFound));
        let pinned = at(&format!("@{}", digest('b')));
        assert!(matches!(
            client.resolve(&pinned).await,
            Err(Resolution::DigestMismatch(_))
        ));
        assert_eq!(client.counts().heads, 3);
        assert_eq!(client.counts().gets, 0, "existence is a HEAD, never a GET");
    }

    #[tokio::test]
    async fn tag_lists_follow_links_on_the_same_origin_only() {
        let other = Server::start(|_, _| reply("200 OK", &[], r#"{"tags":["stolen"]}"#));
        let foreign = format!(
            "<http://{}/v2/app/tags/list?last=2>; rel=\"next\"",
            other.host
        );
        let registry = Server::start(move |path, _| {
            if path == "/v2/" {
                reply("200 OK", &[], "")
            } else if path.contains("last=1") {
                reply("200 OK", &[("Link", &foreign)], r#"{"tags":["2"]}"#)
            } else {
                let next = "</v2/app/tags/list?n=200&last=1>; rel=\"next\"";
                reply("200 OK", &[("Link", next)], r#"{"tags":["1"]}"#)
            }
        });
        let client = Client::new(options()).unwrap();
        let r = ImageRef::parse(&format!("{}/app:9", registry.host)).unwrap();
        let tags = client.tags(&r, 5).await.unwrap().unwrap();
        assert_eq!(tags, ["1", "2"]);
        assert!(
            other.seen.lock().unwrap().is_empty(),
            "a foreign link was followed"
        );
    }

    #[test]
    fn links_resolve_against_the_page_and_keep_its_origin() {
        let page = "http://127.0.0.1:5000/v2/app/tags/list?n=200";
        assert_eq!(
            same_origin_link(page, "/v2/app/tags/list?last=a").as_deref(),
            Some("http://127.0.0.1:5000/v2/app/tags/list?last=a")
        );
        for bad in [
            "http://127.0.0.1:5000@127.0.0.1:6000/v2/x",
            "http://127.0.0.1:50001/v2/x",
            "https://127.0.0.1:5000/v2/x",
            "//evil.example/v2/x",
        ] {
            assert_eq!(same_origin_link(page, bad), None, "{bad}");
        }
    }
}
