//! What a kustomization's `replacements:` can change (images, resource ids), judged from
//! its text alone, so the file reader can mark it before any build runs.

use crate::manifest::yaml::{Document, NodeId, NodeKind};

/// What a plugin field can change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Effect {
    pub images: bool,
    pub ids: bool,
}

const ALL: Effect = Effect {
    images: true,
    ids: true,
};

/// A field path (a `fieldSpecs` path split at `/`, a replacement's at `.`) that names
/// nothing about images: no `image` or `container` in it, no wildcard.
pub(super) fn clear_of_images(path: &str) -> bool {
    let p = path.to_ascii_lowercase();
    !p.contains("image") && !p.contains("container") && !p.contains('*')
}

/// A replacement field path split at dots outside `[...]` (kyaml `SmarterPathSplitter`),
/// without the empty segment of a leading dot.
fn segments(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0usize;
    for c in path.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            '.' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out.retain(|s| !s.is_empty());
    out
}

/// What `replacements:` can change. Kept exact and conservative: a replacement read from a
/// file (`path:`), a source that may be a whole subtree (a field path outside `metadata`),
/// or a target field path that may hold an image or contain one (`image`, `containers`, a
/// wildcard, or ending at `spec`, `template` or `jobTemplate`) can change images. Targets
/// without field paths write `metadata.name` (api/types/replacement.go).
pub fn replacements(doc: &Document, seq: NodeId) -> Effect {
    let mut effect = Effect::default();
    for &r in doc.items(seq) {
        if !matches!(doc.node(r).kind, NodeKind::Map(_)) || doc.get(r, "path").is_some() {
            return ALL;
        }
        let source_is_scalar = doc.get(r, "sourceValue").is_some()
            || match doc.get_path(r, &["source", "fieldPath"]) {
                None => true,
                Some(n) => doc.scalar(n).is_some_and(|p| {
                    clear_of_images(p) && segments(p).first().is_some_and(|s| s == "metadata")
                }),
            };
        if !source_is_scalar {
            return ALL;
        }
        let targets = doc.get(r, "targets").map_or(&[][..], |t| doc.items(t));
        for &t in targets {
            let paths = doc.get(t, "fieldPaths").map_or(&[][..], |p| doc.items(p));
            if paths.is_empty() {
                effect.ids = true;
            }
            for &p in paths {
                let Some(p) = doc.scalar(p) else {
                    return ALL;
                };
                let segs = segments(p);
                let last = segs.last().map(String::as_str);
                if !clear_of_images(p)
                    || matches!(last, None | Some("spec" | "template" | "jobTemplate"))
                {
                    return ALL;
                }
                let first = segs[0].as_str();
                let id = match first {
                    "metadata" => segs.get(1).is_none_or(|s| s == "name" || s == "namespace"),
                    "kind" | "apiVersion" => true,
                    _ => false,
                };
                effect.ids |= id;
            }
        }
    }
    effect
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::yaml;
    use crate::source::SourceFile;

    fn effect(text: &str) -> Effect {
        let source = SourceFile::new("k.yaml".into(), text);
        let parsed = yaml::parse(&source);
        let d = &parsed.documents[0];
        let seq = d.get(d.root.unwrap(), "replacements").unwrap();
        replacements(d, seq)
    }

    #[test]
    fn replacements_that_cannot_reach_an_image() {
        // issue 15: kubebuilder's config/default replacements write a Service name into a
        // Certificate's dnsNames and a CA annotation: no image, no id.
        let dns = "replacements:\n- source: {kind: Service, name: webhook-service, fieldPath: .metadata.name}\n  targets:\n  - select: {kind: Certificate}\n    fieldPaths: [.spec.dnsNames.0, '.metadata.annotations.[cert-manager.io/inject-ca-from]']\n    options: {delimiter: '.', index: 0, create: true}\n";
        assert_eq!(effect(dns), Effect::default());
        let name = "replacements:\n- sourceValue: x\n  targets:\n  - select: {kind: Deployment}\n";
        assert_eq!(
            effect(name),
            Effect {
                images: false,
                ids: true
            },
            "no field paths write metadata.name"
        );
        for unsure in [
            "replacements:\n- source: {kind: Deployment, fieldPath: spec.template.spec.containers.0.image}\n  targets:\n  - select: {kind: Job}\n    fieldPaths: [spec.x]\n",
            "replacements:\n- source: {kind: Deployment, fieldPath: .metadata.name}\n  targets:\n  - select: {kind: Job}\n    fieldPaths: ['spec.template.spec.containers.[name=a].image']\n",
            "replacements:\n- source: {kind: Deployment, fieldPath: .metadata.name}\n  targets:\n  - select: {kind: Job}\n    fieldPaths: [spec.template]\n",
            "replacements:\n- source: {kind: Deployment, fieldPath: .metadata.name}\n  targets:\n  - select: {kind: Job}\n    fieldPaths: ['spec.*.x']\n",
            "replacements:\n- path: more.yaml\n",
        ] {
            assert_eq!(effect(unsure), ALL, "{unsure}");
        }
    }
}
