//! The transformers of one kustomization, in kustomize's order (`configureBuiltinTransformers`
//! in api/internal/target/kusttarget_configplugin.go): strategic merge patches, `patches`,
//! namespace, name prefix and suffix, labels and annotations, JSON 6902 patches, `images:`.

use std::path::Path;

use super::{Acc, Ctx, Gap, Problem, Stop, Target, is_remote_file, outside};
use crate::kustomize::file::{self, Patch, PatchField, PatchText};
use crate::kustomize::images::{self, Matcher};
use crate::kustomize::patch;
use crate::kustomize::select::{CLUSTER_SCOPED, Compiled, Id};
use crate::kustomize::tree::{Kind, Val};
use crate::manifest::kustomize::join;

pub(super) fn transform(ctx: &mut Ctx, t: &Target, acc: &mut Acc) -> Result<(), Stop> {
    let Target { dir, k, .. } = *t;
    for field in [PatchField::StrategicMerge, PatchField::Patches] {
        for p in k.patches.iter().filter(|p| p.field == field) {
            apply_patch(ctx, dir, p, acc)?;
        }
    }
    for r in &mut acc.resources {
        let kind = r.original.kind.clone();
        // kustomize's namespace, prefix and suffix transformers each store the id first.
        if let Some(ns) = &k.namespace {
            r.store_previous_id();
            if !CLUSTER_SCOPED.contains(&kind.as_str()) {
                let meta = metadata(&mut r.val);
                meta.set("namespace", Val::scalar(ns, meta.at));
            }
            // api/filters/namespace/namespace.go with the default field specs
            // (builtinpluginconsts/namespace.go `metadata/name` of kind Namespace): a v1
            // Namespace object is renamed to the namespace.
            let current = Id::of(&r.val);
            if current.kind == "Namespace" && current.group.is_empty() && current.version == "v1" {
                let meta = metadata(&mut r.val);
                meta.set("name", Val::scalar(ns, meta.at));
            }
        }
        let renamed = kind != "Namespace" && kind != "CustomResourceDefinition";
        for (affix, prefix) in [(&k.name_prefix, true), (&k.name_suffix, false)] {
            let Some(affix) = affix.as_deref().filter(|_| renamed) else {
                continue;
            };
            r.store_previous_id();
            let meta = metadata(&mut r.val);
            let name = meta.path_str(&["name"]).unwrap_or("");
            let new = if prefix {
                format!("{affix}{name}")
            } else {
                format!("{name}{affix}")
            };
            meta.set("name", Val::scalar(&new, meta.at));
        }
        for (field, pairs) in [("labels", &k.labels), ("annotations", &k.annotations)] {
            if pairs.is_empty() {
                continue;
            }
            let meta = metadata(&mut r.val);
            if meta.get(field).is_none() {
                meta.set(field, Val::map(meta.at));
            }
            let map = meta.get_mut(field).expect("just set");
            for (key, v) in pairs {
                map.set(key, Val::scalar(v, map.at));
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
        let mut n = 0;
        for r in &mut acc.resources {
            match images::transform(entry, &m, &mut r.val, &acc.specs) {
                Ok(k) => n += k,
                Err((why, at)) => {
                    let message = format!(
                        "images entry `{}` meets {why} in {}; kustomize fails",
                        entry.name,
                        r.original.describe()
                    );
                    return Err(ctx.fail(message, Some(at)));
                }
            }
        }
        if n == 0
            && let Some(gap) = acc.undecided()
        {
            let what = format!(
                "images entry `{}` matches no image imagegate built",
                entry.name
            );
            gap.note(ctx, what, Some(entry.entry));
        } else if n == 0 {
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

pub(super) fn metadata(v: &mut Val) -> &mut Val {
    if !matches!(v.get("metadata").map(|m| &m.kind), Some(Kind::Map(_))) {
        let at = v.at;
        v.set("metadata", Val::map(at));
    }
    v.get_mut("metadata").expect("just set")
}

/// Reads a patch's values: a file of the build, or text inline in the kustomization;
/// `None` for a URL, which is not fetched.
fn patch_values(ctx: &mut Ctx, dir: &Path, p: &Patch) -> Result<Option<Vec<Val>>, Stop> {
    match &p.text {
        PatchText::Path(rel) if is_remote_file(rel) => {
            // fileloader.go `Load` fetches an http(s) path (`httpClientGetContent`).
            ctx.note(
                Problem::Remote,
                format!("remote patch `{rel}` is not fetched; what it changes is not checked"),
                Some(p.at),
            );
            Ok(None)
        }
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
            if ctx.outside_root(dir, &path) {
                return Err(ctx.fail(outside(rel, dir), Some(p.at)));
            }
            let f = ctx.file(&path, text.clone());
            ctx.built.record.patch_files.push(f);
            ctx.parse(f, &text, &|o| o).map(Some)
        }
        PatchText::Inline { text, lines } => {
            let map = |o: usize| file::inline_offset(text, lines, o);
            ctx.parse(p.at.file, text, &map).map(Some)
        }
    }
}

fn apply_patch(ctx: &mut Ctx, dir: &Path, p: &Patch, acc: &mut Acc) -> Result<(), Stop> {
    let Some(values) = patch_values(ctx, dir, p)? else {
        return Ok(());
    };
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
            no_effect(ctx, acc, p);
        }
        for i in targets {
            // kustomize stores the id before every JSON patch.
            acc.resources[i].store_previous_id();
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
            no_effect(ctx, acc, p);
        }
        if let Some(pv) = values.first() {
            merge_into(acc, &targets, pv, p);
        }
        return Ok(());
    }
    for pv in &values {
        let id = Id::of(pv);
        let hits: Vec<usize> = acc
            .resources
            .iter()
            .enumerate()
            .filter(|(_, r)| r.has_id(&id))
            .map(|(i, _)| i)
            .collect();
        if hits.len() != 1 {
            // What is not built may hold the one it patches (a remote base, a generator),
            // or an unmodelled plugin may have changed the ids it would find.
            let unsure = hits.iter().find_map(|&i| acc.resources[i].unsure.clone());
            let gap = match (hits.is_empty(), unsure) {
                (true, _) => acc.undecided(),
                (false, Some(why)) => Some(Gap {
                    problem: Problem::Unmodelled,
                    why,
                }),
                (false, None) => None,
            };
            let why = if hits.is_empty() {
                "no resource matches"
            } else {
                "several resources match"
            };
            if let Some(gap) = gap {
                let what = format!(
                    "{why} the strategic merge patch for {} in what imagegate built",
                    id.describe()
                );
                gap.note(ctx, what, Some(pv.at));
                continue;
            }
            return Err(ctx.fail(
                format!(
                    "{why} the strategic merge patch for {} (kustomize fails)",
                    id.describe()
                ),
                Some(pv.at),
            ));
        }
        merge_into(acc, &hits, pv, p);
    }
    Ok(())
}

fn no_effect(ctx: &mut Ctx, acc: &Acc, p: &Patch) {
    let target = p.target.as_ref().map(|t| t.describe()).unwrap_or_default();
    if let Some(gap) = acc.undecided() {
        let what = format!("patch target ({target}) matches no resource imagegate built");
        gap.note(ctx, what, Some(p.at));
        return;
    }
    ctx.note(
        Problem::NoEffect,
        format!("patch target ({target}) matches no resource in this build; it changes nothing"),
        Some(p.at),
    );
}

/// kustomize's `Resource.ApplySmPatch`: the merge keeps the resource's kind, name and
/// namespace (unless the entry's `options` allow a kind or name change, which stores the
/// previous id first), so later patches still find it by its own name.
fn merge_into(acc: &mut Acc, targets: &[usize], pv: &Val, p: &Patch) {
    let mut deleted = Vec::new();
    for &i in targets {
        let r = &mut acc.resources[i];
        if p.allow_name_change || p.allow_kind_change {
            r.store_previous_id();
        }
        let before = Id::of(&r.val);
        match patch::merge(&r.val, pv) {
            Some(mut v) => {
                if !p.allow_kind_change {
                    v.set("kind", Val::scalar(&before.kind, v.at));
                }
                let meta = metadata(&mut v);
                if !p.allow_name_change {
                    meta.set("name", Val::scalar(&before.name, meta.at));
                }
                if before.namespace.is_empty() {
                    meta.remove("namespace");
                } else {
                    meta.set("namespace", Val::scalar(&before.namespace, meta.at));
                }
                r.val = v;
            }
            None => deleted.push(i),
        }
    }
    for i in deleted.into_iter().rev() {
        acc.resources.remove(i);
    }
}
