//! Applies patches the way kustomize does: strategic merge (lists of built-in pod-spec kinds
//! merge by their Kubernetes merge key, other lists are replaced, `null` deletes, `$patch`
//! directives) and RFC 6902 JSON patches. Patched values keep the patch's own position.

use super::tree::{Kind, Val};

/// Built-in kinds whose schema kustomize knows, so their lists merge by key.
const BUILT_IN: [&str; 10] = [
    "Pod",
    "PodTemplate",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "Service",
];

/// The merge key of a list field in the Kubernetes schema (for built-in kinds).
fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets" => "name",
        "ports" => "containerPort",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "hostAliases" => "ip",
        _ => return None,
    })
}

pub fn is_built_in(resource: &Val) -> bool {
    let kind = resource.path_str(&["kind"]).unwrap_or("");
    let api = resource.path_str(&["apiVersion"]).unwrap_or("");
    let group = api.rsplit_once('/').map_or("", |(g, _)| g);
    BUILT_IN.contains(&kind) && !group.contains('.')
}

/// Strategic merge of `patch` into `target` (both whole resources). `None`: the patch
/// deletes the resource.
pub fn merge(target: &Val, patch: &Val) -> Option<Val> {
    let known = is_built_in(target);
    if directive(patch) == Some("delete") {
        return None;
    }
    merge_value(target, patch, known, "")
}

fn directive(v: &Val) -> Option<&str> {
    v.get("$patch").and_then(Val::text)
}

/// A patch value with its directives removed, for places where nothing is merged.
fn clean(v: &Val) -> Val {
    match &v.kind {
        Kind::Map(entries) => Val {
            kind: Kind::Map(
                entries
                    .iter()
                    .filter(|(k, val)| !k.starts_with('$') && !val.is_null())
                    .map(|(k, val)| (k.clone(), clean(val)))
                    .collect(),
            ),
            at: v.at,
        },
        Kind::Seq(items) => Val {
            kind: Kind::Seq(
                items
                    .iter()
                    .filter(|i| directive(i) != Some("delete"))
                    .map(clean)
                    .collect(),
            ),
            at: v.at,
        },
        Kind::Scalar(..) => v.clone(),
    }
}

/// `None`: the patch clears the field (a `$patch: delete` on a list).
fn merge_value(target: &Val, patch: &Val, known: bool, field: &str) -> Option<Val> {
    Some(match (&target.kind, &patch.kind) {
        (Kind::Map(_), Kind::Map(pentries)) => {
            if directive(patch) == Some("replace") {
                return Some(clean(patch));
            }
            let mut out = target.clone();
            for (k, pv) in pentries {
                if k.starts_with('$') {
                    continue;
                }
                if pv.is_null() {
                    out.remove(k);
                    continue;
                }
                let merged = match target.get(k) {
                    Some(tv) => merge_value(tv, pv, known, k),
                    None => Some(clean(pv)),
                };
                match merged {
                    Some(v) => out.set(k, v),
                    None => {
                        out.remove(k);
                    }
                }
            }
            out
        }
        (Kind::Seq(titems), Kind::Seq(pitems)) => match merge_key(field).filter(|_| known) {
            Some(key) => {
                let (directive, pitems) = sequence_directive(pitems);
                match directive {
                    Some("delete") => return None,
                    Some("replace") => Val {
                        kind: Kind::Seq(pitems.iter().map(clean).collect()),
                        at: patch.at,
                    },
                    _ => merge_list(titems, &pitems, key, known, patch),
                }
            }
            None => clean(patch),
        },
        _ => clean(patch),
    })
}

/// kyaml's `determineSequenceNodePatchStrategy`: the first item with a `$patch` key is a
/// directive for the whole list when it has no other key; the directive item is dropped.
fn sequence_directive(items: &[Val]) -> (Option<&str>, Vec<Val>) {
    let Some(i) = items.iter().position(|v| v.get("$patch").is_some()) else {
        return (None, items.to_vec());
    };
    let alone = matches!(&items[i].kind, Kind::Map(entries) if entries.len() == 1);
    match directive(&items[i]).filter(|_| alone) {
        Some(d @ ("delete" | "replace" | "merge")) => {
            let mut rest = items.to_vec();
            rest.remove(i);
            (Some(d), rest)
        }
        _ => (None, items.to_vec()),
    }
}

