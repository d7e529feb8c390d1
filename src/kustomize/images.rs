//! kustomize's images transformer, rule for rule (v5.8.1): the name is a regular expression,
//! each entry runs the legacy `containers`/`initContainers` search at any depth and then the
//! field specs, so a `tagSuffix` lands twice where both reach (kustomize #4814).

use regex::Regex;

use super::file::ImageEntry;
use super::select::Gvk;
use super::tree::{At, Kind, Val};

/// A field spec from kustomize's defaults or a `configurations:` file: an optional kind
/// filter and a path whose `[]` steps walk every item of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSpec {
    pub gvk: Gvk,
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
        gvk: Gvk::default(),
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

/// Where and why kustomize's images transformer stops the build: a field of the wrong shape.
pub type Refused = (String, At);

/// Runs one entry over one resource; returns how many fields it rewrote, or the field that
/// makes kustomize fail (api/filters/imagetag: the image is not a scalar, a container is not
/// a mapping, or a field spec path meets a scalar).
pub fn transform(
    entry: &ImageEntry,
    m: &Matcher,
    resource: &mut Val,
    specs: &[FieldSpec],
) -> Result<usize, Refused> {
    let (api_version, kind) = (
        resource.path_str(&["apiVersion"]).unwrap_or("").to_string(),
        resource.path_str(&["kind"]).unwrap_or("").to_string(),
    );
    if kind == "CustomResourceDefinition" {
        return Ok(0);
    }
    let mut n = legacy(entry, m, resource)?;
    let (group, version) = match api_version.rsplit_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), api_version.clone()),
    };
    for spec in specs {
        if spec.gvk.selects(&group, &version, &kind) {
            n += along(entry, m, resource, &spec.path)?;
        }
    }
    Ok(n)
}

fn set(entry: &ImageEntry, m: &Matcher, field: &mut Val) -> Result<usize, Refused> {
    let Kind::Scalar(value, _) = &field.kind else {
        return Err(("an image field that is not a string".into(), field.at));
    };
    if !m.matches(value) {
        return Ok(0);
    }
    *field = Val::scalar(&apply(entry, value), entry.at);
    Ok(1)
}

/// The legacy filter: every `containers` or `initContainers` list at any depth; each item
/// must be a mapping (or null).
fn legacy(entry: &ImageEntry, m: &Matcher, node: &mut Val) -> Result<usize, Refused> {
    let mut n = 0;
    match &mut node.kind {
        Kind::Map(entries) => {
            for (key, value) in entries.iter_mut() {
                n += legacy(entry, m, value)?;
                if (key == "containers" || key == "initContainers")
                    && let Kind::Seq(items) = &mut value.kind
                {
                    for item in items {
                        if item.is_null() {
                            continue;
                        }
                        if !matches!(item.kind, Kind::Map(_)) {
                            let why = format!("a `{key}` item that is not a mapping");
                            return Err((why, item.at));
                        }
                        if let Some(image) = item.get_mut("image") {
                            n += set(entry, m, image)?;
                        }
                    }
                }
            }
        }
        Kind::Seq(items) => {
            for item in items {
                n += legacy(entry, m, item)?;
            }
        }
        Kind::Scalar(..) => {}
    }
    Ok(n)
}

/// kustomize's fieldspec filter: a list met on the way is walked item by item whether or not
/// the step says `[]`; a mapping is descended; null ends the path; a scalar fails.
fn along(
    entry: &ImageEntry,
    m: &Matcher,
    node: &mut Val,
    path: &[String],
) -> Result<usize, Refused> {
    let Some((step, rest)) = path.split_first() else {
        return set(entry, m, node);
    };
    if node.is_null() {
        return Ok(0);
    }
    let at = node.at;
    match &mut node.kind {
        Kind::Seq(items) => {
            let mut n = 0;
            for i in items {
                n += along(entry, m, i, path)?;
            }
            Ok(n)
        }
        Kind::Map(_) => {
            let key = step.strip_suffix("[]").unwrap_or(step);
            match node.get_mut(key) {
                Some(child) => along(entry, m, child, rest),
                None => Ok(0),
            }
        }
        Kind::Scalar(..) => Err((
            format!(
                "the image field path meets a scalar before `{}`",
                path.join("/")
            ),
            at,
        )),
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
            let text = |key: &str| s.path_str(&[key]).map(str::to_string);
            Some(FieldSpec {
                gvk: Gvk {
                    group: text("group"),
                    version: text("version"),
                    kind: text("kind"),
                },
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
    use crate::kustomize::tree::val;

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

    #[test]
    fn fields_of_the_wrong_shape_fail_the_build() {
        // issue 15: api/filters/imagetag (updater.go `ErrorIfInvalid(rn, ScalarNode)`, the
        // legacy filter's `Get("image")` on each item) and api/filters/fieldspec (a scalar
        // met on the path is "expected sequence or mapping node").
        let e = entry("nginx", None, Some("2"), None);
        let m = Matcher::new("nginx").unwrap();
        let specs = default_specs();
        for bad in [
            "kind: App\nspec: {w: {containers: [{name: a, image: {repository: nginx}}]}}\n",
            "kind: App\nspec: {containers: [web, side]}\n",
            "kind: App\nspec: {template: weekly}\n",
        ] {
            assert!(transform(&e, &m, &mut val(bad), &specs).is_err(), "{bad}");
        }
        let fine =
            "kind: App\nspec: {template: ~, a: {containers: [~, {name: x, image: 'nginx:1'}]}}\n";
        assert_eq!(transform(&e, &m, &mut val(fine), &specs), Ok(1));
    }

    #[test]
    fn a_field_spec_walks_a_list_without_brackets() {
        // issue 15: api/filters/fieldspec walks every item of a list it meets; `[]` only says
        // what to create.
        let e = entry("data", None, Some("2"), None);
        let m = Matcher::new("data").unwrap();
        let spec = FieldSpec {
            gvk: Gvk::default(),
            path: vec![
                "spec".into(),
                "volumes".into(),
                "image".into(),
                "reference".into(),
            ],
        };
        let mut v =
            val("kind: R\nspec: {volumes: [{image: {reference: 'data:1'}}, {emptyDir: {}}]}\n");
        assert_eq!(transform(&e, &m, &mut v, &[spec]), Ok(1));
    }
}
