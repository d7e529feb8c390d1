//! The config file (`.imagegate.yaml` at the repository root, or `--config PATH`): the
//! team's rules in one place. The types here are the schema: serde reads them (unknown keys
//! are errors) and schemars publishes them as JSON Schema. The YAML is parsed with positions
//! first, so every error points at the line and column it is about.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Deserialize;

use crate::error::Error;
use crate::manifest::yaml::{self, Document, NodeId, NodeKind, ScalarType};
use crate::source::SourceFile;

/// The name looked for at the repository root.
pub const FILE_NAME: &str = ".imagegate.yaml";

/// imagegate's configuration. Command-line flags win over it; lists that only add (excludes,
/// skips, hosts) are joined with the flags'.
#[derive(Debug, Default, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(title = "imagegate configuration (.imagegate.yaml)")]
pub struct Config {
    /// Where the file was read from (not a key).
    #[serde(skip)]
    #[schemars(skip)]
    pub path: Option<PathBuf>,
    /// Path globs of the files to read. Default: `*.yaml`, `*.yml` and `Kustomization`.
    #[serde(default)]
    pub include: Vec<String>,
    /// Path globs of files never to read.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Image globs never to check, such as `registry.internal/**`. They are matched against
    /// the normalised reference (`docker.io/library/nginx:1.27`), and against the name as
    /// written.
    #[serde(default)]
    pub skip: Vec<String>,
    /// Path globs of files read as Helm values besides those next to a `Chart.yaml`.
    #[serde(default)]
    pub helm_values: Vec<String>,
    /// Files of Flux variables, relative to this file: ConfigMaps (`data`), Secrets
    /// (`stringData`, `data`) or plain mappings of names to values, as
    /// `postBuild.substituteFrom` brings them from the cluster. They resolve a `${VAR}`
    /// that no Flux Kustomization's `postBuild.substitute` defines; the first file that
    /// defines a name wins.
    #[serde(default)]
    pub variables: Vec<String>,
    /// Treat an unresolved `${VAR}` as an error instead of a warning.
    #[serde(default)]
    pub strict: bool,
    /// Registries (`host` or `host:port`) reached over plain HTTP or unverified TLS.
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    /// Rules every reference must follow. All are off by default.
    #[serde(default)]
    pub policy: Policy,
    /// Settings for one registry, keyed by `host` or `host:port` (`docker.io` for Docker
    /// Hub).
    #[serde(default)]
    pub registries: BTreeMap<String, RegistrySettings>,
    /// The local result cache.
    #[serde(default)]
    pub cache: CacheSettings,
    /// References that could not be decided: `error` fails (exit 3), `warn` passes with
    /// warnings (exit 0). `--undecided` and `IMAGEGATE_UNDECIDED` win over it.
    #[serde(default)]
    pub undecided: Option<crate::undecided::Undecided>,
}

/// Policy rules. Each one that is broken is an error finding.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Policy {
    /// Refuse `:latest` and untagged references (a digest-pinned one passes).
    #[serde(default)]
    pub deny_latest: bool,
    /// Require every reference to carry a digest (`@sha256:...`).
    #[serde(default)]
    pub require_digest: bool,
    /// Registry or repository globs that references may come from, such as `ghcr.io/acme/**`
    /// or `*.dkr.ecr.*.amazonaws.com/**`. Empty means any.
    #[serde(default)]
    pub allowed_registries: Vec<String>,
    /// Platforms every image must provide, such as `linux/amd64` and `linux/arm64`. The
    /// image's index is fetched (a GET) for references that exist.
    #[serde(default)]
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
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RegistrySettings {
    /// Requests in flight to this registry at once.
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// Requests per second at most.
    #[serde(default)]
    pub requests_per_second: Option<f64>,
    /// Seconds one request may take.
    #[serde(default)]
    pub timeout: Option<u64>,
    /// PEM file of CA certificates to trust for this registry, besides the system roots.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// PEM client certificate for mutual TLS (with `client-key`).
    #[serde(default)]
    pub client_cert: Option<String>,
    /// PEM private key of `client-cert`.
    #[serde(default)]
    pub client_key: Option<String>,
    /// `true`: HTTPS without verification, then plain HTTP (always warned about).
    /// `false`: verified HTTPS, even on loopback, where plain HTTP is the default.
    #[serde(default)]
    pub insecure: Option<bool>,
    /// Mirrors (`host[/prefix]`) tried in order before this registry; one that cannot
    /// answer passes to the next.
    #[serde(default)]
    pub mirrors: Vec<String>,
    /// Replace this registry with another `host[/prefix]`, with no fallback (pull-through
    /// caches such as ECR, Harbor proxy projects, GitLab's dependency proxy).
    #[serde(default)]
    pub rewrite: Option<String>,
    /// Where this registry's credentials come from instead of the usual search.
    #[serde(default)]
    pub credentials: Option<CredentialSource>,
}

