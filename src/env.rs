//! The process environment, read in one place: a variable counts only when it is set and
//! not empty, and "in CI" means what every major CI says about itself.

/// An environment variable, when set and not empty.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Whether this runs in CI (the `CI` variable every major CI sets, or GitHub's and GitLab's
/// own).
pub fn in_ci() -> bool {
    var("CI").is_some_and(|v| v != "false" && v != "0")
        || var("GITHUB_ACTIONS").as_deref() == Some("true")
        || var("GITLAB_CI").as_deref() == Some("true")
}
