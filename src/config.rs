//! The config file (`.imagegate.yaml` at the repository root, or `--config PATH`): the
//! team's rules in one place. Read with positions, so every error points into the file, and
//! strict: an unknown key is an error that suggests the nearest valid one.
//!
//! This first version covers file selection and strictness; credentials, TLS, mirrors and
//! policies join it with their own issue.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::manifest::yaml::{self, Document, NodeId, NodeKind, ScalarType};
use crate::source::SourceFile;

/// The name looked for at the repository root.
pub const FILE_NAME: &str = ".imagegate.yaml";

/// Every key the config file knows.
pub const KEYS: [&str; 5] = [
    "include",
    "exclude",
    "helm-values",
    "strict",
    "insecure-registries",
];

/// What a config file sets. Command-line flags win over it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Config {
    pub path: Option<PathBuf>,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub helm_values: Vec<String>,
    pub strict: bool,
    pub insecure_registries: Vec<String>,
}

/// Loads `explicit`, else `.imagegate.yaml` at `root` when it exists, else nothing.
pub fn load(explicit: Option<&Path>, root: Option<&Path>) -> Result<Config, Error> {
    let path = match (explicit, root) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(r)) if r.join(FILE_NAME).is_file() => r.join(FILE_NAME),
        _ => return Ok(Config::default()),
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
        let p = source.position(offset);
        Error::Config(format!(
            "{}:{}:{}: {message}",
            path.display(),
            p.line,
            p.column
        ))
    };
    let parsed = yaml::parse(&source);
    if let Some(e) = parsed.error {
        return Err(at(e.offset, format!("invalid YAML: {}", e.message)));
    }
    let mut config = Config::default();
    let Some(doc) = parsed.documents.first() else {
        return Ok(config);
    };
    let Some(root) = doc.root else {
        return Ok(config);
    };
    if doc.scalar_type(root) == Some(ScalarType::Null) {
        return Ok(config);
    }
    if !doc.is_map(root) {
        return Err(at(
            doc.node(root).start,
            "the config must be a mapping of keys".into(),
        ));
    }
    for &(k, v) in doc.entries(root) {
        let key = doc.scalar(k).unwrap_or_default();
        let start = doc.node(k).start;
        match key {
            "include" => config.include = strings(doc, v, key, &at)?,
            "exclude" => config.exclude = strings(doc, v, key, &at)?,
            "helm-values" => config.helm_values = strings(doc, v, key, &at)?,
            "insecure-registries" => config.insecure_registries = strings(doc, v, key, &at)?,
            "strict" => {
                config.strict = match (doc.scalar_type(v), doc.scalar(v)) {
                    (Some(ScalarType::Bool), Some(b)) => b.eq_ignore_ascii_case("true"),
                    _ => {
                        return Err(at(
                            doc.node(v).start,
                            "`strict` must be true or false".into(),
                        ));
                    }
                }
            }
            unknown => {
                let nearest = KEYS
                    .iter()
                    .min_by_key(|k| strsim::levenshtein(unknown, k))
                    .filter(|k| strsim::levenshtein(unknown, k) <= 3);
                let hint = nearest.map_or_else(
                    || format!(" (known keys: {})", KEYS.join(", ")),
                    |k| format!("; did you mean `{k}`?"),
                );
                return Err(at(start, format!("unknown key `{unknown}`{hint}")));
            }
        }
    }
    Ok(config)
}

fn strings(
    doc: &Document,
    node: NodeId,
    key: &str,
    at: &dyn Fn(usize, String) -> Error,
) -> Result<Vec<String>, Error> {
    let NodeKind::Seq(items) = &doc.node(node).kind else {
        return Err(at(
            doc.node(node).start,
            format!("`{key}` must be a list of strings"),
        ));
    };
    items
        .iter()
        .map(|&i| {
            doc.str(i).map(str::to_string).ok_or_else(|| {
                at(
                    doc.node(i).start,
                    format!("`{key}` entries must be strings"),
                )
            })
        })
        .collect()
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
            "include: ['clusters/**/*.yaml']\nexclude: [vendor/**]\nstrict: true\ninsecure-registries: [registry.lan:5000]\n",
        )
        .unwrap();
        assert_eq!(c.include, ["clusters/**/*.yaml"]);
        assert_eq!(c.exclude, ["vendor/**"]);
        assert!(c.strict);
        assert_eq!(c.insecure_registries, ["registry.lan:5000"]);
        assert_eq!(parse(Path::new("c.yaml"), "").unwrap(), Config::default());
    }

    #[test]
    fn errors_point_into_the_file_and_suggest() {
        assert_eq!(
            err("include: [a]\nexlcude: [b]\n"),
            ".imagegate.yaml:2:1: unknown key `exlcude`; did you mean `exclude`?"
        );
        assert_eq!(
            err("strict: maybe\n"),
            ".imagegate.yaml:1:9: `strict` must be true or false"
        );
        assert_eq!(
            err("include: a\n"),
            ".imagegate.yaml:1:10: `include` must be a list of strings"
        );
        assert!(err("include: [\n").starts_with(".imagegate.yaml:2:1: invalid YAML"));
        assert!(err("colour: red\n").contains("known keys: include"));
    }
}