/// Where a registry's credentials come from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub enum CredentialSource {
    /// Never send credentials.
    Anonymous,
    /// Run `docker-credential-<name> get`.
    Helper(String),
    /// Read `user:password` (or a bare token) from this environment variable.
    Env(String),
}

/// The local result cache (`$XDG_CACHE_HOME/imagegate`).
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CacheSettings {
    /// Use the cache. Default: on outside CI, off in CI.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Seconds a tag's result is trusted. Digests never expire. Default: 600.
    #[serde(default)]
    pub tag_ttl: Option<u64>,
}

/// The JSON Schema of the config file, pretty-printed.
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(Config);
    serde_json::to_string_pretty(&schema).expect("a schema serialises") + "\n"
}

/// Loads `explicit`, else the nearest `.imagegate.yaml` from `dir` up to the repository
/// root (`dir` alone outside a repository), else nothing.
pub fn load(explicit: Option<&Path>, dir: &Path) -> Result<Config, Error> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => {
            let mut found = None;
            for d in dir.ancestors() {
                if d.join(FILE_NAME).is_file() {
                    found = Some(d.join(FILE_NAME));
                    break;
                }
                if d.join(".git").exists() {
                    break;
                }
            }
            match found {
                Some(p) => p,
                None => return Ok(Config::default()),
            }
        }
    };
    let text = std::fs::read_to_string(&path).map_err(|e| Error::Path {
        path: path.clone(),
        source: e,
    })?;
    let mut config = parse(&path, &text)?;
    config.path = Some(path);
    Ok(config)
}

/// Parses a config file's text.
pub fn parse(path: &Path, text: &str) -> Result<Config, Error> {
    let source = SourceFile::new(path.to_path_buf(), text);
    let at = |offset: usize, message: String| {
        Error::Config(format!("{}: {message}", source.place(offset)))
    };
    let parsed = yaml::parse(&source);
    if let Some(e) = parsed.error {
        return Err(at(e.offset, format!("invalid YAML: {}", e.message)));
    }
    let Some(doc) = parsed.documents.first() else {
        return Ok(Config::default());
    };
    let Some(root) = doc.root else {
        return Ok(Config::default());
    };
    if doc.scalar_type(root) == Some(ScalarType::Null) {
        return Ok(Config::default());
    }
    if !doc.is_map(root) {
        return Err(at(
            doc.node(root).start,
            "the config must be a mapping of keys".into(),
        ));
    }
    let value = to_json(doc, root, 0);
    serde_path_to_error::deserialize::<_, Config>(value).map_err(|e| {
        let (node, message) = locate(doc, root, &e);
        at(doc.node(node).start, message)
    })
}

/// A YAML node as JSON, with plain scalars typed by the core schema.
fn to_json(doc: &Document, id: NodeId, depth: usize) -> serde_json::Value {
    use serde_json::Value;
    if depth > 64 {
        return Value::Null;
    }
    match &doc.node(id).kind {
        NodeKind::Scalar { value, .. } => match doc.scalar_type(id) {
            Some(ScalarType::Null) => Value::Null,
            Some(ScalarType::Bool) => Value::Bool(value.eq_ignore_ascii_case("true")),
            Some(ScalarType::Int) => value
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::String(value.clone())),
            Some(ScalarType::Float) => value
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or_else(|| Value::String(value.clone()), Value::Number),
            _ => Value::String(value.clone()),
        },
        NodeKind::Seq(items) => items.iter().map(|&i| to_json(doc, i, depth + 1)).collect(),
        NodeKind::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|&(k, v)| {
                    (
                        doc.scalar(k).unwrap_or_default().to_string(),
                        to_json(doc, v, depth + 1),
                    )
                })
                .collect(),
        ),
    }
}

