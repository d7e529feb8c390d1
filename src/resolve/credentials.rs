//! Where a registry's credentials come from, searched the way docker and podman search
//! them, so that an existing `docker login` or `podman login` just works. Every lookup
//! names its source (a file or a variable, never the secret). Blocking: a credential
//! helper may run, so callers run this off the async runtime.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::challenge::Credential;
use crate::config::CredentialSource;

/// A secret for one registry, in the form it was stored.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// User name and password (or a token used as the password).
    Basic(Credential),
    /// An OAuth2 refresh token (`identitytoken`), exchanged at the token endpoint.
    IdentityToken(String),
    /// A registry access token sent as is (`Authorization: Bearer`).
    Bearer(String),
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Secret::Basic(_) => "Basic(<redacted>)",
            Secret::IdentityToken(_) => "IdentityToken(<redacted>)",
            Secret::Bearer(_) => "Bearer(<redacted>)",
        })
    }
}

impl Secret {
    /// The `Authorization` header the secret gives by itself, without a token service:
    /// Basic for a user and password, Bearer for a token; an identity token gives none.
    pub fn direct_header(&self) -> Option<String> {
        match self {
            Secret::Basic(c) => Some(c.basic_header()),
            Secret::Bearer(t) => Some(format!("Bearer {t}")),
            Secret::IdentityToken(_) => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Secret::Basic(_) => "user name and password",
            Secret::IdentityToken(_) => "identity token",
            Secret::Bearer(_) => "bearer token",
        }
    }
}

/// A secret and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced {
    pub secret: Secret,
    /// `podman auth file /run/user/1000/containers/auth.json (quay.io/org)`, say.
    pub source: String,
}

/// Everything one host's search found: credentials for namespaces of the host (podman's
/// `quay.io/org` keys) and for the host as a whole, or why the search failed.
#[derive(Debug, Clone, Default)]
pub struct HostCredentials {
    /// Longest prefix first.
    pub namespaces: Vec<(String, Sourced)>,
    pub host: Option<Sourced>,
    /// A lookup that failed (a broken helper or file): anonymous, with this note.
    pub note: Option<String>,
}

impl HostCredentials {
    /// The credentials for one repository of the host: the longest namespace key that
    /// holds it, else the host's own.
    pub fn for_repository(&self, repo: &str) -> Option<(&str, &Sourced)> {
        self.namespaces
            .iter()
            .find(|(prefix, _)| {
                repo == prefix
                    || repo
                        .strip_prefix(prefix.as_str())
                        .is_some_and(|r| r.starts_with('/'))
            })
            .map(|(p, s)| (p.as_str(), s))
            .or_else(|| self.host.as_ref().map(|s| ("", s)))
    }
}

/// The key Docker uses for a registry domain in `config.json`.
pub fn docker_config_key(domain: &str) -> String {
    if domain == crate::image_ref::DOCKER_HUB {
        "https://index.docker.io/v1/".to_string()
    } else {
        domain.to_string()
    }
}

/// `IMAGEGATE_AUTH_<HOST>`, with the host encoded so that no two hosts share a name: letters
/// and digits upper-cased, `.` as `_`, `-` as `__` and the port's `:` as `___` (Terraform's
/// `TF_TOKEN_` rule, with ports). `registry.corp.example` is `REGISTRY_CORP_EXAMPLE` and
/// `registry-corp.example` is `REGISTRY__CORP_EXAMPLE`. A host that is not a plain name or
/// IPv4 address (IPv6 literals) has no variable.
pub fn env_var_name(domain: &str) -> Option<String> {
    let mut host = String::with_capacity(domain.len() + 8);
    for c in domain.chars() {
        match c {
            c if c.is_ascii_alphanumeric() => host.push(c.to_ascii_uppercase()),
            '.' => host.push('_'),
            '-' => host.push_str("__"),
            ':' => host.push_str("___"),
            _ => return None,
        }
    }
    // Only names whose encoding reads back as themselves: a label never starts or ends
    // with `-`, and `:` comes once, before the port's digits.
    (decode_env_host(&host).as_deref() == Some(&domain.to_ascii_uppercase()))
        .then(|| format!("IMAGEGATE_AUTH_{host}"))
}

