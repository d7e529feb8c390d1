//! The plugin fields of a kustomization (`transformers:`, `generators:`, `replacements:`),
//! judged by what they can reach: a builtin that cannot touch an image is modelled when
//! simple (labels, annotations, ConfigMap and Secret generators) or only marks the ids it
//! may change; anything else stays an `Unmodelled` note, so no image goes unmentioned. The
//! objects of ConfigMap and Secret generators (fields or builtin configs) are made here too.

use std::path::Path;

use super::resources::add;
use super::{Acc, Ctx, Gap, Problem, Stop, Target};
use crate::kustomize::file::Generated;
use crate::kustomize::select::{Gvk, Id};
use crate::kustomize::tree::{At, Kind, Val};
use crate::manifest::kustomize::{FILE_NAMES, is_remote, join};

/// Labels or annotations a builtin transformer sets at `metadata/labels` or
/// `metadata/annotations` of the resources its field spec selects.
#[derive(Debug, Clone)]
pub struct MetaSpec {
    pub field: &'static str,
    pub gvk: Gvk,
    pub create: bool,
}

/// One builtin plugin configuration, as far as images and ids go.
#[derive(Debug, Clone)]
pub enum Plugin {
    /// LabelTransformer or AnnotationsTransformer whose field specs cannot reach an image.
    Meta {
        pairs: Vec<(String, String)>,
        specs: Vec<MetaSpec>,
    },
    /// A ConfigMapGenerator or SecretGenerator configuration.
    Generated(Generated),
    /// Changes names or namespaces, never an image (namespace, prefix, suffix, hash).
    Ids(&'static str),
    /// Adds objects without images (IAMPolicyGenerator).
    Adds,
    /// Changes neither (replica counts).
    Nothing,
}

/// The builtin kinds (api/internal/plugins/builtinhelpers/builtins.go) that change names or
/// namespaces but no image when their field specs stay clear of images.
const ID_TRANSFORMERS: [&str; 5] = [
    "NamespaceTransformer",
    "PrefixSuffixTransformer",
    "PrefixTransformer",
    "SuffixTransformer",
    "HashTransformer",
];

/// Reads a `transformers:` (`generator` false) or `generators:` entry of the kustomization
/// in `dir`. `None`: not one imagegate can judge (remote, inline, a directory, a missing
/// file, a plugin that is not builtin, a builtin that can change images).
pub(super) fn read_entry(
    ctx: &mut Ctx,
    dir: &Path,
    entry: &str,
    generator: bool,
) -> Result<Option<Vec<Plugin>>, Stop> {
    if is_remote(entry) || entry.contains('\n') {
        return Ok(None);
    }
    let path = join(dir, entry);
    let is_dir = FILE_NAMES
        .iter()
        .any(|n| ctx.reader.read(&path.join(n)).is_some());
    if is_dir || ctx.outside_root(dir, &path) {
        return Ok(None);
    }
    let Some(text) = ctx.read(&path) else {
        return Ok(None);
    };
    let f = ctx.file(&path, text.clone());
    ctx.built.record.patch_files.push(f);
    let mut out = Vec::new();
    for v in ctx.parse(f, &text, &|o| o)? {
        match plugin(&v, generator) {
            Some(p) => out.push(p),
            None => return Ok(None),
        }
    }
    Ok(Some(out))
}

fn plugin(v: &Val, generator: bool) -> Option<Plugin> {
    if v.path_str(&["apiVersion"]) != Some("builtin") {
        return None;
    }
    let kind = v.path_str(&["kind"])?;
    let specs = v.get("fieldSpecs").map_or(&[][..], Val::items);
    let clear = specs.iter().all(|s| {
        s.path_str(&["path"])
            .is_some_and(crate::kustomize::effects::clear_of_images)
    });
    let text = |keys: &[&str]| v.path_str(keys).map(str::to_string);
    Some(match (kind, generator) {
        ("LabelTransformer" | "AnnotationsTransformer", false) if clear => {
            let key = if kind == "LabelTransformer" {
                "labels"
            } else {
                "annotations"
            };
            let pairs = match v.get(key).map(|m| &m.kind) {
                Some(Kind::Map(entries)) => entries
                    .iter()
                    .filter_map(|(k, val)| Some((k.clone(), val.text()?.to_string())))
                    .collect(),
                _ => Vec::new(),
            };
            let specs = specs
                .iter()
                .filter_map(|s| {
                    let field = match s.path_str(&["path"])?.trim_matches('/') {
                        "metadata/labels" => "labels",
                        "metadata/annotations" => "annotations",
                        _ => return None,
                    };
                    let f = |k: &str| {
                        s.path_str(&[k])
                            .filter(|x| !x.is_empty())
                            .map(str::to_string)
                    };
                    Some(MetaSpec {
                        field,
                        gvk: Gvk {
                            group: f("group"),
                            version: f("version"),
                            kind: f("kind"),
                        },
                        create: s.path_str(&["create"]) == Some("true"),
                    })
                })
                .collect();
            Plugin::Meta { pairs, specs }
        }
        (k, false) if clear && ID_TRANSFORMERS.contains(&k) => {
            Plugin::Ids(ID_TRANSFORMERS.iter().find(|&&x| x == k)?)
        }
        ("ReplicaCountTransformer", false) if clear => Plugin::Nothing,
        ("ConfigMapGenerator" | "SecretGenerator", true) => Plugin::Generated(Generated {
            kind: if kind == "ConfigMapGenerator" {
                "ConfigMap"
            } else {
                "Secret"
            },
            name: text(&["metadata", "name"]).unwrap_or_default(),
            namespace: text(&["metadata", "namespace"]).filter(|s| !s.is_empty()),
            behavior: text(&["behavior"]).unwrap_or_default(),
            at: v.at,
        }),
        ("IAMPolicyGenerator", true) => Plugin::Adds,
        _ => return None,
    })
}

/// Applies a LabelTransformer or AnnotationsTransformer (api/filters/labels, fsslice): its
/// pairs go into the map at each field spec whose group, version and kind select the
/// resource, created when the spec says so.
pub(super) fn apply_meta(val: &mut Val, pairs: &[(String, String)], specs: &[MetaSpec]) {
    let id = Id::of(val);
    for s in specs {
        if !s.gvk.selects(&id.group, &id.version, &id.kind) {
            continue;
        }
        let has_map = matches!(
            val.path(&["metadata", s.field]).map(|m| &m.kind),
            Some(Kind::Map(_))
        );
        if !has_map && !s.create {
            continue;
        }
        let meta = super::transform::metadata(val);
        if !has_map {
            meta.set(s.field, Val::map(meta.at));
        }
        let map = meta.get_mut(s.field).expect("just set");
        for (k, v) in pairs {
            map.set(k, Val::scalar(v, map.at));
        }
    }
}

/// The `generators:` entries of a kustomization, after its builtin generators
/// (kusttarget.go `runGenerators`).
pub(super) fn generators(ctx: &mut Ctx, t: &Target, acc: &mut Acc) -> Result<(), Stop> {
    let Target { dir, k, here } = t;
    for (entry, at) in &k.generators {
        let Some(found) = read_entry(ctx, dir, entry, true)? else {
            unmodelled(ctx, "generators", entry, *at);
            acc.gaps.push(Gap {
                problem: Problem::Unmodelled,
                why: format!(
                    "the generator `{entry}` in `{here}` is not applied by imagegate's model"
                ),
            });
            continue;
        };
        for p in found {
            match p {
                Plugin::Generated(g) => generate(ctx, acc, &g, here)?,
                _ => acc.gaps.push(Gap {
                    problem: Problem::Unmodelled,
                    why: format!("the generator `{entry}` in `{here}` adds objects imagegate's model does not build"),
                }),
            }
        }
    }
    Ok(())
}

/// The `transformers:` entries of a kustomization, after its builtin transformers
/// (kusttarget.go `runTransformers`). Returns why the ids of what it built may differ from
/// imagegate's, when a plugin that may change them is not applied.
pub(super) fn transformers(
    ctx: &mut Ctx,
    t: &Target,
    acc: &mut Acc,
) -> Result<Option<String>, Stop> {
    let Target { dir, k, here } = t;
    let mut unsure: Option<String> = k.changes_ids.first().map(|(key, _)| {
        format!("`{key}` in `{here}` may change ids, which imagegate's model does not apply")
    });
    for (entry, at) in &k.transformers {
        let Some(found) = read_entry(ctx, dir, entry, false)? else {
            unmodelled(ctx, "transformers", entry, *at);
            unsure.get_or_insert(format!(
                "the transformer `{entry}` in `{here}` is not applied by imagegate's model"
            ));
            continue;
        };
        for p in found {
            match p {
                Plugin::Meta { pairs, specs } => {
                    for r in &mut acc.resources {
                        apply_meta(&mut r.val, &pairs, &specs);
                    }
                }
                Plugin::Ids(kind) => {
                    unsure.get_or_insert(format!("the {kind} `{entry}` in `{here}` may change ids, which imagegate's model does not apply"));
                }
                _ => {}
            }
        }
    }
    Ok(unsure)
}

fn unmodelled(ctx: &mut Ctx, key: &str, entry: &str, at: At) {
    ctx.note(
        Problem::Unmodelled,
        format!("`{key}` entry `{entry}` is not applied by imagegate's kustomize model; images it changes are not checked without --render"),
        Some(at),
    );
}

/// A ConfigMap or Secret generator's object (kusttarget.go `runGenerators`, after the
/// configurations and before the components): no images, but an id that patches find and
/// that `behavior: merge` or `replace` needs (reswrangler.go `appendReplaceOrMerge`).
pub(super) fn generate(
    ctx: &mut Ctx,
    acc: &mut Acc,
    g: &Generated,
    here: &str,
) -> Result<(), Stop> {
    let mut v = Val::map(g.at);
    v.set("apiVersion", Val::scalar("v1", g.at));
    v.set("kind", Val::scalar(g.kind, g.at));
    let mut meta = Val::map(g.at);
    meta.set("name", Val::scalar(&g.name, g.at));
    if let Some(ns) = &g.namespace {
        meta.set("namespace", Val::scalar(ns, g.at));
    }
    v.set("metadata", meta);
    let id = Id::of(&v);
    let exists = acc.resources.iter().any(|r| r.has_id(&id));
    let gap = acc.undecided();
    match (g.behavior.as_str(), exists, gap) {
        ("" | "create", _, _) => add(ctx, acc, v, vec![here.to_string()], g.at),
        ("merge" | "replace", true, _) => Ok(()),
        ("merge" | "replace", false, Some(gap)) => {
            let what = format!(
                "{} is not in what imagegate built, for the generator to merge or replace",
                id.describe()
            );
            gap.note(ctx, what, Some(g.at));
            Ok(())
        }
        ("merge" | "replace", false, None) => Err(ctx.fail(
            format!(
                "{} does not exist; the generator cannot merge or replace it",
                id.describe()
            ),
            Some(g.at),
        )),
        (other, _, _) => Err(ctx.fail(format!("generator behavior `{other}`"), Some(g.at))),
    }
}