/// kyaml's associative list merge with kustomize's prepend direction
/// (kyaml/yaml/walk/associative_sequence.go `setAssociativeSequenceElements`, then
/// `appendListNode`), step for step, duplicates and items without the key included:
/// - the key values, the patch's first and then the target's, each once (`elementValues`);
/// - each value merges the first target item with it and the first patch item with it; the
///   merge writes into that target item in place (an item's `$patch: replace` does not, so
///   it is undone below); a deleted or empty result removes every target item with it;
/// - the value of an item without the key, "", matches nothing and so removes every target
///   item that has the key at all;
/// - the merged items, in that order, then take each remaining target item in turn: it
///   replaces the items with its key, or is appended when none has it; a target item
///   without the key replaces the whole list.
///
/// So an item a patch touches moves to the front, and of target items sharing a key the
/// last one is what remains, as it was before the patch.
fn merge_list(titems: &[Val], pitems: &[Val], key: &str, known: bool, patch: &Val) -> Val {
    // `ElementValuesList`: the key's scalar value, or "" (absent, null, empty, not a scalar).
    let id = |v: &Val| -> String {
        v.get(key)
            .filter(|k| !k.is_null())
            .and_then(Val::text)
            .unwrap_or("")
            .to_string()
    };
    let mut values: Vec<String> = Vec::new();
    for v in pitems.iter().chain(titems) {
        let k = id(v);
        if !values.contains(&k) {
            values.push(k);
        }
    }
    let mut dest: Vec<Val> = titems.to_vec();
    let mut added: Vec<(String, Val)> = Vec::new();
    for k in &values {
        if k.is_empty() {
            dest.retain(|v| v.get(key).is_none());
            continue;
        }
        let t = dest.iter().position(|v| id(v) == *k);
        let p = pitems.iter().find(|v| id(v) == *k);
        let merged = match (t, p) {
            (_, Some(p)) if directive(p) == Some("delete") => None,
            (Some(t), Some(p)) => {
                let m = merge_value(&dest[t], p, known, "");
                if directive(p) != Some("replace")
                    && let Some(m) = &m
                {
                    dest[t] = m.clone();
                }
                m
            }
            (None, Some(p)) => Some(clean(p)),
            (Some(t), None) => Some(dest[t].clone()),
            (None, None) => None,
        };
        match merged.filter(|v| !matches!(&v.kind, Kind::Map(e) if e.is_empty())) {
            Some(v) => added.push((k.clone(), v)),
            None => dest.retain(|v| id(v) != *k),
        }
    }
    for d in dest {
        let k = id(&d);
        if k.is_empty() {
            added.retain(|(_, v)| !matches!(v.kind, Kind::Map(_)));
            added.push((k, d));
        } else if added.iter().any(|(a, _)| *a == k) {
            for (a, v) in &mut added {
                if *a == k {
                    *v = d.clone();
                }
            }
        } else {
            added.push((k, d));
        }
    }
    Val {
        kind: Kind::Seq(added.into_iter().map(|(_, v)| v).collect()),
        at: patch.at,
    }
}

/// One RFC 6902 operation.
#[derive(Debug, Clone)]
pub struct Op {
    pub op: String,
    pub path: String,
    pub from: Option<String>,
    pub value: Option<Val>,
}

/// Reads the operations of a JSON patch (a YAML or JSON list).
pub fn ops(list: &Val) -> Result<Vec<Op>, String> {
    let Kind::Seq(items) = &list.kind else {
        return Err("a JSON patch is a list of operations".into());
    };
    items
        .iter()
        .map(|i| {
            let op = i
                .path_str(&["op"])
                .ok_or("an operation without `op`")?
                .to_string();
            let path = i
                .path_str(&["path"])
                .ok_or_else(|| format!("`{op}` without `path`"))?
                .to_string();
            Ok(Op {
                from: i.path_str(&["from"]).map(str::to_string),
                value: i.get("value").cloned(),
                op,
                path,
            })
        })
        .collect()
}

fn tokens(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(format!("path `{pointer}` does not start with /"));
    };
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn index(items: &[Val], t: &str, allow_end: bool) -> Option<usize> {
    if allow_end && t == "-" {
        return Some(items.len());
    }
    let i: usize = t.parse().ok()?;
    (i < items.len() + usize::from(allow_end)).then_some(i)
}

fn parent<'a>(doc: &'a mut Val, toks: &[String]) -> Option<&'a mut Val> {
    let Some((first, rest)) = toks.split_first() else {
        return Some(doc);
    };
    let child = match &mut doc.kind {
        Kind::Map(entries) => entries
            .iter_mut()
            .find(|(k, _)| k == first)
            .map(|(_, v)| v)?,
        Kind::Seq(items) => {
            let i = index(items, first, false)?;
            &mut items[i]
        }
        Kind::Scalar(..) => return None,
    };
    parent(child, rest)
}

fn get(doc: &Val, pointer: &str) -> Result<Val, String> {
    let toks = tokens(pointer)?;
    let mut node = doc;
    for t in &toks {
        node = match &node.kind {
            Kind::Map(_) => node.get(t),
            Kind::Seq(items) => index(items, t, false).map(|i| &items[i]),
            Kind::Scalar(..) => None,
        }
        .ok_or_else(|| format!("path `{pointer}` does not exist"))?;
    }
    Ok(node.clone())
}

