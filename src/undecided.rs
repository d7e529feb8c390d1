//! One switch for references that could not be decided (`--undecided error|warn`, the
//! config's `undecided` key, `IMAGEGATE_UNDECIDED`): it decides both the exit code and the
//! level every format draws such a finding at, so a warning is never drawn as an error.

use clap::ValueEnum;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::finding::Severity;

/// How undecided references (unreachable registry, rate limit, 401/403) count.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Undecided {
    /// Fail: exit 3 and an error annotation. Nothing undecided passes (the default).
    #[default]
    Error,
    /// Pass with a warning: exit 0 and a warning annotation, for offline laptops and
    /// registries that are down.
    Warn,
}

impl Undecided {
    /// The level a finding of `severity` is drawn at.
    pub fn level(self, severity: Severity) -> Severity {
        match (self, severity) {
            (Undecided::Warn, Severity::Undecided) => Severity::Warning,
            (_, s) => s,
        }
    }

    /// The exit code for the worst severity found.
    pub fn exit_code(self, worst: Option<Severity>) -> i32 {
        match worst {
            Some(Severity::Error) => 1,
            Some(Severity::Undecided) if self == Undecided::Error => 3,
            _ => 0,
        }
    }

    /// The flag, else `IMAGEGATE_UNDECIDED` (when set and not empty), else the config's key,
    /// else `error`.
    pub fn choose(
        flag: Option<Undecided>,
        config: Option<Undecided>,
    ) -> Result<Undecided, crate::error::Error> {
        let env = match crate::env::var("IMAGEGATE_UNDECIDED") {
            Some(v) => Some(Undecided::from_str(v.trim(), true).map_err(|_| {
                crate::error::Error::Usage(format!(
                    "IMAGEGATE_UNDECIDED must be `error` or `warn`, not `{v}`"
                ))
            })?),
            None => None,
        };
        Ok(flag.or(env).or(config).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warn_passes_undecided_but_never_an_error() {
        let (error, undecided, warning) = (Severity::Error, Severity::Undecided, Severity::Warning);
        assert_eq!(Undecided::Error.exit_code(Some(undecided)), 3);
        assert_eq!(Undecided::Warn.exit_code(Some(undecided)), 0);
        assert_eq!(Undecided::Warn.exit_code(Some(error)), 1);
        assert_eq!(Undecided::Warn.exit_code(None), 0);
        assert_eq!(Undecided::Warn.level(undecided), warning);
        assert_eq!(Undecided::Error.level(undecided), undecided);
        assert_eq!(Undecided::Warn.level(error), error);
        assert_eq!(
            Undecided::choose(None, Some(Undecided::Warn)).unwrap(),
            Undecided::Warn
        );
        assert_eq!(
            Undecided::choose(Some(Undecided::Error), Some(Undecided::Warn)).unwrap(),
            Undecided::Error
        );
    }
}
