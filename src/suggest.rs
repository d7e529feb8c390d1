//! "Did you mean": ranks a repository's existing tags by how close they are to a tag that was
//! not found, by edit distance and, where both are versions, by semver proximity.

use semver::Version;

/// How many suggestions to give at most.
pub const MAX_SUGGESTIONS: usize = 3;

/// The closest existing tags to `missing`, best first.
pub fn nearby(missing: &str, tags: &[String]) -> Vec<String> {
    let target = version(missing);
    let limit = (missing.chars().count() / 2).max(3);
    let mut scored: Vec<((u8, u64, usize), &String)> = tags
        .iter()
        .filter(|t| t.as_str() != missing)
        .filter_map(|t| {
            let distance = strsim::levenshtein(missing, t);
            let proximity = match (&target, version(t)) {
                (Some(a), Some(b)) => Some(semver_distance(a, &b)),
                _ => None,
            };
            // A version in the same major line is a candidate however it is spelled; any
            // other tag must be a near spelling.
            match proximity {
                Some(p) if p < 1_000_000 => Some(((0, p, distance), t)),
                _ if distance <= limit => Some(((1, 0, distance), t)),
                _ => None,
            }
        })
        .collect();
    scored.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(a.1)));
    scored
        .into_iter()
        .take(MAX_SUGGESTIONS)
        .map(|(_, t)| t.clone())
        .collect()
}

/// The highest tag that satisfies a Helm/Flux version constraint (`*`, `6.x`,
/// `>=1.0.0 <2.0.0`, `^1.2`, `~1.2`, alternatives with `||`). An exact tag match wins first.
/// Tags carry SemVer build metadata as `_` (Helm's OCI convention).
pub fn best_match(constraint: &str, tags: &[String]) -> Option<String> {
    let c = constraint.trim();
    if tags.iter().any(|t| t == c) {
        return Some(c.to_string());
    }
    let reqs: Vec<semver::VersionReq> = c
        .split("||")
        .filter_map(|alt| {
            let alt = alt.trim();
            if alt.is_empty() || alt == "*" || alt == "x" {
                return semver::VersionReq::parse("*").ok();
            }
            // Masterminds separates comparators with spaces (or commas); semver wants commas.
            let mut parts: Vec<String> = Vec::new();
            for tok in alt.split([' ', ',']).filter(|t| !t.is_empty()) {
                match parts.last_mut() {
                    Some(last)
                        if matches!(last.as_str(), ">" | ">=" | "<" | "<=" | "=" | "~" | "^") =>
                    {
                        last.push_str(tok)
                    }
                    _ => parts.push(tok.trim_start_matches('v').to_string()),
                }
            }
            semver::VersionReq::parse(&parts.join(", ")).ok()
        })
        .collect();
    if reqs.is_empty() {
        return None;
    }
    tags.iter()
        .filter_map(|t| {
            let v = Version::parse(&t.trim_start_matches('v').replace('_', "+")).ok()?;
            reqs.iter().any(|r| r.matches(&v)).then_some((v, t))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, t)| t.clone())
}

/// A tag read as a version: `v1.2.3`, `1.2.3-rc.1`, `1.2` (as 1.2.0), `1` (as 1.0.0).
fn version(tag: &str) -> Option<Version> {
    let t = tag.strip_prefix('v').unwrap_or(tag);
    if let Ok(v) = Version::parse(t) {
        return Some(v);
    }
    let (core, rest) = match t.find(['-', '+']) {
        Some(i) => (&t[..i], &t[i..]),
        None => (t, ""),
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty()
        || parts.len() > 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let mut full = parts.join(".");
    for _ in parts.len()..3 {
        full.push_str(".0");
    }
    Version::parse(&format!("{full}{rest}")).ok()
}

/// How far apart two versions are: majors weigh most, then minors, then patches; a
/// pre-release of the same core is closest.
fn semver_distance(a: &Version, b: &Version) -> u64 {
    let d = |x: u64, y: u64| x.abs_diff(y);
    d(a.major, b.major).saturating_mul(1_000_000)
        + d(a.minor, b.minor).min(999).saturating_mul(1_000)
        + d(a.patch, b.patch).min(999)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_typo_suggests_the_version_it_meant_then_its_neighbours() {
        let t = tags(&["v1.3.0", "v1.4.9", "v1.5.0", "v2.0.0", "latest", "main"]);
        assert_eq!(nearby("v1.5.0-typo", &t), ["v1.5.0", "v1.4.9", "v1.3.0"]);
        assert_eq!(nearby("v1.5.1", &t), ["v1.5.0", "v1.4.9", "v1.3.0"]);
    }

    #[test]
    fn non_versions_use_edit_distance() {
        let t = tags(&["latest", "stable", "edge", "main-abc123"]);
        assert_eq!(nearby("lates", &t), ["latest"]);
        assert_eq!(nearby("stabel", &t), ["stable"]);
        assert!(nearby("completely-different", &t).is_empty());
    }

    #[test]
    fn version_ranges_pick_the_highest_match() {
        let t = tags(&[
            "5.9.0",
            "6.0.0",
            "6.5.4",
            "6.6.0-rc.1",
            "7.0.0",
            "1.2.3_build.4",
        ]);
        assert_eq!(best_match(">=6.0.0 <7.0.0", &t).as_deref(), Some("6.5.4"));
        assert_eq!(best_match("6.x", &t).as_deref(), Some("6.5.4"));
        assert_eq!(best_match("*", &t).as_deref(), Some("7.0.0"));
        assert_eq!(best_match("^5.0 || ^7.0", &t).as_deref(), Some("7.0.0"));
        assert_eq!(best_match("~1.2.3", &t).as_deref(), Some("1.2.3_build.4"));
        assert_eq!(best_match(">=8", &t), None);
        assert_eq!(
            best_match("6.6.0-rc.1", &t).as_deref(),
            Some("6.6.0-rc.1"),
            "exact tag"
        );
    }

    #[test]
    fn short_versions_and_limits() {
        let t = tags(&["1.25", "1.26", "1.27", "1.28", "2"]);
        // Equally close: the newer first.
        assert_eq!(nearby("1.26.1", &t), ["1.26", "1.27", "1.25"]);
        assert_eq!(nearby("1.2x", &tags(&[])), Vec::<String>::new());
    }
}
