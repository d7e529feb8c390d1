//! The config file (`.imagegate.yaml` at the repository root, or `--config PATH`): the
//! team's rules in one place. The types here are the schema: serde reads them (unknown keys
//! are errors) and schemars publishes them as JSON Schema. The YAML is parsed with positions
//! first, so every error points at the line and column it is about.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Deserialize;

use crate::error::Error;
use crate::manifest::yaml::{self, Document, NodeId, ScalarType};
use crate::source::SourceFile;

/// The name looked for at the repository root.
pub const FILE_NAME: &str = ".imagegate.yaml";

/// imagegate's configuration. Command-line flags win over it; lists that only add (excludes,
/// skips, hosts) are joined with the flags'.
#[derive(Debug, Default, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(title = "imagegate configuration (.imagegate.yaml)")]
pub struct Config {
    /// Where the file was read from (not a key).
    #[serde(skip)]
    #[schemars(skip)]
    pub path: Option<PathBuf>,
    /// The file's text, so that a rule broken later can still point at its line (not a key).
    #[serde(skip)]
    #[schemars(skip)]
    pub text: Option<String>,
    /// Path globs of the files to read. Default: `*.yaml`, `*.yml` and `Kustomization`.
    pub include: Vec<String>,
    /// Path globs of files never to read.
    pub exclude: Vec<String>,
    /// Image globs never to check, such as `registry.internal/**`. They are matched against
    /// the normalised reference (`docker.io/library/nginx:1.27`), and against the name as
    /// written.
    pub skip: Vec<String>,
    /// Path globs of files read as Helm values besides those next to a `Chart.yaml`.
    pub helm_values: Vec<String>,
    /// Files of Flux variables, relative to this file: ConfigMaps (`data`), Secrets
    /// (`stringData`, `data`) or plain mappings of names to values, as
    /// `postBuild.substituteFrom` brings them from the cluster. They resolve a `${VAR}`
    /// that no Flux Kustomization's `postBuild.substitute` defines; the first file that
    /// defines a name wins.
    pub variables: Vec<String>,
    /// Guess images in kinds imagegate does not know: strings under `image` or `imageName`
    /// keys that name a registry, a tag or a digest, reported with a `(heuristic)` context.
    /// Default: on. A trusted config's value wins over the repository's.
    #[serde(default)]
    pub image_heuristic: Option<bool>,
    /// Treat an unresolved `${VAR}` as an error instead of a warning.
    pub strict: bool,
    /// Registries (`host` or `host:port`) reached over plain HTTP or unverified TLS.
    pub insecure_registries: Vec<String>,
    /// Rules every reference must follow. All are off by default.
    pub policy: Policy,
    /// Settings for one registry, keyed by `host` or `host:port` (`docker.io` for Docker
    /// Hub).
    pub registries: BTreeMap<String, RegistrySettings>,
    /// The local result cache.
    pub cache: CacheSettings,
    /// References that could not be decided: `error` fails (exit 3), `warn` passes with
    /// warnings (exit 0). `--undecided` and `IMAGEGATE_UNDECIDED` win over it.
    pub undecided: Option<crate::undecided::Undecided>,
    /// Also run the real engines (`kustomize build` on every kustomization root, `helm
    /// template` on every chart release the check covers) and check every image of their
    /// output; an image imagegate's models did not predict is reported at the kustomization
    /// (`rendered by kustomize`) or the release's chart line (`rendered by helm`). The
    /// engines never run exec or container functions or plugins, and helm downloads nothing. `--render` and `IMAGEGATE_RENDER` win over it; a
    /// trusted config's value wins over the repository's.
    pub render: Option<bool>,
    /// The programs `render` runs. Trusted config only: a repository's config naming one is
    /// refused (exit 2), since it would choose a program to run.
    pub engines: Engines,
}

/// Where the engines `--render` runs are.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Engines {
    /// The kustomize program: a bare name looked up on `PATH`, or a path (relative to this
    /// file). A program named `kubectl*` is run as `kubectl kustomize`. Default: `kustomize`
    /// on `PATH`, else `kubectl`.
    pub kustomize: Option<String>,
    /// The helm program `render` runs for chart releases (`helm template`): a bare name
    /// looked up on `PATH`, or a path (relative to this file). Default: `helm` on `PATH`.
    pub helm: Option<String>,
}

