//! Whether human output is coloured: `--color always|never` decide; `auto` colours a
//! terminal and GitLab's job log (which renders ANSI colours), unless `NO_COLOR` is set.

use std::io::IsTerminal;

use clap::ColorChoice;

use crate::env::var as env;

pub fn color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            env("NO_COLOR").is_none()
                && (std::io::stdout().is_terminal() || env("GITLAB_CI").as_deref() == Some("true"))
        }
    }
}