/// The host an encoded `IMAGEGATE_AUTH_` suffix names, upper-cased, if the encoding is one
/// [`env_var_name`] makes.
fn decode_env_host(encoded: &str) -> Option<String> {
    let mut out = String::new();
    let mut run = 0;
    let mut port = false;
    let flush = |run: usize, out: &mut String, port: &mut bool| -> Option<()> {
        match run {
            0 => {}
            1 => out.push('.'),
            3 if !*port => {
                *port = true;
                out.push(':')
            }
            n if n % 2 == 0 => out.push_str(&"-".repeat(n / 2)),
            _ => return None,
        }
        Some(())
    };
    for c in encoded.chars() {
        if c == '_' {
            run += 1;
            continue;
        }
        if out.is_empty() && run > 0 {
            return None;
        }
        flush(run, &mut out, &mut port)?;
        run = 0;
        if port && !c.is_ascii_digit() {
            return None;
        }
        out.push(c);
    }
    if run > 0 || out.is_empty() {
        return None;
    }
    Some(out)
}

/// The name earlier versions read, every non-alphanumeric character as `_`: ambiguous, so
/// it is no longer read, only pointed at.
fn legacy_env_var_name(domain: &str) -> String {
    let host: String = domain
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("IMAGEGATE_AUTH_{host}")
}

use crate::env::var as env;

/// `user:password` as Basic credentials, or a bare token as a bearer token.
fn from_pair_or_token(value: &str, source: String) -> Sourced {
    let secret = match value.split_once(':') {
        Some((user, password)) => Secret::Basic(Credential {
            username: user.to_string(),
            password: password.to_string(),
        }),
        None => Secret::Bearer(value.trim().to_string()),
    };
    Sourced { secret, source }
}

/// Searches for a host's credentials, in this order (first found wins):
/// 1. the config file's `credentials` for the host;
/// 2. `IMAGEGATE_AUTH_<HOST>`;
/// 3. `DOCKER_AUTH_CONFIG` (GitLab), read as a config.json document;
/// 4. podman's auth files: `REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`,
///    `$XDG_CONFIG_HOME/containers/auth.json`;
/// 5. the Docker config (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`), with
///    its `credsStore` and `credHelpers`;
/// 6. CI conveniences: `GITHUB_TOKEN` for ghcr.io, `CI_REGISTRY_USER`/`CI_REGISTRY_PASSWORD`
///    (or `CI_JOB_TOKEN`) for `$CI_REGISTRY`, and GitLab's dependency proxy variables.
pub fn lookup(domain: &str, configured: Option<&CredentialSource>) -> HostCredentials {
    let mut out = HostCredentials::default();
    match configured {
        Some(CredentialSource::Anonymous) => return out,
        Some(CredentialSource::Env(var)) => {
            match env(var) {
                Some(v) => {
                    out.host = Some(from_pair_or_token(&v, format!("${var} (config)")));
                }
                None => out.note = Some(format!("the config names ${var}, which is not set")),
            }
            return out;
        }
        Some(CredentialSource::Helper(name)) => {
            match run_helper(domain, name) {
                Ok(Some(s)) => out.host = Some(s),
                Ok(None) => {}
                Err(e) => out.note = Some(e),
            }
            return out;
        }
        None => {}
    }
    if let Some(var) = env_var_name(domain) {
        if let Some(v) = env(&var) {
            out.host = Some(from_pair_or_token(&v, format!("${var}")));
            return out;
        }
        let legacy = legacy_env_var_name(domain);
        if legacy != var && env(&legacy).is_some() {
            out.note = Some(format!(
                "${legacy} is not read for {domain}: that name is shared by other hosts; name it ${var}"
            ));
        }
    }
    let mut files: Vec<(String, Option<String>)> = Vec::new();
    if let Some(doc) = env("DOCKER_AUTH_CONFIG") {
        files.push(("$DOCKER_AUTH_CONFIG".into(), Some(doc)));
    }
    for path in podman_auth_files() {
        let text = std::fs::read_to_string(&path).ok();
        files.push((format!("podman auth file {}", path.display()), text));
    }
    if let Some(path) = docker_config_path() {
        let text = std::fs::read_to_string(&path).ok();
        files.push((format!("Docker config {}", path.display()), text));
    }
    for (name, text) in files {
        let Some(text) = text else { continue };
        match from_config_document(domain, &text, &name) {
            Ok(found) => {
                out.namespaces.extend(found.namespaces);
                if found.host.is_some() {
                    out.host = found.host;
                    break;
                }
            }
            Err(note) => {
                out.note = Some(note);
                break;
            }
        }
    }
    out.namespaces
        .sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
    if out.host.is_none() && out.note.is_none() {
        out.host = ci_convenience(domain);
    }
    out
}