/// Policy rules. Each one that is broken is an error finding.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Policy {
    /// Refuse `:latest` and untagged references (a digest-pinned one passes).
    pub deny_latest: bool,
    /// Require every reference to carry a digest (`@sha256:...`).
    pub require_digest: bool,
    /// Registry or repository globs that references may come from, such as `ghcr.io/acme/**`
    /// or `*.dkr.ecr.*.amazonaws.com/**`. Empty means any.
    pub allowed_registries: Vec<String>,
    /// Platforms every image must provide, such as `linux/amd64` and `linux/arm64`. The
    /// image's index is fetched (a GET) for references that exist.
    pub platforms: Vec<String>,
}

impl Policy {
    pub fn any(&self) -> bool {
        self.deny_latest
            || self.require_digest
            || !self.allowed_registries.is_empty()
            || !self.platforms.is_empty()
    }
}

/// Settings for one registry host.
#[derive(Debug, Default, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RegistrySettings {
    /// Requests in flight to this registry at once.
    pub concurrency: Option<usize>,
    /// Requests per second at most.
    pub requests_per_second: Option<f64>,
    /// Seconds one request may take.
    pub timeout: Option<u64>,
    /// PEM file of CA certificates to trust for this registry, besides the system roots.
    pub ca_file: Option<String>,
    /// PEM client certificate for mutual TLS (with `client-key`).
    pub client_cert: Option<String>,
    /// PEM private key of `client-cert`.
    pub client_key: Option<String>,
    /// `true`: HTTPS without verification, then plain HTTP (always warned about).
    /// `false`: verified HTTPS, even on loopback, where plain HTTP is the default.
    pub insecure: Option<bool>,
    /// Mirrors (`host[/prefix]`) tried in order before this registry; one that cannot
    /// answer passes to the next.
    pub mirrors: Vec<String>,
    /// Replace this registry with another `host[/prefix]`, with no fallback (pull-through
    /// caches such as ECR, Harbor proxy projects, GitLab's dependency proxy).
    pub rewrite: Option<String>,
    /// Where this registry's credentials come from instead of the usual search.
    pub credentials: Option<CredentialSource>,
}

/// Where a registry's credentials come from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub enum CredentialSource {
    /// Never send credentials.
    Anonymous,
    /// Run `docker-credential-<name> get`, found on `PATH`. The name is bare, as docker
    /// requires: letters, digits, `.`, `_` and `-`.
    Helper(#[schemars(regex(pattern = r"^[A-Za-z0-9._-]+$"))] String),
    /// Read `user:password` (or a bare token) from this environment variable.
    Env(String),
}

/// The local result cache (`$XDG_CACHE_HOME/imagegate`).
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct CacheSettings {
    /// Use the cache. Default: on outside CI, off in CI.
    pub enabled: Option<bool>,
    /// Seconds a tag's result is trusted. Digests never expire. Default: 600.
    pub tag_ttl: Option<u64>,
}

/// The JSON Schema of the config file, pretty-printed.
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(Config);
    serde_json::to_string_pretty(&schema).expect("a schema serialises") + "\n"
}

/// The nearest `.imagegate.yaml` from `dir` up to the repository root (`dir` alone
/// outside a repository).
pub fn find(dir: &Path) -> Option<PathBuf> {
    let in_repo = crate::paths::find_repo_root(dir).is_some();
    for d in dir.ancestors() {
        if d.join(FILE_NAME).is_file() {
            return Some(d.join(FILE_NAME));
        }
        if !in_repo || d.join(".git").exists() {
            break;
        }
    }
    None
}

/// Reads and parses one config file.
pub fn load_file(path: &Path) -> Result<Config, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Path {
        path: path.to_path_buf(),
        source: e,
    })?;
    parse(path, &text)
}

