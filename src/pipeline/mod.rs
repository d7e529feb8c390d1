//! The check, as the steps ARCHITECTURE.md draws, one module each, each taking and
//! returning plain types: collect → extract → join → request → resolve → judge. The report
//! is rendered by `report`.

mod chart_render;
mod charts;
mod collect;
mod extract;
mod join;
mod judge;
mod online;
mod request;

use crate::check::{self, Report};
use crate::error::Error;
use crate::git;
use crate::settings::{DiffSettings, Mode, Settings};

/// Runs the whole check for the settings' mode.
pub fn check(settings: &Settings) -> Result<Report, Error> {
    match &settings.mode {
        Mode::All { paths } => run(settings, collect::walk(settings, paths)?),
        Mode::Diff(diff) => {
            let repo = git::Repo::open(&settings.cwd.join(&diff.repo))?;
            let base = repo.choose_base(diff.base.as_deref(), &crate::env::var)?;
            check_against(settings, &repo, base, diff)
        }
    }
}

/// Checks `diff.head` against its merge base with a chosen base (the pre-push hook chooses
/// one per pushed ref).
pub fn check_against(
    settings: &Settings,
    repo: &git::Repo,
    base: git::BaseChoice,
    diff: &DiffSettings,
) -> Result<Report, Error> {
    let (settings, collected) = collect::changes(settings, repo, base, diff)?;
    run(&settings, collected)
}

fn run(settings: &Settings, c: collect::Collected) -> Result<Report, Error> {
    let file_count = c.inputs.len();
    let scans = extract::scan(c.inputs, settings.image_heuristic, c.sides.head.as_ref());
    let joined = join::derive(settings, &scans, &c.sides, c.all_refs)?;
    let mut online = match settings.offline || joined.releases.is_empty() {
        true => None,
        false => Some(online::Online::new(settings)?),
    };
    let mut chart_images = charts::derive(
        &joined.releases,
        &joined.base_releases,
        online.as_ref(),
        (c.sides.head.as_ref(), c.sides.base.as_deref()),
        &scans.repo_paths,
        settings.render.enabled,
    );
    // `--render`: what `helm template` deploys that the native model missed.
    let rendered = chart_render::derive(
        settings,
        &std::mem::take(&mut chart_images.to_render),
        &scans,
        c.sides.head.as_ref(),
        c.sides.base.as_deref().filter(|_| !c.all_refs),
    )?;
    chart_images.occurrences.extend(rendered.occurrences);
    chart_images.findings.extend(rendered.findings);
    let mut assembled = join::assemble(settings, scans, joined, &c.sides, c.problems, c.all_refs);
    assembled
        .occurrences
        .retain(|o| !chart_images.replaced.contains(&o.location));
    // A marked tag the chart step also derives is one occurrence, not two. (The set is
    // only made when the chart step derived something: it copies every value.)
    let seen: std::collections::HashSet<_> = match chart_images.occurrences.is_empty() {
        true => Default::default(),
        false => assembled
            .occurrences
            .iter()
            .map(|o| (o.location, o.value.clone()))
            .collect(),
    };
    assembled.occurrences.extend(
        chart_images
            .occurrences
            .into_iter()
            .filter(|o| !seen.contains(&(o.location, o.value.clone()))),
    );
    assembled.file_findings.extend(chart_images.findings);
    let mut plan = request::plan(settings, assembled.occurrences, &assembled.sources)?;
    plan.known(chart_images.known_tags);
    if online.is_none() && !settings.offline && plan.asks_anything() {
        online = Some(online::Online::new(settings)?);
    }
    let unique = plan.unique.clone();
    let resolved = online.as_ref().map(|o| o.resolve(unique, true));
    let entries = judge::judge(settings, plan, online.as_ref(), resolved);
    let mut summary = check::summarise(&entries, &assembled.file_findings, file_count);
    summary.offline = settings.offline;
    summary.requests = online.as_ref().map(online::Online::finish);
    summary.duration = c.started.elapsed();
    Ok(Report {
        sources: assembled.sources,
        entries,
        file_findings: assembled.file_findings,
        summary,
        git: c.git,
        repo_root: c.repo_root,
        undecided: settings.undecided,
    })
}
