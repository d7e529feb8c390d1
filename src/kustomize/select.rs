//! Which resources a patch reaches: kustomize's selector (anchored regular expressions on
//! group, version, kind, name and namespace, original or current, plus label and annotation
//! selectors) and the id match of a strategic merge patch without a target.

use regex::Regex;

use super::file::Selector;
use super::tree::Val;

/// Built-in kinds with no namespace (kyaml's `IsCertainlyClusterScoped`), which the
/// namespace transformer leaves alone and whose ids ignore a namespace.
pub const CLUSTER_SCOPED: [&str; 17] = [
    "APIService",
    "CertificateSigningRequest",
    "ClusterRole",
    "ClusterRoleBinding",
    "ComponentStatus",
    "CSIDriver",
    "CSINode",
    "CustomResourceDefinition",
    "IngressClass",
    "MutatingWebhookConfiguration",
    "Namespace",
    "Node",
    "PersistentVolume",
    "PriorityClass",
    "RuntimeClass",
    "StorageClass",
    "ValidatingWebhookConfiguration",
];

/// A group, version and kind filter of a field spec (kustomize's `resid.Gvk` as a
/// selector): a field that is not set matches any value, a set one only itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gvk {
    pub group: Option<String>,
    pub version: Option<String>,
    pub kind: Option<String>,
}

impl Gvk {
    /// kyaml/resid/gvk.go `IsSelected`.
    pub fn selects(&self, group: &str, version: &str, kind: &str) -> bool {
        let one = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        one(&self.group, group) && one(&self.version, version) && one(&self.kind, kind)
    }
}

/// A resource's identity now and as first read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Id {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
}

impl Id {
    pub fn of(v: &Val) -> Id {
        let api = v.path_str(&["apiVersion"]).unwrap_or("");
        let (group, version) = match api.rsplit_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), api.to_string()),
        };
        Id {
            group,
            version,
            kind: v.path_str(&["kind"]).unwrap_or("").to_string(),
            name: v.path_str(&["metadata", "name"]).unwrap_or("").to_string(),
            namespace: v
                .path_str(&["metadata", "namespace"])
                .unwrap_or("")
                .to_string(),
        }
    }

    /// kustomize's effective namespace: none means `default`, and a cluster-scoped kind has
    /// none at all (kyaml `resid.EffectiveNamespace`).
    pub fn effective_namespace(&self) -> &str {
        if CLUSTER_SCOPED.contains(&self.kind.as_str()) {
            "~X"
        } else if self.namespace.is_empty() {
            "default"
        } else {
            &self.namespace
        }
    }

    /// kyaml `ResId.Equals`: group, version, kind, name and effective namespace.
    pub fn equals(&self, other: &Id) -> bool {
        self.group == other.group
            && self.version == other.version
            && self.kind == other.kind
            && self.name == other.name
            && self.effective_namespace() == other.effective_namespace()
    }

    pub fn describe(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }
}

fn anchored(p: &Option<String>) -> Result<Option<Regex>, String> {
    match p.as_deref() {
        None | Some("") => Ok(None),
        Some(p) => Regex::new(&format!("^(?:{p})$"))
            .map(Some)
            .map_err(|e| format!("invalid regular expression `{p}`: {e}")),
    }
}

/// A compiled selector.
pub struct Compiled {
    group: Option<Regex>,
    version: Option<Regex>,
    kind: Option<Regex>,
    name: Option<Regex>,
    namespace: Option<Regex>,
    labels: Option<Vec<Requirement>>,
    annotations: Option<Vec<Requirement>>,
}

impl Compiled {
    pub fn new(s: &Selector) -> Result<Compiled, String> {
        Ok(Compiled {
            group: anchored(&s.group)?,
            version: anchored(&s.version)?,
            kind: anchored(&s.kind)?,
            name: anchored(&s.name)?,
            namespace: anchored(&s.namespace)?,
            labels: s.label_selector.as_deref().map(parse).transpose()?,
            annotations: s.annotation_selector.as_deref().map(parse).transpose()?,
        })
    }