/// Parses a config file's text.
pub fn parse(path: &Path, text: &str) -> Result<Config, Error> {
    let source = SourceFile::new(path.to_path_buf(), text);
    let at = |offset: usize, message: String| crate::error::Located::at(&source, offset, message);
    let parsed = yaml::parse(&source);
    if let Some(e) = parsed.error {
        return Err(at(e.offset, format!("invalid YAML: {}", e.message)));
    }
    let empty = || Config {
        path: Some(path.to_path_buf()),
        text: Some(text.to_string()),
        ..Config::default()
    };
    let Some(doc) = parsed.documents.first() else {
        return Ok(empty());
    };
    let Some(root) = doc.root else {
        return Ok(empty());
    };
    if doc.scalar_type(root) == Some(ScalarType::Null) {
        return Ok(empty());
    }
    if !doc.is_map(root) {
        return Err(at(
            doc.node(root).start,
            "the config must be a mapping of keys".into(),
        ));
    }
    if let Some((node, message)) = unknown_key(doc, root) {
        return Err(at(doc.node(node).start, message));
    }
    let value = doc.to_json(root);
    let mut config = serde_path_to_error::deserialize::<_, Config>(value).map_err(|e| {
        let (node, message) = locate(doc, root, &e);
        at(doc.node(node).start, message)
    })?;
    for (host, r) in &config.registries {
        if let Some(CredentialSource::Helper(name)) = &r.credentials
            && !is_bare_helper_name(name)
        {
            let node = node_at(doc, root, &["registries", host, "credentials", "helper"]);
            return Err(at(
                doc.node(node).start,
                format!(
                    "`registries.{host}.credentials.helper`: `{name}` is not a bare helper name (letters, digits, `.`, `_`, `-`); imagegate runs `docker-credential-<name>` from PATH only, never a path"
                ),
            ));
        }
    }
    config.path = Some(path.to_path_buf());
    config.text = Some(text.to_string());
    Ok(config)
}

/// Docker's rule for a credential helper's name: a bare name, so that it is looked up on
/// `PATH` and can never be a path into the repository.
pub fn is_bare_helper_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The deepest node along `keys` (a key, then the value it names).
fn node_at(doc: &Document, root: NodeId, keys: &[&str]) -> NodeId {
    let mut node = root;
    for key in keys {
        let next = if doc.is_map(node) {
            doc.entries(node)
                .iter()
                .find(|(k, _)| doc.scalar(*k) == Some(*key))
                .map(|&(_, v)| v)
        } else {
            key.parse::<usize>()
                .ok()
                .and_then(|i| doc.items(node).get(i).copied())
        };
        match next {
            Some(n) => node = n,
            None => break,
        }
    }
    node
}

