//! A kustomization file read into the fields a build uses, each with where it is written, and
//! the fields the native model does not apply, so a build can say so instead of passing.

use super::tree::At;
use crate::manifest::yaml::{Document, NodeId, NodeKind, ScalarType, Style};
use crate::source::SourceFile;

/// One `images:` (or legacy `imageTags:`) entry.
#[derive(Debug, Clone)]
pub struct ImageEntry {
    pub name: String,
    pub new_name: Option<String>,
    pub new_tag: Option<String>,
    pub digest: Option<String>,
    pub tag_suffix: Option<String>,
    /// The line that decides what it writes: its newTag, digest, tagSuffix, newName or name.
    pub at: At,
    /// The whole entry.
    pub entry: At,
}

/// A patch target (`target:`): each field a regular expression, as kustomize's selector.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    pub group: Option<String>,
    pub version: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub label_selector: Option<String>,
    pub annotation_selector: Option<String>,
}

/// Where a patch's text is.
#[derive(Debug, Clone)]
pub enum PatchText {
    /// A file, relative to the kustomization's directory.
    Path(String),
    /// Written inline: the text, and the offset in the kustomization file of each line of it
    /// (the text's line `i` starts at `lines[i]`, for reporting positions in the file).
    Inline { text: String, lines: Vec<usize> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchField {
    Patches,
    StrategicMerge,
    Json6902,
}

#[derive(Debug, Clone)]
pub struct Patch {
    pub text: PatchText,
    pub target: Option<Selector>,
    pub field: PatchField,
    /// `options.allowNameChange` / `options.allowKindChange` of a `patches` entry.
    pub allow_name_change: bool,
    pub allow_kind_change: bool,
    /// The entry in the kustomization.
    pub at: At,
}

/// A `configMapGenerator` or `secretGenerator` entry: the object it adds.
#[derive(Debug, Clone)]
pub struct Generated {
    pub kind: &'static str,
    pub name: String,
    pub namespace: Option<String>,
    /// `create` (or empty), `merge` or `replace`.
    pub behavior: String,
    pub at: At,
}

#[derive(Debug, Default)]
pub struct Kustomization {
    pub is_component: bool,
    pub resources: Vec<(String, At)>,
    pub components: Vec<(String, At)>,
    pub patches: Vec<Patch>,
    pub images: Vec<ImageEntry>,
    pub configurations: Vec<(String, At)>,
    pub generated: Vec<Generated>,
    pub namespace: Option<String>,
    pub name_prefix: Option<String>,
    pub name_suffix: Option<String>,
    /// `commonLabels` and `labels[].pairs`: labels every resource gets.
    pub labels: Vec<(String, String)>,
    /// `commonAnnotations`: annotations every resource gets.
    pub annotations: Vec<(String, String)>,
    /// Fields the native model does not apply (generators' options aside), with where.
    pub unmodelled: Vec<(&'static str, At)>,
    /// `transformers:` and `generators:` entries, judged by the build (`build/plugins.rs`).
    pub transformers: Vec<(String, At)>,
    pub generators: Vec<(String, At)>,
    /// Unmodelled fields that add objects (Helm charts), and fields that may change ids
    /// (`replacements` writing names): a lookup that finds nothing is then not decided.
    pub adds: Vec<(&'static str, At)>,
    pub changes_ids: Vec<(&'static str, At)>,
    /// A field whose shape kustomize would refuse.
    pub invalid: Vec<(String, At)>,
}

/// Fields that can change images but that the native model does not apply
/// (`helmChartInflationGenerator` is the deprecated spelling of `helmCharts`, which
/// kustomization.go `FixKustomization` converts). `replacements`, `transformers` and
/// `generators` are judged entry by entry (`build/plugins.rs`).
const UNMODELLED: [&str; 4] = [
    "helmCharts",
    "helmChartInflationGenerator",
    "vars",
    "openapi",
];

/// The fields of kustomize's `Kustomization` type (api/types/kustomization.go). Its JSON
/// decoder refuses any other field and matches these without regard to ASCII case.
const FIELDS: [&str; 34] = [
    "apiVersion",
    "kind",
    "metadata",
    "openapi",
    "namePrefix",
    "nameSuffix",
    "namespace",
    "commonLabels",
    "labels",
    "commonAnnotations",
    "patchesStrategicMerge",
    "patchesJson6902",
    "patches",
    "images",
    "imageTags",
    "replacements",
    "replicas",
    "vars",
    "sortOptions",
    "resources",
    "components",
    "crds",
    "bases",
    "configMapGenerator",
    "secretGenerator",
    "helmGlobals",
    "helmCharts",
    "helmChartInflationGenerator",
    "generatorOptions",
    "configurations",
    "generators",
    "transformers",
    "validators",
    "buildMetadata",
];

/// The fields of an `images:` entry (api/types/image.go).
const IMAGE_FIELDS: [&str; 5] = ["name", "newName", "newTag", "digest", "tagSuffix"];

/// A field as Go's JSON decoder finds it: the last key equal to `key` ignoring ASCII case.
fn get(doc: &Document, map: NodeId, key: &str) -> Option<NodeId> {
    doc.entries(map)
        .iter()
        .rev()
        .find(|&&(k, _)| doc.scalar(k).is_some_and(|k| k.eq_ignore_ascii_case(key)))
        .map(|&(_, v)| v)
        .or_else(|| doc.get(map, key))
}

/// Keys of `map` that are none of `fields`: kustomize refuses them.
fn unknown(doc: &Document, map: NodeId, fields: &[&str]) -> Vec<(String, NodeId)> {
    doc.entries(map)
        .iter()
        .filter_map(|&(k, _)| {
            let name = doc.scalar(k)?;
            let known = name == "<<" || fields.iter().any(|f| f.eq_ignore_ascii_case(name));
            (!known).then(|| (name.to_string(), k))
        })
        .collect()
}

/// kustomize's checks when it loads a kustomization (api/types/kustomization.go `Unmarshal`,
/// `CheckEmpty`, `EnforceFields`): no unknown field, not empty, a known kind and version.
fn check(doc: &Document, root: NodeId, k: &mut Kustomization, at: &dyn Fn(NodeId) -> At) {
    for (name, n) in unknown(doc, root, &FIELDS) {
        k.invalid
            .push((format!("the unknown field `{name}`"), at(n)));
    }
    let filled = doc.entries(root).iter().any(|&(key, v)| {
        let name = doc.scalar(key).unwrap_or("");
        let typed = ["apiVersion", "kind"]
            .iter()
            .any(|f| f.eq_ignore_ascii_case(name));
        let empty = match &doc.node(v).kind {
            NodeKind::Scalar { .. } => {
                doc.scalar_type(v) == Some(ScalarType::Null) || doc.scalar(v) == Some("")
            }
            _ => false,
        };
        !typed && !empty
    });
    if !filled {
        k.invalid.push(("an empty kustomization".into(), at(root)));
    }
    let text = |key: &str| get(doc, root, key).and_then(|n| doc.scalar(n));
    let kind = text("kind").unwrap_or("");
    if !["", "Kustomization", "Component"].contains(&kind) {
        let n = get(doc, root, "kind").unwrap_or(root);
        k.invalid
            .push((format!("kind `{kind}` (Kustomization or Component)"), at(n)));
    }
    let wanted = if kind == "Component" {
        "kustomize.config.k8s.io/v1alpha1"
    } else {
        "kustomize.config.k8s.io/v1beta1"
    };
    if let Some(v) = text("apiVersion").filter(|v| !v.is_empty() && *v != wanted) {
        let n = get(doc, root, "apiVersion").unwrap_or(root);
        k.invalid.push((
            format!(
                "apiVersion `{v}` (a {} wants {wanted})",
                if kind.is_empty() {
                    "Kustomization"
                } else {
                    kind
                }
            ),
            at(n),
        ));
    }
}

/// Reads a parsed kustomization file (`file` is its index in the build's file table).
pub fn read(doc: &Document, source: &SourceFile, file: usize) -> Kustomization {
    let mut k = Kustomization::default();
    let Some(root) = doc.root else {
        // api/types/kustomization.go `CheckEmpty`: "kustomization.yaml is empty".
        k.invalid.push((
            "an empty kustomization".into(),
            At {
                file,
                start: 0,
                end: 0,
            },
        ));
        return k;
    };
    let at = |n: NodeId| {
        let node = doc.node(n);
        At {
            file,
            start: node.start,
            end: node.end,
        }
    };
    let text = |n: NodeId| doc.scalar(n).map(str::to_string);
    let field = |n: NodeId, key: &str| get(doc, n, key).and_then(text);
    k.is_component = field(root, "kind").as_deref() == Some("Component");
    check(doc, root, &mut k, &at);
    // The strings of the list at `key`, each at its node; any other entry is invalid
    // ("`key` entries `refused`").
    let strings = |k: &mut Kustomization, key: &str, refused: &str| {
        let mut out = Vec::new();
        for &n in get(doc, root, key).map_or(&[][..], |seq| doc.items(seq)) {
            match text(n) {
                Some(s) => out.push((s, at(n))),
                None => k
                    .invalid
                    .push((format!("`{key}` entries {refused}"), at(n))),
            }
        }
        out
    };
    k.resources = strings(&mut k, "resources", "are paths");
    // kustomize appends the legacy `bases` to `resources`.
    let bases = strings(&mut k, "bases", "are paths");
    k.resources.extend(bases);
    k.components = strings(&mut k, "components", "are paths");
    k.configurations = strings(&mut k, "configurations", "are paths");
    for key in ["images", "imageTags"] {
        let Some(seq) = get(doc, root, key) else {
            continue;
        };
        for &e in doc.items(seq) {
            if let Some((name, n)) = unknown(doc, e, &IMAGE_FIELDS).into_iter().next() {
                k.invalid
                    .push((format!("the unknown field `{name}` in `{key}`"), at(n)));
            }
            let Some(name) = field(e, "name") else {
                k.invalid
                    .push((format!("an `{key}` entry without a name"), at(e)));
                continue;
            };
            let decided = ["newTag", "digest", "tagSuffix", "newName", "name"]
                .iter()
                .find_map(|f| get(doc, e, f))
                .unwrap_or(e);
            let nonempty = |f: &str| field(e, f).filter(|s| !s.is_empty());
            k.images.push(ImageEntry {
                name,
                new_name: nonempty("newName"),
                new_tag: nonempty("newTag"),
                digest: nonempty("digest"),
                tag_suffix: nonempty("tagSuffix"),
                at: at(decided),
                entry: at(e),
            });
        }
    }
    for (key, kind) in [
        ("patchesStrategicMerge", PatchField::StrategicMerge),
        ("patches", PatchField::Patches),
        ("patchesJson6902", PatchField::Json6902),
    ] {
        let Some(seq) = get(doc, root, key) else {
            continue;
        };
        for &p in doc.items(seq) {
            // api/types/kustomization.go: `patches` and `patchesJson6902` entries are
            // `types.Patch` objects; Go's decoder refuses a string ("cannot unmarshal string
            // into Go struct field Kustomization.patches of type types.Patch").
            if kind != PatchField::StrategicMerge && doc.scalar(p).is_some() {
                k.invalid.push((
                    format!("a `{key}` entry that is a string; it must be a mapping with `path` or `patch` (kustomize cannot read a string as a patch)"),
                    at(p),
                ));
                continue;
            }
            match patch(doc, source, p, kind, at(p)) {
                Some(patch) => k.patches.push(patch),
                None => k
                    .invalid
                    .push((format!("a `{key}` entry needs `path` or `patch`"), at(p))),
            }
        }
    }
    for (key, kind) in [
        ("configMapGenerator", "ConfigMap"),
        ("secretGenerator", "Secret"),
    ] {
        let Some(seq) = get(doc, root, key) else {
            continue;
        };
        for &g in doc.items(seq) {
            k.generated.push(Generated {
                kind,
                name: field(g, "name").unwrap_or_default(),
                namespace: field(g, "namespace").filter(|s| !s.is_empty()),
                behavior: field(g, "behavior").unwrap_or_default(),
                at: at(g),
            });
        }
    }
    k.namespace = field(root, "namespace").filter(|s| !s.is_empty());
    k.name_prefix = field(root, "namePrefix").filter(|s| !s.is_empty());
    k.name_suffix = field(root, "nameSuffix").filter(|s| !s.is_empty());
    if let Some(m) = get(doc, root, "commonLabels") {
        k.labels.extend(pairs(doc, m));
    }
    if let Some(m) = get(doc, root, "commonAnnotations") {
        k.annotations.extend(pairs(doc, m));
    }
    if let Some(seq) = get(doc, root, "labels") {
        for &l in doc.items(seq) {
            if let Some(m) = get(doc, l, "pairs") {
                k.labels.extend(pairs(doc, m));
            }
        }
    }
    let present = |key: &str| {
        get(doc, root, key).filter(|&n| match &doc.node(n).kind {
            NodeKind::Seq(items) => !items.is_empty(),
            NodeKind::Map(entries) => !entries.is_empty(),
            NodeKind::Scalar { .. } => doc.scalar(n).is_some_and(|s| !s.is_empty()),
        })
    };
    for key in UNMODELLED {
        if let Some(n) = present(key) {
            k.unmodelled.push((key, at(n)));
            if key.starts_with("helm") {
                k.adds.push((key, at(n)));
            }
        }
    }
    if let Some(n) = present("replacements") {
        let effect = super::effects::replacements(doc, n);
        if effect.images {
            k.unmodelled.push(("replacements", at(n)));
        }
        if effect.ids {
            k.changes_ids.push(("replacements", at(n)));
        }
    }
    k.transformers = strings(&mut k, "transformers", "that are not strings");
    k.generators = strings(&mut k, "generators", "that are not strings");
    k
}

fn pairs(doc: &Document, m: NodeId) -> Vec<(String, String)> {
    doc.entries(m)
        .iter()
        .filter_map(|&(k, v)| Some((doc.scalar(k)?.to_string(), doc.scalar(v)?.to_string())))
        .collect()
}

/// A `patches:` (or legacy) entry read from its node; `None` without `path` or `patch`.
pub fn patch(
    doc: &Document,
    source: &SourceFile,
    p: NodeId,
    field: PatchField,
    at: At,
) -> Option<Patch> {
    // `patchesStrategicMerge` entries are a path or an inline patch in one string.
    let (text_node, path) = if let Some(s) = doc.scalar(p) {
        let inline = s.contains('\n') || s.trim_start().starts_with('{');
        if field == PatchField::StrategicMerge && !inline {
            (None, Some(s.to_string()))
        } else {
            (Some(p), None)
        }
    } else {
        (
            get(doc, p, "patch"),
            get(doc, p, "path")
                .and_then(|n| doc.scalar(n))
                .map(str::to_string),
        )
    };
    let text = match (path, text_node) {
        (Some(path), _) => PatchText::Path(path),
        (None, Some(n)) => inline(doc, source, n)?,
        (None, None) => return None,
    };
    let target = get(doc, p, "target").map(|t| {
        let f = |k: &str| {
            get(doc, t, k)
                .and_then(|n| doc.scalar(n))
                .map(str::to_string)
        };
        Selector {
            group: f("group"),
            version: f("version"),
            kind: f("kind"),
            name: f("name"),
            namespace: f("namespace"),
            label_selector: f("labelSelector"),
            annotation_selector: f("annotationSelector"),
        }
    });
    let option = |key: &str| {
        doc.get_path(p, &["options", key])
            .and_then(|n| doc.scalar(n))
            .is_some_and(|v| v == "true")
    };
    Some(Patch {
        text,
        target,
        field,
        allow_name_change: field == PatchField::Patches && option("allowNameChange"),
        allow_kind_change: field == PatchField::Patches && option("allowKindChange"),
        at,
    })
}

/// An inline patch and where each of its lines is in the file: exact for a literal block
/// (`|`), the scalar's first line for any other style.
fn inline(doc: &Document, source: &SourceFile, n: NodeId) -> Option<PatchText> {
    let node = doc.node(n);
    let NodeKind::Scalar { value, style } = &node.kind else {
        return None;
    };
    let text = value.clone();
    let count = text.lines().count().max(1);
    let file = &source.text;
    let first = literal_content(file, node.start).filter(|_| *style == Style::Block);
    let lines = if let Some(first) = first {
        // Line by line from the content's first line; its indentation is that of the first
        // non-empty line.
        let mut starts = Vec::new();
        let mut pos = Some(first);
        let mut indent = None;
        while let Some(p) = pos {
            if starts.len() == count || p >= file.len() {
                break;
            }
            let line = &file[p..file[p..].find('\n').map_or(file.len(), |i| p + i)];
            let width = line.len() - line.trim_start_matches(' ').len();
            if indent.is_none() && !line.trim().is_empty() {
                indent = Some(width);
            }
            starts.push(p + indent.unwrap_or(width).min(line.len()));
            pos = file[p..].find('\n').map(|i| p + i + 1);
        }
        // Blank lines before the first content line took the indentation they had.
        starts
    } else {
        vec![node.start; count]
    };
    Some(PatchText::Inline { text, lines })
}

/// Where a literal block scalar's content starts (the line after its `|` indicator), given
/// the node's start, which the parser puts at the indicator or at the content; `None` for a
/// folded block (`>`), whose lines do not map one to one.
fn literal_content(file: &str, start: usize) -> Option<usize> {
    let after_indicator = |at: usize| file[at..].find('\n').map(|i| at + i + 1);
    if file[start..].starts_with('|') {
        return after_indicator(start);
    }
    if file[start..].starts_with('>') {
        return None;
    }
    // At the content: the indicator ends the line before.
    let line_start = file[..start].rfind('\n').map_or(0, |i| i + 1);
    let previous = file[..line_start.saturating_sub(1)]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let header = file[previous..line_start].trim_end();
    let indicator = header.rsplit([' ', '\t']).next().unwrap_or_default();
    indicator.starts_with('|').then_some(line_start)
}

/// Turns an offset in an inline patch's text into an offset in the kustomization file.
pub fn inline_offset(text: &str, lines: &[usize], offset: usize) -> usize {
    let line = text[..offset.min(text.len())].matches('\n').count();
    let line_start = text[..offset.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    match lines.get(line).or(lines.last()) {
        Some(&start) => start + (offset - line_start),
        None => 0,
    }
}

impl Selector {
    /// The selector's own fields, for messages.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = [
            ("group", &self.group),
            ("version", &self.version),
            ("kind", &self.kind),
            ("name", &self.name),
            ("namespace", &self.namespace),
            ("labelSelector", &self.label_selector),
            ("annotationSelector", &self.annotation_selector),
        ]
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
        .collect();
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::yaml;

    /// The file offset of `needle` inside the first inline patch, mapped back to the file.
    fn mapped(kustomization: &str, needle: &str) -> (usize, usize) {
        let source = SourceFile::new("kustomization.yaml".into(), kustomization);
        let parsed = yaml::parse(&source);
        let k = read(&parsed.documents[0], &source, 0);
        let PatchText::Inline { text, lines } = &k.patches[0].text else {
            panic!("an inline patch");
        };
        let p = source.position(inline_offset(text, lines, text.find(needle).unwrap()));
        (p.line, p.column)
    }

    #[test]
    fn inline_patch_lines_map_to_the_kustomization_file() {
        // issue 15: the patch line that decides an image is where it is reported.
        let literal = "patches:\n  - target: {kind: Deployment}\n    patch: |-\n      - op: replace\n        path: /spec/template/spec/containers/0/image\n        value: web:2\n";
        assert_eq!(mapped(literal, "web:2"), (6, 16));
        let kept = "patches:\n  - target: {kind: Deployment}\n    patch: |\n      - op: add\n        value: web:3\n";
        assert_eq!(mapped(kept, "web:3"), (5, 16));
        let flow = "patches:\n  - target: {kind: Deployment}\n    patch: |-\n      [{\"op\": \"replace\", \"path\": \"/x\",\n        \"value\": \"web:4\"}]\n";
        assert_eq!(mapped(flow, "web:4"), (5, 19));
    }
}