/// The node a deserialisation error is about, and the message to give there.
fn locate(
    doc: &Document,
    root: NodeId,
    e: &serde_path_to_error::Error<serde_json::Error>,
) -> (NodeId, String) {
    use serde_path_to_error::Segment;
    let mut node = root;
    let mut parent = root;
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
            Some(n) => {
                parent = node;
                node = n;
            }
            None => break,
        }
    }
    let inner = e.inner().to_string();
    let message = inner
        .split(" at line ")
        .next()
        .unwrap_or(&inner)
        .to_string();
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let unknown = rest.split('`').next().unwrap_or_default();
        let expected: Vec<&str> = rest.split('`').skip(2).step_by(2).collect();
        // The path stops at the map that holds the unknown key, or at the key itself.
        let holder = if doc.is_map(node) { node } else { parent };
        let at = doc
            .entries(holder)
            .iter()
            .find(|(k, _)| doc.scalar(*k) == Some(unknown))
            .map_or(holder, |&(k, _)| k);
        let nearest = expected
            .iter()
            .min_by_key(|k| strsim::levenshtein(unknown, k))
            .filter(|k| strsim::levenshtein(unknown, k) <= 3);
        let hint = nearest.map_or_else(
            || format!(" (known keys: {})", expected.join(", ")),
            |k| format!("; did you mean `{k}`?"),
        );
        return (at, format!("unknown key `{unknown}`{hint}"));
    }
    let name = e.path().to_string();
    (node, format!("`{name}`: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(Path::new(".imagegate.yaml"), text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn keys_are_read() {
        let c = parse(
            Path::new("c.yaml"),
            "include: ['clusters/**/*.yaml']\nexclude: [vendor/**]\nstrict: true\ninsecure-registries: [registry.lan:5000]\n\
             skip: ['registry.internal/**']\npolicy:\n  deny-latest: true\n  platforms: [linux/amd64]\n\
             registries:\n  docker.io:\n    mirrors: [mirror.lan/hub]\n    concurrency: 4\n    requests-per-second: 2.5\n    credentials:\n      env: HUB_AUTH\n\
             cache:\n  tag-ttl: 60\n",
        )
        .unwrap();
        assert_eq!(c.include, ["clusters/**/*.yaml"]);
        assert_eq!(c.exclude, ["vendor/**"]);
        assert!(c.strict);
        assert_eq!(c.insecure_registries, ["registry.lan:5000"]);
        assert_eq!(c.skip, ["registry.internal/**"]);
        assert!(c.policy.deny_latest && !c.policy.require_digest);
        assert_eq!(c.policy.platforms, ["linux/amd64"]);
        let hub = &c.registries["docker.io"];
        assert_eq!(hub.mirrors, ["mirror.lan/hub"]);
        assert_eq!(hub.concurrency, Some(4));
        assert_eq!(hub.requests_per_second, Some(2.5));
        assert_eq!(
            hub.credentials,
            Some(CredentialSource::Env("HUB_AUTH".into()))
        );
        assert_eq!(c.cache.tag_ttl, Some(60));
        assert_eq!(parse(Path::new("c.yaml"), "").unwrap(), Config::default());
    }

    #[test]
    fn errors_point_into_the_file_and_suggest() {
        assert_eq!(
            err("include: [a]\nexlcude: [b]\n"),
            ".imagegate.yaml:2:1: unknown key `exlcude`; did you mean `exclude`?"
        );
        assert_eq!(
            err("policy:\n  deny-latest: true\n  require-digets: true\n"),
            ".imagegate.yaml:3:3: unknown key `require-digets`; did you mean `require-digest`?"
        );
        assert_eq!(
            err("registries:\n  ghcr.io:\n    concurrency: many\n"),
            ".imagegate.yaml:3:18: `registries.ghcr.io.concurrency`: invalid type: string \"many\", expected usize"
        );
        assert_eq!(
            err("strict: maybe\n"),
            ".imagegate.yaml:1:9: `strict`: invalid type: string \"maybe\", expected a boolean"
        );
        assert_eq!(
            err("include: a\n"),
            ".imagegate.yaml:1:10: `include`: invalid type: string \"a\", expected a sequence"
        );
        assert_eq!(
            err("exclude: [a, 3]\n"),
            ".imagegate.yaml:1:14: `exclude[1]`: invalid type: integer `3`, expected a string"
        );
        assert!(err("include: [\n").starts_with(".imagegate.yaml:2:1: invalid YAML"));
        assert!(err("colour: red\n").contains("known keys: include"));
        assert!(err("- a\n").contains("must be a mapping"));
    }

    #[test]
    fn the_published_schema_is_current() {
        let published = include_str!("../imagegate.schema.json");
        assert_eq!(
            published,
            schema_json(),
            "imagegate.schema.json is stale: run `imagegate config-schema > imagegate.schema.json`"
        );
    }
}