impl Config {
    /// The directory the file's relative paths start from (empty for no file).
    pub fn dir(&self) -> PathBuf {
        self.path
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    /// An error at the value at `keys` (or the nearest key above it), pointing into the file.
    pub fn error_at(&self, keys: &[&str], message: impl Into<String>) -> Error {
        let path = self
            .path
            .clone()
            .unwrap_or_else(|| PathBuf::from(FILE_NAME));
        let source = SourceFile::new(path, self.text.as_deref().unwrap_or_default());
        let offset = offset_of(&source, keys);
        crate::error::Located::at(&source, offset, message)
    }

    /// The byte offset of the value at `keys` in the file's text.
    pub fn offset(&self, keys: &[&str]) -> usize {
        let path = self.path.clone().unwrap_or_default();
        offset_of(
            &SourceFile::new(path, self.text.as_deref().unwrap_or_default()),
            keys,
        )
    }
}

fn offset_of(source: &SourceFile, keys: &[&str]) -> usize {
    let parsed = yaml::parse(source);
    let Some(doc) = parsed.documents.first() else {
        return 0;
    };
    let Some(root) = doc.root else { return 0 };
    doc.node(node_at(doc, root, keys)).start
}

/// The keys (dotted, two levels deep under `registries` and `policy`) whose values differ
/// between two config texts, each with its offset in `new` (0 for a key `new` removed).
/// Text that does not parse counts as an empty config.
pub fn changed_keys(old: Option<&str>, new: Option<&str>) -> Vec<(String, usize)> {
    let value = |text: Option<&str>| -> serde_json::Value {
        let Some(text) = text else {
            return serde_json::Value::Null;
        };
        let source = SourceFile::new(PathBuf::new(), text);
        let parsed = yaml::parse(&source);
        parsed
            .documents
            .first()
            .and_then(|d| d.root.map(|r| d.to_json(r)))
            .unwrap_or(serde_json::Value::Null)
    };
    let (a, b) = (value(old), value(new));
    let empty = serde_json::Map::new();
    let map = |v: &serde_json::Value| v.as_object().cloned().unwrap_or_else(|| empty.clone());
    let (a, b) = (map(&a), map(&b));
    let new_source = SourceFile::new(PathBuf::new(), new.unwrap_or_default());
    let mut out = Vec::new();
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for key in keys {
        let (x, y) = (a.get(key), b.get(key));
        if x == y {
            continue;
        }
        let nested = matches!(key.as_str(), "registries" | "policy" | "cache");
        match (x.and_then(|v| v.as_object()), y.and_then(|v| v.as_object())) {
            (xo, yo) if nested && (xo.is_some() || yo.is_some()) => {
                let (xo, yo) = (xo.unwrap_or(&empty), yo.unwrap_or(&empty));
                let inner: std::collections::BTreeSet<&String> =
                    xo.keys().chain(yo.keys()).collect();
                for k in inner {
                    if xo.get(k) != yo.get(k) {
                        let offset = offset_of(&new_source, &[key, k]);
                        out.push((format!("{key}.{k}"), offset));
                    }
                }
            }
            _ => out.push((key.clone(), offset_of(&new_source, &[key]))),
        }
    }
    out
}

/// The node a deserialisation error is about (found along its path), and the message.
fn locate(
    doc: &Document,
    root: NodeId,
    e: &serde_path_to_error::Error<serde_json::Error>,
) -> (NodeId, String) {
    use serde_path_to_error::Segment;
    let mut node = root;
    for segment in e.path().iter() {
        let next = match segment {
            Segment::Map { key } => doc
                .entries(node)
                .iter()
                .find(|(k, _)| doc.scalar(*k) == Some(key.as_str()))
                .map(|&(_, v)| v),
            Segment::Seq { index } => doc.items(node).get(*index).copied(),
            _ => None,
        };
        match next {
            Some(n) => node = n,
            None => break,
        }
    }
    // serde_json ends its messages with a position in the JSON it read, not in the file.
    let inner = e.inner().to_string();
    let message = inner.split(" at line ").next().unwrap_or(&inner);
    (node, format!("`{}`: {message}", e.path()))
}

/// The first key the published schema does not know, found by walking the YAML with the
/// schema (so a misspelt key is named at its own position, with the nearest known key).
fn unknown_key(doc: &Document, root: NodeId) -> Option<(NodeId, String)> {
    // Generated once per process: a run parses up to three config texts.
    static SCHEMA: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    let schema = SCHEMA
        .get_or_init(|| serde_json::to_value(schemars::schema_for!(Config)).unwrap_or_default());
    walk_schema(doc, root, schema, &schema["$defs"], 0)
}

fn walk_schema(
    doc: &Document,
    node: NodeId,
    schema: &serde_json::Value,
    defs: &serde_json::Value,
    depth: usize,
) -> Option<(NodeId, String)> {
    if depth > 16 {
        return None;
    }
    if let Some(name) = schema["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/$defs/"))
    {
        return walk_schema(doc, node, &defs[name], defs, depth + 1);
    }
    // An optional value: the schema of what it holds when it is not null.
    if let Some(some) = schema["anyOf"]
        .as_array()
        .and_then(|v| v.iter().find(|s| s["type"] != "null"))
    {
        return walk_schema(doc, node, some, defs, depth + 1);
    }
    if doc.is_map(node) {
        // `oneOf` objects (credentials): the variants' keys together.
        let variants: Vec<&serde_json::Value> = match schema["oneOf"].as_array() {
            Some(v) => v.iter().filter(|v| v["properties"].is_object()).collect(),
            None => vec![schema],
        };
        let known: Vec<&str> = variants
            .iter()
            .filter_map(|v| v["properties"].as_object())
            .flat_map(|p| p.keys().map(String::as_str))
            .collect();
        for &(k, v) in doc.entries(node) {
            let key = doc.scalar(k).unwrap_or_default();
            let property = variants.iter().find_map(|s| s["properties"].get(key));
            let child = match (property, &schema["additionalProperties"]) {
                (Some(p), _) => p,
                (None, extra) if extra.is_object() => extra,
                (None, _) if known.is_empty() => continue,
                (None, _) => return Some((k, unknown_message(key, &known))),
            };
            if let Some(found) = walk_schema(doc, v, child, defs, depth + 1) {
                return Some(found);
            }
        }
    }
    None
}

fn unknown_message(unknown: &str, known: &[&str]) -> String {
    let nearest = known
        .iter()
        .min_by_key(|k| strsim::levenshtein(unknown, k))
        .filter(|k| strsim::levenshtein(unknown, k) <= 3);
    match nearest {
        Some(k) => format!("unknown key `{unknown}`; did you mean `{k}`?"),
        None => format!("unknown key `{unknown}` (known keys: {})", known.join(", ")),
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