fn add(doc: &mut Val, pointer: &str, value: Val) -> Result<(), String> {
    let toks = tokens(pointer)?;
    let Some((last, init)) = toks.split_last() else {
        *doc = value;
        return Ok(());
    };
    let missing = || format!("add: the parent of `{pointer}` does not exist");
    let p = parent(doc, init).ok_or_else(missing)?;
    match &mut p.kind {
        Kind::Map(_) => p.set(last, value),
        Kind::Seq(items) => {
            let i = index(items, last, true).ok_or_else(missing)?;
            items.insert(i, value);
        }
        Kind::Scalar(..) => return Err(missing()),
    }
    Ok(())
}

fn remove(doc: &mut Val, pointer: &str) -> Result<Val, String> {
    let toks = tokens(pointer)?;
    let missing = || format!("`{pointer}` does not exist");
    let (last, init) = toks.split_last().ok_or_else(missing)?;
    let p = parent(doc, init).ok_or_else(missing)?;
    match &mut p.kind {
        Kind::Map(_) => p.remove(last).ok_or_else(missing),
        Kind::Seq(items) => {
            let i = index(items, last, false).ok_or_else(missing)?;
            Ok(items.remove(i))
        }
        Kind::Scalar(..) => Err(missing()),
    }
}

/// Applies operations in order; an operation that does not apply is kustomize's error.
pub fn apply(doc: &mut Val, ops: &[Op]) -> Result<(), String> {
    for o in ops {
        let value = || {
            o.value
                .clone()
                .ok_or_else(|| format!("`{}` of `{}` without `value`", o.op, o.path))
        };
        match o.op.as_str() {
            "add" => add(doc, &o.path, value()?)?,
            "remove" => {
                remove(doc, &o.path)?;
            }
            "replace" => {
                remove(doc, &o.path).map_err(|e| format!("replace: {e}"))?;
                add(doc, &o.path, value()?)?;
            }
            "move" | "copy" => {
                let from = o.from.as_deref().ok_or("`move`/`copy` without `from`")?;
                let v = if o.op == "move" {
                    remove(doc, from)?
                } else {
                    get(doc, from)?
                };
                add(doc, &o.path, v)?;
            }
            "test" => {
                let found = get(doc, &o.path)?;
                if !same(&found, &value()?) {
                    return Err(format!("test of `{}` failed", o.path));
                }
            }
            other => return Err(format!("unknown operation `{other}`")),
        }
    }
    Ok(())
}

fn same(a: &Val, b: &Val) -> bool {
    match (&a.kind, &b.kind) {
        (Kind::Scalar(x, _), Kind::Scalar(y, _)) => x == y,
        (Kind::Seq(x), Kind::Seq(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Kind::Map(x), Kind::Map(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| b.get(k).is_some_and(|w| same(v, w)))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kustomize::tree::val;

    fn images(v: &Val, list: &str) -> Option<Vec<String>> {
        let items = v.path(&["spec", "template", "spec", list])?.items();
        Some(
            items
                .iter()
                .map(|c| c.path_str(&["image"]).unwrap_or("-").to_string())
                .collect(),
        )
    }

    #[test]
    fn a_list_directive_alone_in_a_list_replaces_or_clears_it() {
        // issue 15: kyaml/yaml/merge2/smpdirective.go: the first item with `$patch` is the
        // list's directive when it has no other key; it is dropped from the result.
        let target = val(
            "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers: [{name: a, image: 'a:1'}, {name: b, image: 'b:1'}]\n      initContainers: [{name: i, image: 'i:1'}]\n",
        );
        let replace = val(
            "spec:\n  template:\n    spec:\n      containers: [{$patch: replace}, {name: c, image: 'c:1'}]\n      initContainers: [{$patch: delete}]\n",
        );
        let merged = merge(&target, &replace).unwrap();
        assert_eq!(images(&merged, "containers"), Some(vec!["c:1".to_string()]));
        assert_eq!(images(&merged, "initContainers"), None, "cleared");
        let item = val(
            "spec:\n  template:\n    spec:\n      containers: [{name: b, $patch: delete}, {name: n, image: 'n:1'}]\n",
        );
        let merged = merge(&target, &item).unwrap();
        assert_eq!(
            images(&merged, "containers"),
            Some(vec!["n:1".to_string(), "a:1".to_string()]),
            "an item's own directive deletes that item only; additions are prepended"
        );
        // issue 15: an item the patch merges into moves to the front, in the patch's order.
        let touch = val(
            "spec:\n  template:\n    spec:\n      containers: [{name: b, image: 'b:2'}, {name: z, image: 'z:1'}]\n",
        );
        let merged = merge(&target, &touch).unwrap();
        assert_eq!(
            images(&merged, "containers"),
            Some(vec![
                "b:2".to_string(),
                "z:1".to_string(),
                "a:1".to_string()
            ])
        );
    }
}
