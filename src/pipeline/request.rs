//! Step 4, request: which occurrences are asked about at all. Ignore comments and `skip`
//! globs take references out; registries the policy leaves out and destinations never
//! contacted are refused before any request; the rest become the unique references to ask
//! and the repositories whose tags decide version ranges.

use std::collections::BTreeSet;

use rayon::prelude::*;

use crate::check::{self, Classified, Entry};
use crate::error::Error;
use crate::finding::Finding;
use crate::image_ref::ImageRef;
use crate::manifest::{ImageValue, Occurrence};
use crate::policy::Rules;
use crate::settings::Settings;
use crate::source::SourceFile;

/// What will be asked, and what will not be and why.
pub struct Plan {
    pub rules: Rules,
    /// The entries of the occurrences that are checked, before their verdicts.
    pub entries: Vec<Entry>,
    /// Taken out by an ignore comment or a skip glob.
    pub passed_over: Vec<Occurrence>,
    /// Never asked, with the finding that says why.
    pub refused: Vec<(Occurrence, Finding)>,
    /// One manifest request each.
    pub unique: Vec<ImageRef>,
    /// Repositories whose tag lists decide version ranges.
    pub ranges: Vec<ImageRef>,
    /// Versions already known (classic charts' indexes), not asked of a registry.
    pub known_tags: check::TagLists,
}

impl Plan {
    /// Takes versions the chart step read from indexes: those ranges are not asked.
    pub fn known(&mut self, tags: check::TagLists) {
        self.ranges
            .retain(|r| !tags.contains_key(&(r.domain.clone(), r.path.clone())));
        self.known_tags = tags;
    }

    /// Whether the run needs the network at all.
    pub fn asks_anything(&self) -> bool {
        !(self.unique.is_empty() && self.ranges.is_empty())
    }
}

pub fn plan(
    settings: &Settings,
    mut occurrences: Vec<Occurrence>,
    sources: &[SourceFile],
) -> Result<Plan, Error> {
    let rules = Rules::new(&settings.skip, &settings.policy, &settings.repo_allowed)?;
    let mut passed_over = Vec::new();
    occurrences.retain(|o| match rules.passed_over(o, &sources[o.location.file]) {
        Some(why) => {
            let place = sources[o.location.file].place(o.location.start);
            log::debug!("{place}: not checked ({why})");
            passed_over.push(o.clone());
            false
        }
        None => true,
    });
    // Each occurrence is read as a reference once (in parallel, in order), and becomes its
    // entry here: refusals, the unique requests and the verdicts all use that reading.
    let read: Vec<Result<Entry, Box<(Occurrence, Finding)>>> = occurrences
        .into_par_iter()
        .map(|o| {
            let c = check::classify(&o);
            match rules.refused(&o, &c, &settings.registries.destinations) {
                Some(f) => Err(Box::new((o, f))),
                None => Ok(check::entry(o, c)),
            }
        })
        .collect();
    let mut refused = Vec::new();
    // Collected in place: the entries are never held twice.
    let entries: Vec<Entry> = read
        .into_iter()
        .filter_map(|r| r.map_err(|no| refused.push(*no)).ok())
        .collect();
    let ranges: BTreeSet<ImageRef> = entries
        .iter()
        .filter(|e| matches!(e.occurrence.value, ImageValue::Range { .. }))
        .filter_map(|e| match check::classify(&e.occurrence) {
            Classified::Range(r, _) => Some(r),
            _ => None,
        })
        .collect();
    let unique = check::unique_requests(entries.iter().filter_map(|e| e.reference.as_ref()));
    Ok(Plan {
        unique,
        ranges: ranges.into_iter().collect(),
        known_tags: check::TagLists::new(),
        rules,
        entries,
        passed_over,
        refused,
    })
}
