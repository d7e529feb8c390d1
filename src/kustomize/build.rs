//! The build itself, in kustomize's order: resources (files, and directories built on their
//! own), `configurations:`, components (run on what is accumulated so far), then patches,
//! namespace, name prefix and suffix, labels, JSON 6902 patches and `images:`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::file::{self, Kustomization, Patch, PatchField, PatchText};
use super::images::{self, FieldSpec, Matcher};
use super::patch;
use super::select::{Compiled, Id};
use super::tree::{At, Kind, Val};
use crate::manifest::kustomize::{FILE_NAMES, is_remote, join};
use crate::manifest::yaml;
use crate::reader::Reader;
use crate::source::SourceFile;

/// How deep a chain of kustomizations may go.
const MAX_DEPTH: usize = 16;

/// Kinds with no namespace, which the namespace transformer leaves alone.
const CLUSTER_SCOPED: [&str; 9] = [
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// A resource in a build, with its identity as first read and the kustomizations it went
/// through (base → component → overlay).
#[derive(Debug, Clone)]
pub struct Resource {
    pub val: Val,
    pub original: Id,
    pub chain: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// `kustomize build` would fail here.
    Fails,
    /// An entry or a patch that changes nothing.
    NoEffect,
    /// Something the native model does not apply (`--render` does).
    Unmodelled,
    /// A remote resource, not fetched.
    Remote,
    /// A path that leads outside the repository, not read.
    Escapes,
}

/// What a build found wrong or could not do, at the input.
#[derive(Debug, Clone)]
pub struct Note {
    pub problem: Problem,
    pub message: String,
    pub at: Option<At>,
}

/// A finished build: its resources, the file table their positions point into, and notes.
#[derive(Debug, Default)]
pub struct Built {
    pub files: Vec<PathBuf>,
    pub resources: Vec<Resource>,
    pub notes: Vec<Note>,
    /// Files read as patches or configurations (not resources).
    pub patch_files: Vec<usize>,
    /// Whether the build failed (the resources are then what was built before the failure).
    pub failed: bool,
    /// Every resource as read from its file, before any transformer.
    pub originals: Vec<Val>,
}

struct Ctx<'a> {
    reader: &'a dyn Reader,
    built: Built,
    index: HashMap<PathBuf, usize>,
    texts: HashMap<usize, String>,
    stack: Vec<PathBuf>,
}

#[derive(Default)]
struct Acc {
    resources: Vec<Resource>,
    specs: Vec<FieldSpec>,
}

/// A build stops at the first failure, as kustomize does.
struct Stop;

/// Builds the kustomization in `dir` (a repository path).
pub fn build(dir: &Path, reader: &dyn Reader) -> Built {
    let mut ctx = Ctx {
        reader,
        built: Built::default(),
        index: HashMap::new(),
        texts: HashMap::new(),
        stack: Vec::new(),
    };
    let mut acc = Acc {
        specs: images::default_specs(),
        ..Acc::default()
    };
    let failed = target(&mut ctx, dir, &mut acc, false, None).is_err();
    ctx.built.failed = failed;
    ctx.built.resources = acc.resources;
    ctx.built
}

