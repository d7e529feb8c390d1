//! The `resources:` of a kustomization: files read as objects (a `List` as its items),
//! directories built on their own and added in order, remote ones noted; and adding a
//! resource to what is accumulated, where kustomize refuses an id twice.

use super::{Acc, Ctx, Gap, Problem, Resource, Stop, Target, outside, target};
use crate::kustomize::images;
use crate::kustomize::select::Id;
use crate::kustomize::tree::{At, Kind, Val};
use crate::manifest::kustomize::{FILE_NAMES, is_remote, join};

/// The `resources:` of the kustomization `t`, in order (kusttarget.go `accumulateResources`).
pub(super) fn resources(ctx: &mut Ctx, t: &Target, acc: &mut Acc) -> Result<(), Stop> {
    let dir = t.dir;
    for (res, at) in &t.k.resources {
        if is_remote(res) {
            acc.remote(ctx, "resource", res, *at);
            continue;
        }
        let path = join(dir, res);
        let is_dir = FILE_NAMES
            .iter()
            .any(|n| ctx.reader.read(&path.join(n)).is_some());
        if !is_dir && let Some(text) = ctx.read(&path) {
            if ctx.outside_root(dir, &path) {
                return Err(ctx.fail(outside(res, dir), Some(*at)));
            }
            let f = ctx.file(&path, text.clone());
            for v in ctx.parse(f, &text, &|o| o)? {
                for item in flatten(v) {
                    add(ctx, acc, item, vec![t.here.clone()], *at)?;
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
            acc.gaps.extend(sub.gaps);
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

pub(super) fn add(
    ctx: &mut Ctx,
    acc: &mut Acc,
    val: Val,
    chain: Vec<String>,
    at: At,
) -> Result<(), Stop> {
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
            previous: Vec::new(),
            chain,
            unsure: None,
        },
        at,
    )
}

fn add_resource(ctx: &mut Ctx, acc: &mut Acc, r: Resource, at: At) -> Result<(), Stop> {
    let id = Id::of(&r.val);
    if let Some(o) = acc.resources.iter().find(|o| Id::of(&o.val).equals(&id)) {
        // An unmodelled plugin may have given one of them another id.
        if let Some(why) = r.unsure.clone().or_else(|| o.unsure.clone()) {
            let gap = Gap {
                problem: Problem::Unmodelled,
                why,
            };
            let what = format!(
                "{} is twice in the build as imagegate models it",
                id.describe()
            );
            gap.note(ctx, what, Some(at));
            acc.resources.push(r);
            return Ok(());
        }
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