    pub fn matches(&self, resource: &Val, original: &Id) -> bool {
        let cur = Id::of(resource);
        let hit = |r: &Option<Regex>, a: &str, b: &str| {
            r.as_ref().is_none_or(|r| r.is_match(a) || r.is_match(b))
        };
        hit(
            &self.namespace,
            original.effective_namespace(),
            cur.effective_namespace(),
        ) && hit(&self.name, &original.name, &cur.name)
            && hit(&self.group, &cur.group, &cur.group)
            && hit(&self.version, &cur.version, &cur.version)
            && hit(&self.kind, &cur.kind, &cur.kind)
            && self
                .labels
                .as_ref()
                .is_none_or(|r| satisfied(r, resource.path(&["metadata", "labels"])))
            && self
                .annotations
                .as_ref()
                .is_none_or(|r| satisfied(r, resource.path(&["metadata", "annotations"])))
    }
}

#[derive(Debug)]
enum Requirement {
    Exists(String, bool),
    In(String, Vec<String>, bool),
}

/// Kubernetes label selector syntax: `a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`,
/// `a notin (x)`, joined by commas.
fn parse(s: &str) -> Result<Vec<Requirement>, String> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        // A set's commas are inside parentheses; split at the first top-level comma.
        let mut depth = 0;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                c == ',' && depth == 0
            })
            .map_or(rest.len(), |(i, _)| i);
        let term = rest[..end].trim();
        rest = rest.get(end + 1..).unwrap_or("").trim();
        let bad = || format!("invalid selector `{s}`");
        let req = if let Some(k) = term.strip_prefix('!') {
            Requirement::Exists(k.trim().to_string(), false)
        } else if let Some((k, v)) = term.split_once("!=") {
            Requirement::In(k.trim().into(), vec![v.trim().into()], false)
        } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            Requirement::In(k.trim().into(), vec![v.trim().into()], true)
        } else if let Some((k, set)) = term
            .split_once(" notin ")
            .map(|(k, s)| (k, (s, false)))
            .or_else(|| term.split_once(" in ").map(|(k, s)| (k, (s, true))))
        {
            let (set, positive) = set;
            let inner = set
                .trim()
                .strip_prefix('(')
                .and_then(|x| x.strip_suffix(')'))
                .ok_or_else(bad)?;
            Requirement::In(
                k.trim().into(),
                inner.split(',').map(|v| v.trim().to_string()).collect(),
                positive,
            )
        } else if !term.is_empty() && !term.contains(' ') {
            Requirement::Exists(term.to_string(), true)
        } else {
            return Err(bad());
        };
        out.push(req);
    }
    Ok(out)
}

fn satisfied(reqs: &[Requirement], labels: Option<&Val>) -> bool {
    let value = |k: &str| labels.and_then(|l| l.get(k)).and_then(Val::text);
    reqs.iter().all(|r| match r {
        Requirement::Exists(k, want) => value(k).is_some() == *want,
        Requirement::In(k, set, true) => value(k).is_some_and(|v| set.iter().any(|s| s == v)),
        Requirement::In(k, set, false) => value(k).is_none_or(|v| !set.iter().any(|s| s == v)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_selectors() {
        let reqs = parse("app=web, tier in (a,b),!legacy,env!=prod").unwrap();
        let at = super::super::tree::At {
            file: 0,
            start: 0,
            end: 0,
        };
        let mut labels = Val::map(at);
        labels.set("app", Val::scalar("web", at));
        labels.set("tier", Val::scalar("b", at));
        assert!(satisfied(&reqs, Some(&labels)));
        labels.set("legacy", Val::scalar("x", at));
        assert!(!satisfied(&reqs, Some(&labels)));
        assert!(parse("a in b").is_err());
    }
}
