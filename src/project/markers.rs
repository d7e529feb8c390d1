//! Flux image automation markers (`# {"$imagepolicy": "ns:policy:tag"}`) joined with the
//! repository's ImagePolicy and ImageRepository objects: a marked tag is checked against
//! the image the policy names, even where the values do not name the repository.

use std::path::PathBuf;

use super::{Joined, Scanned};
use crate::manifest::flux::{FluxFacts, Named};
use crate::manifest::kustomize::Reader;
use crate::manifest::{ImageValue, Occurrence};

pub(super) fn join(
    scanned: &Scanned<'_>,
    reader: &dyn Reader,
    elsewhere: &dyn Fn() -> Vec<PathBuf>,
    j: &mut Joined,
) {
    let markers: Vec<_> = scanned
        .files()
        .flat_map(|(_, s, _)| s.flux.markers.iter())
        .filter(|m| m.field == "tag")
        .collect();
    if markers.is_empty() {
        return;
    }
    let mut facts: Vec<FluxFacts> = scanned.files().map(|(_, s, _)| s.flux.clone()).collect();
    let mut looked = false;
    for m in markers {
        let find = |facts: &[FluxFacts]| -> Option<String> {
            let named = |list: &dyn Fn(&FluxFacts) -> &Vec<Named>, name: &str, ns: Option<&str>| {
                facts
                    .iter()
                    .flat_map(|f| list(f).iter())
                    .find(|n| {
                        n.name == name
                            && (n.namespace.is_none()
                                || ns.is_none()
                                || n.namespace.as_deref() == ns)
                    })
                    .cloned()
            };
            let policy = named(&|f| &f.image_policies, &m.policy, Some(&m.namespace))?;
            let repo = named(
                &|f| &f.image_repositories,
                &policy.target,
                policy.target_namespace.as_deref(),
            )?;
            Some(repo.target)
        };
        let mut image = find(&facts);
        if image.is_none() && !looked {
            looked = true;
            for path in elsewhere() {
                if let Some(bytes) = reader.read(&path)
                    && super::declares_image_policy(&bytes)
                {
                    facts.push(crate::manifest::scan(usize::MAX, &path, bytes).flux);
                }
            }
            image = find(&facts);
        }
        let context = format!("$imagepolicy {}:{} tag", m.namespace, m.policy);
        match image {
            Some(image) => j.occurrences.push(Occurrence {
                location: m.location,
                value: ImageValue::Text(format!("{image}:{}", m.value)),
                context,
                previous: None,
            }),
            None => j.findings.push(super::note(
                crate::finding::Code::Skipped,
                format!(
                    "{context}: the ImagePolicy `{}:{}` or its ImageRepository was not found, so the image the tag belongs to is unknown",
                    m.namespace, m.policy
                ),
                "keep the ImagePolicy and ImageRepository in the repository, or run with --all",
                m.location,
            )),
        }
    }
}
