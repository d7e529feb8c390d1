//! kustomize's images transformer, rule for rule (v5.8.1): the name is a regular expression,
//! each entry runs the legacy `containers`/`initContainers` search at any depth and then the
//! field specs, so a `tagSuffix` lands twice where both reach (kustomize #4814).

use regex::Regex;

use super::file::ImageEntry;
use super::tree::{Kind, Val};

/// A field spec from kustomize's defaults or a `configurations:` file: an optional kind
/// filter and a path whose `[]` steps walk every item of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSpec {
    pub group: Option<String>,
    pub version: Option<String>,
    pub kind: Option<String>,
    pub path: Vec<String>,
}

/// kustomize's default image field specs.
pub fn default_specs() -> Vec<FieldSpec> {
    [
        "spec/containers[]/image",
        "spec/initContainers[]/image",
        "spec/volumes[]/image/reference",
        "spec/template/spec/containers[]/image",
        "spec/template/spec/initContainers[]/image",
        "spec/template/spec/volumes[]/image/reference",
    ]
    .iter()
    .map(|p| FieldSpec {
        group: None,
        version: None,
        kind: None,
        path: p.split('/').map(str::to_string).collect(),
    })
    .collect()
}

/// A compiled entry; `None` pattern means kustomize v5.8.1 would crash on the name (it does
/// not check the regular expression), which the build reports.
pub struct Matcher {
    pattern: Regex,
}

impl Matcher {
    pub fn new(name: &str) -> Option<Matcher> {
        let pattern = Regex::new(&format!(
            "^{name}(:[a-zA-Z0-9_.{{}}-]*)?(@sha256:[a-zA-Z0-9_.{{}}-]*)?$"
        ))
        .ok()?;
        Some(Matcher { pattern })
    }

    pub fn matches(&self, image: &str) -> bool {
        self.pattern.is_match(image)
    }
}

/// kustomize's `image.Split`: the name, tag and digest (a `:` before the first `/` is a port).
pub fn split(image: &str) -> (&str, &str, &str) {
    let slash = match image.find('/') {
        Some(i) if i > 0 => i,
        _ => 0,
    };
    let search = &image[slash..];
    let at = search.find('@').map(|i| i + slash);
    let colon = search.find(':').map(|i| i + slash);
    match (colon, at) {
        (None, None) => (image, "", ""),
        (c, Some(d)) if c.is_none_or(|c| d < c) => (&image[..d], "", &image[d + 1..]),
        (Some(c), Some(d)) => (&image[..c], &image[c + 1..d], &image[d + 1..]),
        (Some(c), None) => (&image[..c], &image[c + 1..], ""),
        (None, Some(_)) => unreachable!("handled above"),
    }
}

/// What an entry makes of a matching image.
pub fn apply(entry: &ImageEntry, image: &str) -> String {
    let (name, tag, digest) = split(image);
    let mut name = entry.new_name.clone().unwrap_or_else(|| name.to_string());
    let (mut tag, mut digest) = (tag.to_string(), digest.to_string());
    match (&entry.new_tag, &entry.digest, &entry.tag_suffix) {
        (Some(t), Some(d), _) => (tag, digest) = (t.clone(), d.clone()),
        (Some(t), None, _) => (tag, digest) = (t.clone(), String::new()),
        (None, Some(d), _) => (tag, digest) = (String::new(), d.clone()),
        (None, None, Some(s)) => (tag, digest) = (tag + s, String::new()),
        (None, None, None) => {}
    }
    if !tag.is_empty() {
        name = format!("{name}:{tag}");
    }
    if !digest.is_empty() {
        name = format!("{name}@{digest}");
    }
    name
}

/// Runs one entry over one resource; returns how many fields it rewrote.
pub fn transform(
    entry: &ImageEntry,
    m: &Matcher,
    resource: &mut Val,
    specs: &[FieldSpec],
) -> usize {
    let (api_version, kind) = (
        resource.path_str(&["apiVersion"]).unwrap_or("").to_string(),
        resource.path_str(&["kind"]).unwrap_or("").to_string(),
    );
    if kind == "CustomResourceDefinition" {
        return 0;
    }
    let mut n = legacy(entry, m, resource);
    let (group, version) = match api_version.rsplit_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), api_version.clone()),
    };
    for spec in specs {
        let selected = spec.group.as_ref().is_none_or(|g| *g == group)
            && spec.version.as_ref().is_none_or(|v| *v == version)
            && spec.kind.as_ref().is_none_or(|k| *k == kind);
        if selected {
            n += along(entry, m, resource, &spec.path);
        }
    }
    n
}

