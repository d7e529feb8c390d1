//! Step 6, judge: every occurrence becomes an entry with a status and, where something is
//! wrong or undecided, a finding: resolutions joined back, version ranges decided, strict
//! variables, suggestions and the merge base's value for failures, then the policy rules.
//! Refused and passed-over occurrences join the entries last, in file order.

use std::collections::{BTreeSet, HashMap};

use super::online::Online;
use super::request::Plan;
use crate::check::{self, Entry, Status};
use crate::finding::{Code, Severity};
use crate::image_ref::ImageRef;
use crate::resolve::Resolution;
use crate::settings::Settings;

pub fn judge(
    settings: &Settings,
    plan: Plan,
    online: Option<&Online>,
    mut resolved: Option<HashMap<ImageRef, Resolution>>,
) -> Vec<Entry> {
    let mut entries = plan.entries;
    check::judge_entries(&mut entries, resolved.as_ref());
    if let Some(online) = online
        && !(plan.ranges.is_empty() && plan.known_tags.is_empty())
    {
        let mut tags = match plan.ranges.is_empty() {
            true => check::TagLists::new(),
            false => online.tag_lists(plan.ranges),
        };
        tags.extend(plan.known_tags);
        check::resolve_ranges(&mut entries, Some(&tags));
    }
    if settings.strict {
        for f in entries.iter_mut().filter_map(|e| e.finding.as_mut()) {
            if f.code == Code::UnresolvedVariable {
                f.code = Code::UnresolvedVariableStrict;
            }
        }
    }
    let mut tags = check::TagLists::new();
    if let (Some(online), Some(map)) = (online, resolved.as_mut()) {
        if settings.suggest {
            tags = online.tag_lists(check::repositories_to_list(&entries));
        }
        let previous: Vec<_> = check::previous_to_resolve(&entries)
            .into_iter()
            .filter(|r| !map.contains_key(r))
            .collect();
        if !previous.is_empty() {
            map.extend(online.resolve(previous, false));
        }
    }
    check::annotate(&mut entries, &tags, resolved.as_ref());
    apply_policy(&plan.rules, &mut entries, online);
    let not_asked = plan
        .refused
        .into_iter()
        .map(|(o, f)| (o, Status::Refused, Some(f)));
    let skipped = plan
        .passed_over
        .into_iter()
        .map(|o| (o, Status::Skipped, None));
    let mut later = not_asked.chain(skipped).peekable();
    if later.peek().is_some() {
        let (occurrences, verdicts): (Vec<_>, Vec<_>) = later.map(|(o, s, f)| (o, (s, f))).unzip();
        let mut extra = check::entries(occurrences, None);
        for (e, (status, finding)) in extra.iter_mut().zip(verdicts) {
            e.status = status;
            e.finding = finding;
        }
        entries.extend(extra);
        entries.sort_by_key(|e| (e.occurrence.location.file, e.occurrence.location.start));
    }
    entries
}

/// The policy findings, on entries nothing worse was found for. The platform policy reads
/// the platforms of the images that exist (GETs).
fn apply_policy(rules: &crate::policy::Rules, entries: &mut [Entry], online: Option<&Online>) {
    if !rules.policy.any() {
        return;
    }
    let platforms = match online {
        Some(online) if !rules.policy.platforms.is_empty() => {
            let wanted: BTreeSet<_> = entries
                .iter()
                .filter(|e| e.status == Status::Ok)
                .filter_map(|e| {
                    let r = e.reference.as_ref()?.pulled();
                    Some((r, e.via.clone()))
                })
                .collect();
            online.platforms(wanted.into_iter().collect())
        }
        _ => HashMap::new(),
    };
    for e in entries.iter_mut() {
        if e.finding
            .as_ref()
            .is_some_and(|f| f.severity() <= Severity::Undecided)
        {
            continue;
        }
        let listed = e
            .reference
            .as_ref()
            .and_then(|r| platforms.get(&r.pulled()));
        if let Some(f) = rules.check(e, listed) {
            e.finding = Some(f);
        }
    }
}