/// podman's auth files, in its order.
fn podman_auth_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(p) = env("REGISTRY_AUTH_FILE") {
        files.push(PathBuf::from(p));
    }
    if let Some(dir) = env("XDG_RUNTIME_DIR") {
        files.push(PathBuf::from(dir).join("containers/auth.json"));
    }
    let config_home = env("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".config")));
    if let Some(dir) = config_home {
        files.push(dir.join("containers/auth.json"));
    }
    files
}

/// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn docker_config_path() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => Some(PathBuf::from(dir).join("config.json")),
        None => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json")),
    }
}

#[derive(Deserialize)]
struct ConfigKeys {
    #[serde(default)]
    auths: HashMap<String, serde_json::Value>,
}

/// Credentials for a host from one config.json-shaped document: namespace keys read here,
/// the host's own entry (with helpers and identity tokens) through docker_credential.
fn from_config_document(domain: &str, text: &str, name: &str) -> Result<HostCredentials, String> {
    use docker_credential::CredentialRetrievalError as E;
    let keys: ConfigKeys = serde_json::from_str(text).map_err(|e| {
        format!(
            "{name} is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    let mut out = HostCredentials::default();
    let api = if domain == crate::image_ref::DOCKER_HUB {
        "index.docker.io"
    } else {
        domain
    };
    for key in keys.auths.keys() {
        let bare = key
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        let Some(namespace) = bare
            .strip_prefix(domain)
            .or_else(|| bare.strip_prefix(api))
            .and_then(|rest| rest.strip_prefix('/'))
            .filter(|ns| !ns.is_empty() && !ns.starts_with("v1") && !ns.starts_with("v2"))
        else {
            continue;
        };
        let source = format!("{name} ({domain}/{namespace})");
        match docker_credential::get_credential_from_reader(text.as_bytes(), key) {
            Ok(c) => out
                .namespaces
                .push((namespace.to_string(), sourced(c, source))),
            Err(e) => return Err(format!("{name}: {}", describe_error(&e, key))),
        }
    }
    let key = docker_config_key(domain);
    match docker_credential::get_credential_from_reader(text.as_bytes(), &key) {
        Ok(c) => out.host = Some(sourced(c, name.to_string())),
        Err(E::NoCredentialConfigured | E::ConfigNotFound) => {}
        Err(E::HelperFailure { stdout, .. }) if stdout.contains("not found") => {}
        Err(e) => return Err(format!("{name}: {}", describe_error(&e, &key))),
    }
    Ok(out)
}

fn sourced(c: docker_credential::DockerCredential, source: String) -> Sourced {
    use docker_credential::DockerCredential;
    let secret = match c {
        DockerCredential::UsernamePassword(username, password) => {
            Secret::Basic(Credential { username, password })
        }
        DockerCredential::IdentityToken(t) => Secret::IdentityToken(t),
    };
    Sourced { secret, source }
}

/// Runs `docker-credential-<name> get` for a host, as the config file asks.
fn run_helper(domain: &str, name: &str) -> Result<Option<Sourced>, String> {
    let doc = serde_json::json!({ "credHelpers": { docker_config_key(domain): name } });
    from_config_document(
        domain,
        &doc.to_string(),
        &format!("docker-credential-{name}"),
    )
    .map(|found| found.host)
}

/// A description of a credential error that cannot carry a secret (helper output can).
fn describe_error(e: &docker_credential::CredentialRetrievalError, key: &str) -> String {
    use docker_credential::CredentialRetrievalError as E;
    match e {
        E::HelperFailure { helper, .. } => format!("credential helper `{helper}` failed for {key}"),
        E::HelperCommunicationError => {
            format!("could not run the credential helper for {key} (is it installed?)")
        }
        E::MalformedHelperResponse => {
            format!("the credential helper for {key} answered malformed JSON")
        }
        E::CredentialDecodingError => {
            format!("the `auth` entry for {key} is not valid base64 user:password")
        }
        E::CredentialMismatchError => {
            format!("the entry for {key} has `auth` and `username`/`password` that disagree")
        }
        _ => format!("the entry for {key} could not be used"),
    }
}

/// Credentials CI systems hand every job.
fn ci_convenience(domain: &str) -> Option<Sourced> {
    let basic = |username: String, password: String, source: &str| Sourced {
        secret: Secret::Basic(Credential { username, password }),
        source: source.to_string(),
    };
    if domain == "ghcr.io"
        && let Some(token) = env("GITHUB_TOKEN")
    {
        let user = env("GITHUB_ACTOR").unwrap_or_else(|| "github-actions".into());
        return Some(basic(user, token, "$GITHUB_TOKEN"));
    }
    let same_host = |var: &str| {
        env(var).is_some_and(|h| {
            let h = h.trim_end_matches(":443");
            h == domain || h == domain.trim_end_matches(":443")
        })
    };
    if same_host("CI_REGISTRY") {
        if let (Some(u), Some(p)) = (env("CI_REGISTRY_USER"), env("CI_REGISTRY_PASSWORD")) {
            return Some(basic(u, p, "$CI_REGISTRY_USER/$CI_REGISTRY_PASSWORD"));
        }
        if let Some(t) = env("CI_JOB_TOKEN") {
            return Some(basic("gitlab-ci-token".into(), t, "$CI_JOB_TOKEN"));
        }
    }
    if same_host("CI_DEPENDENCY_PROXY_SERVER")
        && let (Some(u), Some(p)) = (
            env("CI_DEPENDENCY_PROXY_USER"),
            env("CI_DEPENDENCY_PROXY_PASSWORD"),
        )
    {
        return Some(basic(
            u,
            p,
            "$CI_DEPENDENCY_PROXY_USER/$CI_DEPENDENCY_PROXY_PASSWORD",
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_are_unique_per_host() {
        // Issue 13, row 3: every pair of distinct hosts gets distinct variables.
        let parts = ["a", "b", "1", "a-b", "a--b", "ab", "a-1"];
        let mut hosts = Vec::new();
        for x in parts {
            for y in parts {
                hosts.push(format!("{x}.{y}"));
                hosts.push(format!("{x}-{y}"));
                hosts.push(format!("{x}{y}"));
                hosts.push(format!("{x}.{y}:5000"));
                hosts.push(format!("{x}-{y}:50"));
                hosts.push(format!("{x}.{y}.{x}"));
            }
        }
        let mut seen = std::collections::HashMap::new();
        for h in &hosts {
            if let Some(v) = env_var_name(h)
                && let Some(other) = seen.insert(v.clone(), h.clone())
            {
                assert_eq!(&other, h, "{other} and {h} share {v}");
            }
        }
        assert!(seen.len() > 200, "{}", seen.len());
    }
    use base64::Engine;

    fn basic(u: &str, p: &str) -> Secret {
        Secret::Basic(Credential {
            username: u.into(),
            password: p.into(),
        })
    }

    #[test]
    fn namespace_keys_win_by_length() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let doc = serde_json::json!({ "auths": {
            "quay.io": { "auth": b64("host:h") },
            "quay.io/org": { "auth": b64("org:o") },
            "quay.io/org/team": { "auth": b64("team:t") },
            "https://index.docker.io/v1/": { "auth": b64("hub:x") },
            "ghcr.io/other": { "auth": b64("g:g") },
        }})
        .to_string();
        let mut found = from_config_document("quay.io", &doc, "f").unwrap();
        found
            .namespaces
            .sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        let pick = |repo: &str| found.for_repository(repo).map(|(_, s)| s.secret.clone());
        assert_eq!(pick("org/team/app"), Some(basic("team", "t")));
        assert_eq!(pick("org/app"), Some(basic("org", "o")));
        assert_eq!(pick("organisation/app"), Some(basic("host", "h")));
        assert_eq!(pick("other/app"), Some(basic("host", "h")));
        assert_eq!(
            found.for_repository("org/x").unwrap().1.source,
            "f (quay.io/org)"
        );
        let hub = from_config_document("docker.io", &doc, "f").unwrap();
        assert_eq!(hub.host.unwrap().secret, basic("hub", "x"));
    }

    #[test]
    fn identity_tokens_and_bad_documents() {
        let doc = r#"{"auths":{"acr.example.io":{"identitytoken":"refresh-me"}}}"#;
        let found = from_config_document("acr.example.io", doc, "f").unwrap();
        assert_eq!(
            found.host.unwrap().secret,
            Secret::IdentityToken("refresh-me".into())
        );
        let err = from_config_document("x.io", "{not json", "$DOCKER_AUTH_CONFIG").unwrap_err();
        assert!(err.starts_with("$DOCKER_AUTH_CONFIG is not valid JSON (line 1"));
        let err =
            from_config_document("x.io", r#"{"auths":{"x.io":{"auth":"%%%"}}}"#, "f").unwrap_err();
        assert!(err.contains("not valid base64"), "{err}");
        assert!(!err.contains("%%%"));
    }

    #[test]
    fn env_names_and_pairs() {
        let name = |h: &str| env_var_name(h).unwrap_or_default();
        assert_eq!(name("ghcr.io"), "IMAGEGATE_AUTH_GHCR_IO");
        assert_eq!(name("127.0.0.1:5000"), "IMAGEGATE_AUTH_127_0_0_1___5000");
        // Issue 13, row 3: look-alike hosts never share a variable.
        assert_eq!(
            name("registry.corp.example"),
            "IMAGEGATE_AUTH_REGISTRY_CORP_EXAMPLE"
        );
        assert_eq!(
            name("registry-corp.example"),
            "IMAGEGATE_AUTH_REGISTRY__CORP_EXAMPLE"
        );
        assert_ne!(name("europe-docker.pkg.dev"), name("europe-docker-pkg.dev"));
        assert_ne!(name("europe-docker.pkg.dev"), name("europe.docker.pkg.dev"));
        assert_eq!(
            name("xn--bcher-kva.example"),
            "IMAGEGATE_AUTH_XN____BCHER__KVA_EXAMPLE"
        );
        assert_eq!(env_var_name("[::1]:5000"), None);
        assert_eq!(env_var_name("a..b"), None);
        assert_eq!(env_var_name("-a.b"), None);
        assert_eq!(
            from_pair_or_token("u:p:q", "s".into()).secret,
            basic("u", "p:q")
        );
        assert_eq!(
            from_pair_or_token("tok", "s".into()).secret,
            Secret::Bearer("tok".into())
        );
        assert!(!format!("{:?}", Secret::Bearer("tok".into())).contains("tok"));
    }
}