fn set(entry: &ImageEntry, m: &Matcher, field: &mut Val) -> usize {
    let Kind::Scalar(value, _) = &field.kind else {
        return 0;
    };
    if !m.matches(value) {
        return 0;
    }
    *field = Val::scalar(&apply(entry, value), entry.at);
    1
}

/// The legacy filter: every `containers` or `initContainers` list at any depth.
fn legacy(entry: &ImageEntry, m: &Matcher, node: &mut Val) -> usize {
    let mut n = 0;
    match &mut node.kind {
        Kind::Map(entries) => {
            for (key, value) in entries.iter_mut() {
                n += legacy(entry, m, value);
                if (key == "containers" || key == "initContainers")
                    && let Kind::Seq(items) = &mut value.kind
                {
                    for item in items {
                        if let Some(image) = item.get_mut("image") {
                            n += set(entry, m, image);
                        }
                    }
                }
            }
        }
        Kind::Seq(items) => {
            for item in items {
                n += legacy(entry, m, item);
            }
        }
        Kind::Scalar(..) => {}
    }
    n
}

fn along(entry: &ImageEntry, m: &Matcher, node: &mut Val, path: &[String]) -> usize {
    let Some((step, rest)) = path.split_first() else {
        return set(entry, m, node);
    };
    let (key, every) = match step.strip_suffix("[]") {
        Some(k) => (k, true),
        None => (step.as_str(), false),
    };
    let Some(child) = node.get_mut(key) else {
        return 0;
    };
    if every {
        let Kind::Seq(items) = &mut child.kind else {
            return 0;
        };
        items.iter_mut().map(|i| along(entry, m, i, rest)).sum()
    } else {
        along(entry, m, child, rest)
    }
}

/// Field specs from a `configurations:` file's `images:` list.
pub fn specs_from(config: &Val) -> Vec<FieldSpec> {
    config
        .get("images")
        .map(Val::items)
        .unwrap_or_default()
        .iter()
        .filter_map(|s| {
            Some(FieldSpec {
                group: s.path_str(&["group"]).map(str::to_string),
                version: s.path_str(&["version"]).map(str::to_string),
                kind: s.path_str(&["kind"]).map(str::to_string),
                path: s
                    .path_str(&["path"])?
                    .split('/')
                    .map(str::to_string)
                    .collect(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kustomize::tree::At;

    fn entry(
        name: &str,
        new_name: Option<&str>,
        tag: Option<&str>,
        suffix: Option<&str>,
    ) -> ImageEntry {
        let at = At {
            file: 0,
            start: 0,
            end: 0,
        };
        ImageEntry {
            name: name.into(),
            new_name: new_name.map(Into::into),
            new_tag: tag.map(Into::into),
            digest: None,
            tag_suffix: suffix.map(Into::into),
            at,
            entry: at,
        }
    }

    #[test]
    fn names_are_regular_expressions_and_a_tag_in_the_name_selects_it() {
        // issue 15: `my.app` matches `my-app`; `alpine:latest` selects that tag only.
        let m = Matcher::new("my.app").unwrap();
        assert!(m.matches("my-app:1") && m.matches("my.app") && !m.matches("my-app-x:1"));
        let t = Matcher::new("alpine:latest").unwrap();
        assert!(t.matches("alpine:latest") && !t.matches("alpine:3.20"));
        assert!(
            !Matcher::new("app").unwrap().matches("app:${TAG}"),
            "a ${{VAR}} tag never matches"
        );
        assert!(Matcher::new("a(").is_none());
    }

    #[test]
    fn tag_suffix_rules() {
        let s = entry("app", None, None, Some("-dbg"));
        assert_eq!(apply(&s, "app"), "app:-dbg", "appended to an empty tag");
        assert_eq!(
            apply(&s, "app:1@sha256:x"),
            "app:1-dbg",
            "the digest is dropped"
        );
        let t = entry("app", None, Some("2"), Some("-dbg"));
        assert_eq!(apply(&t, "app:1"), "app:2", "ignored when newTag is set");
        let n = entry("app", Some("r.io/app"), None, None);
        assert_eq!(apply(&n, "app:1@sha256:x"), "r.io/app:1@sha256:x");
    }

    #[test]
    fn splitting_like_kustomize() {
        assert_eq!(
            split("r:5000/a/b:1@sha256:x"),
            ("r:5000/a/b", "1", "sha256:x")
        );
        assert_eq!(split("r:5000/a/b"), ("r:5000/a/b", "", ""));
        assert_eq!(split("nginx@sha256:x"), ("nginx", "", "sha256:x"));
        assert_eq!(split("nginx"), ("nginx", "", ""));
    }
}