impl Ctx<'_> {
    fn file(&mut self, path: &Path, text: String) -> usize {
        if let Some(&i) = self.index.get(path) {
            return i;
        }
        let i = self.built.files.len();
        self.built.files.push(path.to_path_buf());
        self.index.insert(path.to_path_buf(), i);
        self.texts.insert(i, text);
        i
    }

    fn note(&mut self, problem: Problem, message: String, at: Option<At>) {
        self.built.notes.push(Note {
            problem,
            message,
            at,
        });
    }

    fn fail(&mut self, message: String, at: Option<At>) -> Stop {
        self.note(Problem::Fails, message, at);
        Stop
    }

    fn read(&self, path: &Path) -> Option<String> {
        self.reader
            .read(path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// Parses a file (or inline text) into values; a syntax error fails the build.
    fn parse(
        &mut self,
        file: usize,
        text: &str,
        map: &dyn Fn(usize) -> usize,
    ) -> Result<Vec<Val>, Stop> {
        let source = SourceFile::new(self.built.files[file].clone(), text);
        let parsed = yaml::parse(&source);
        if let Some(e) = parsed.error {
            let at = map(e.offset);
            return Err(self.fail(
                format!("invalid YAML: {}", e.message),
                Some(At {
                    file,
                    start: at,
                    end: at,
                }),
            ));
        }
        let mut out = Vec::new();
        for d in &parsed.documents {
            let Some(root) = d.root else { continue };
            match Val::from_doc(d, root, file, map) {
                Some(v) if v.is_null() => {}
                Some(v) => out.push(v),
                None => {
                    return Err(self.fail(
                        "document too large or deep to build".into(),
                        Some(at0(file)),
                    ));
                }
            }
        }
        Ok(out)
    }
}

fn at0(file: usize) -> At {
    At {
        file,
        start: 0,
        end: 0,
    }
}

fn label(dir: &Path) -> String {
    let s = dir.display().to_string();
    if s.is_empty() { ".".into() } else { s }
}

/// kustomize's `accumulateTarget` for the kustomization in `dir`.
fn target(
    ctx: &mut Ctx,
    dir: &Path,
    acc: &mut Acc,
    component: bool,
    named_at: Option<At>,
) -> Result<(), Stop> {
    let Some((kpath, text)) = FILE_NAMES.iter().find_map(|n| {
        let p = dir.join(n);
        ctx.read(&p).map(|t| (p, t))
    }) else {
        return Err(ctx.fail(format!("`{}` holds no kustomization", label(dir)), named_at));
    };
    if ctx.stack.len() > MAX_DEPTH || ctx.stack.contains(&kpath) {
        return Err(ctx.fail(
            format!("`{}` includes itself (a cycle)", kpath.display()),
            named_at,
        ));
    }
    ctx.stack.push(kpath.clone());
    let result = target_in(ctx, dir, &kpath, text, acc, component, named_at);
    ctx.stack.pop();
    result
}

fn target_in(
    ctx: &mut Ctx,
    dir: &Path,
    kpath: &Path,
    text: String,
    acc: &mut Acc,
    component: bool,
    named_at: Option<At>,
) -> Result<(), Stop> {
    let kfile = ctx.file(kpath, text.clone());
    let source = SourceFile::new(kpath.to_path_buf(), text.as_str());
    let parsed = yaml::parse(&source);
    if let Some(e) = &parsed.error {
        let at = At {
            file: kfile,
            start: e.offset,
            end: e.offset,
        };
        return Err(ctx.fail(format!("invalid YAML: {}", e.message), Some(at)));
    }
    let k = parsed
        .documents
        .first()
        .map(|d| file::read(d, &source, kfile))
        .unwrap_or_default();
    if k.is_component != component {
        let message = if component {
            format!(
                "`{}` is named as a component but is not `kind: Component`",
                label(dir)
            )
        } else {
            format!(
                "`{}` is a Component; name it under `components:`",
                label(dir)
            )
        };
        return Err(ctx.fail(message, named_at));
    }
    if let Some((why, at)) = k.invalid.first() {
        return Err(ctx.fail(format!("kustomize refuses {why}"), Some(*at)));
    }
    for (key, at) in &k.unmodelled {
        ctx.note(
            Problem::Unmodelled,
            format!("`{key}` is not applied by imagegate's kustomize model; images it changes are not checked without --render"),
            Some(*at),
        );
    }
    let here = label(dir);
    resources(ctx, dir, &k, acc, &here)?;
    for (path, at) in &k.configurations {
        let p = join(dir, path);
        let Some(text) = ctx.read(&p) else {
            return Err(ctx.fail(format!("configuration `{path}` not found"), Some(*at)));
        };
        let f = ctx.file(&p, text.clone());
        ctx.built.patch_files.push(f);
        for v in ctx.parse(f, &text, &|o| o)? {
            acc.specs.extend(images::specs_from(&v));
        }
    }
    for (path, at) in &k.components {
        if is_remote(path) {
            ctx.note(
                Problem::Remote,
                format!("remote component `{path}` is not fetched; its images are not checked"),
                Some(*at),
            );
            continue;
        }
        let before = acc.resources.len();
        target(ctx, &join(dir, path), acc, true, Some(*at))?;
        let _ = before;
        let name = label(&join(dir, path));
        for r in &mut acc.resources {
            if r.chain.last() != Some(&name) {
                r.chain.push(name.clone());
            }
        }
    }
    transform(ctx, dir, &k, acc)?;
    for r in &mut acc.resources {
        if r.chain.last() != Some(&here) {
            r.chain.push(here.clone());
        }
    }
    Ok(())
}

fn resources(
    ctx: &mut Ctx,
    dir: &Path,
    k: &Kustomization,
    acc: &mut Acc,
    here: &str,
) -> Result<(), Stop> {
    for (res, at) in &k.resources {
        if is_remote(res) {
            ctx.note(
                Problem::Remote,
                format!("remote resource `{res}` is not fetched; its images are not checked"),
                Some(*at),
            );
            continue;
        }
        let path = join(dir, res);
        let is_dir = FILE_NAMES
            .iter()
            .any(|n| ctx.reader.read(&path.join(n)).is_some());
        if !is_dir && let Some(text) = ctx.read(&path) {
            let f = ctx.file(&path, text.clone());
            for v in ctx.parse(f, &text, &|o| o)? {
                for item in flatten(v) {
                    add(ctx, acc, item, vec![here.to_string()], *at)?;
                }
            }
        } else if is_dir {
            let mut sub = Acc {
                specs: images::default_specs(),
                ..Acc::default()
            };
            target(ctx, &path, &mut sub, false, Some(*at))?;
            for r in sub.resources {
                add_resource(ctx, acc, r, *at)?;
            }
            for s in sub.specs {
                if !acc.specs.contains(&s) {
                    acc.specs.push(s);
                }
            }
        } else if ctx.reader.escapes(&path) {
            ctx.note(
                Problem::Escapes,
                format!("resource `{res}` leads outside the repository; it is not read"),
                Some(*at),
            );
            return Err(Stop);
        } else {
            return Err(ctx.fail(format!("resource `{res}` not found"), Some(*at)));
        }
    }
    Ok(())
}

/// The items of a `List`, or the object itself.
fn flatten(v: Val) -> Vec<Val> {
    let is_list = v.path_str(&["kind"]).is_some_and(|k| k.ends_with("List"))
        && matches!(v.get("items").map(|i| &i.kind), Some(Kind::Seq(_)));
    if is_list {
        return v
            .get("items")
            .map(|i| i.items().to_vec())
            .unwrap_or_default();
    }
    vec![v]
}

fn add(ctx: &mut Ctx, acc: &mut Acc, val: Val, chain: Vec<String>, at: At) -> Result<(), Stop> {
    if val.path_str(&["kind"]).is_none_or(str::is_empty) {
        return Err(ctx.fail("a resource without `kind`".into(), Some(val.at)));
    }
    let original = Id::of(&val);
    ctx.built.originals.push(val.clone());
    add_resource(
        ctx,
        acc,
        Resource {
            val,
            original,
            chain,
        },
        at,
    )
}

fn add_resource(ctx: &mut Ctx, acc: &mut Acc, r: Resource, at: At) -> Result<(), Stop> {
    let id = Id::of(&r.val);
    if acc
        .resources
        .iter()
        .any(|o| Id::of(&o.val).same_object(&id))
    {
        return Err(ctx.fail(
            format!(
                "{} is already in the build (kustomize refuses an id twice)",
                id.describe()
            ),
            Some(at),
        ));
    }
    acc.resources.push(r);
    Ok(())
}

fn transform(ctx: &mut Ctx, dir: &Path, k: &Kustomization, acc: &mut Acc) -> Result<(), Stop> {
    for field in [PatchField::StrategicMerge, PatchField::Patches] {
        for p in k.patches.iter().filter(|p| p.field == field) {
            apply_patch(ctx, dir, p, acc)?;
        }
    }
    for r in &mut acc.resources {
        let kind = r.original.kind.clone();
        let meta = metadata(&mut r.val);
        if let Some(ns) = &k.namespace
            && !CLUSTER_SCOPED.contains(&kind.as_str())
        {
            meta.set("namespace", Val::scalar(ns, meta.at));
        }
        if (k.name_prefix.is_some() || k.name_suffix.is_some())
            && kind != "Namespace"
            && kind != "CustomResourceDefinition"
        {
            let name = meta.path_str(&["name"]).unwrap_or("").to_string();
            let new = format!(
                "{}{name}{}",
                k.name_prefix.as_deref().unwrap_or(""),
                k.name_suffix.as_deref().unwrap_or("")
            );
            meta.set("name", Val::scalar(&new, meta.at));
        }
        if !k.labels.is_empty() {
            if meta.get("labels").is_none() {
                meta.set("labels", Val::map(meta.at));
            }
            let labels = meta.get_mut("labels").expect("just set");
            for (key, v) in &k.labels {
                labels.set(key, Val::scalar(v, labels.at));
            }
        }
    }
    for p in k.patches.iter().filter(|p| p.field == PatchField::Json6902) {
        apply_patch(ctx, dir, p, acc)?;
    }
    for entry in &k.images {
        let Some(m) = Matcher::new(&entry.name) else {
            return Err(ctx.fail(
                format!("images name `{}` is not a valid regular expression; kustomize v5.8.1 crashes on it", entry.name),
                Some(entry.entry),
            ));
        };
        let n: usize = acc
            .resources
            .iter_mut()
            .map(|r| images::transform(entry, &m, &mut r.val, &acc.specs))
            .sum();
        if n == 0 {
            ctx.note(
                Problem::NoEffect,
                format!(
                    "images entry `{}` matches no image in this build; it changes nothing",
                    entry.name
                ),
                Some(entry.entry),
            );
        }
    }
    Ok(())
}

fn metadata(v: &mut Val) -> &mut Val {
    if !matches!(v.get("metadata").map(|m| &m.kind), Some(Kind::Map(_))) {
        let at = v.at;
        v.set("metadata", Val::map(at));
    }
    v.get_mut("metadata").expect("just set")
}

/// Reads a patch's values: a file of the build, or text inline in the kustomization.
fn patch_values(ctx: &mut Ctx, dir: &Path, p: &Patch) -> Result<Vec<Val>, Stop> {
    match &p.text {
        PatchText::Path(rel) => {
            let path = join(dir, rel);
            let Some(text) = ctx.read(&path) else {
                if ctx.reader.escapes(&path) {
                    ctx.note(
                        Problem::Escapes,
                        format!("patch `{rel}` leads outside the repository; it is not read"),
                        Some(p.at),
                    );
                    return Err(Stop);
                }
                return Err(ctx.fail(format!("patch file `{rel}` not found"), Some(p.at)));
            };
            let f = ctx.file(&path, text.clone());
            ctx.built.patch_files.push(f);
            ctx.parse(f, &text, &|o| o)
        }
        PatchText::Inline { text, lines } => {
            let map = |o: usize| file::inline_offset(text, lines, o);
            ctx.parse(p.at.file, text, &map)
        }
    }
}

fn apply_patch(ctx: &mut Ctx, dir: &Path, p: &Patch, acc: &mut Acc) -> Result<(), Stop> {
    let values = patch_values(ctx, dir, p)?;
    let is_json = p.field == PatchField::Json6902
        || (p.field == PatchField::Patches
            && values
                .first()
                .is_some_and(|v| matches!(v.kind, Kind::Seq(_))));
    let selected = |ctx: &mut Ctx, acc: &Acc| -> Result<Option<Vec<usize>>, Stop> {
        let Some(t) = &p.target else { return Ok(None) };
        let c = Compiled::new(t).map_err(|e| ctx.fail(e, Some(p.at)))?;
        Ok(Some(
            acc.resources
                .iter()
                .enumerate()
                .filter(|(_, r)| c.matches(&r.val, &r.original))
                .map(|(i, _)| i)
                .collect(),
        ))
    };
    if is_json {
        let Some(targets) = selected(ctx, acc)? else {
            return Err(ctx.fail("a JSON 6902 patch needs a `target`".into(), Some(p.at)));
        };
        let ops = match values.first().map(patch::ops) {
            Some(Ok(ops)) => ops,
            Some(Err(e)) => return Err(ctx.fail(e, Some(p.at))),
            None => return Err(ctx.fail("empty JSON patch".into(), Some(p.at))),
        };
        if targets.is_empty() {
            no_effect(ctx, p);
        }
        for i in targets {
            if let Err(e) = patch::apply(&mut acc.resources[i].val, &ops) {
                let what = acc.resources[i].original.describe();
                return Err(ctx.fail(format!("JSON patch on {what}: {e}"), Some(p.at)));
            }
        }
        return Ok(());
    }
    if let Some(targets) = selected(ctx, acc)? {
        if values.len() > 1 {
            return Err(ctx.fail(
                "several strategic merge patches in one entry cannot share a `target`".into(),
                Some(p.at),
            ));
        }
        if targets.is_empty() {
            no_effect(ctx, p);
        }
        if let Some(pv) = values.first() {
            merge_into(acc, &targets, pv);
        }
        return Ok(());
    }
    for pv in &values {
        let id = Id::of(pv);
        let hits: Vec<usize> = acc
            .resources
            .iter()
            .enumerate()
            .filter(|(_, r)| r.original.same_object(&id) || Id::of(&r.val).same_object(&id))
            .map(|(i, _)| i)
            .collect();
        if hits.len() != 1 {
            let why = if hits.is_empty() {
                "no resource matches"
            } else {
                "several resources match"
            };
            return Err(ctx.fail(
                format!(
                    "{why} the strategic merge patch for {} (kustomize fails)",
                    id.describe()
                ),
                Some(pv.at),
            ));
        }
        merge_into(acc, &hits, pv);
    }
    Ok(())
}

fn no_effect(ctx: &mut Ctx, p: &Patch) {
    let target = p.target.as_ref().map(|t| t.describe()).unwrap_or_default();
    ctx.note(
        Problem::NoEffect,
        format!("patch target ({target}) matches no resource in this build; it changes nothing"),
        Some(p.at),
    );
}

fn merge_into(acc: &mut Acc, targets: &[usize], pv: &Val) {
    let mut deleted = Vec::new();
    for &i in targets {
        match patch::merge(&acc.resources[i].val, pv) {
            Some(v) => acc.resources[i].val = v,
            None => deleted.push(i),
        }
    }
    for i in deleted.into_iter().rev() {
        acc.resources.remove(i);
    }
}
