//! Documentation generated from the code, so it cannot drift: shell completions and the man
//! page from the clap command (clap_complete, clap_mangen), and the JSON Schema of the JSON
//! report from its Rust types (schemars), published as `report.schema.json`.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::Error;

/// `imagegate completions SHELL`.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn Write) -> Result<i32, Error> {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "imagegate", out);
    Ok(0)
}

/// `imagegate man`: the top-level page, with every subcommand's options in one page.
pub fn man(out: &mut dyn Write) -> Result<i32, Error> {
    let cmd = Cli::command();
    let mut page = Vec::new();
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(&mut page).map_err(Error::Output)?;
    man.render_name_section(&mut page).map_err(Error::Output)?;
    usage_sections(&man, &mut page)?;
    man.render_subcommands_section(&mut page)
        .map_err(Error::Output)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = sub.get_name();
        writeln!(page, ".SH \"IMAGEGATE {}\"", name.to_uppercase()).map_err(Error::Output)?;
        let sub = sub.clone().bin_name(format!("imagegate {name}"));
        usage_sections(&clap_mangen::Man::new(sub), &mut page)?;
    }
    man.render_extra_section(&mut page).map_err(Error::Output)?;
    man.render_version_section(&mut page)
        .map_err(Error::Output)?;
    writeln!(
        page,
        ".SH \"EXIT STATUS\"\n.nf\n{}\n.fi",
        crate::cli::EXIT_CODES
    )
    .map_err(Error::Output)?;
    out.write_all(&page).map_err(Error::Output)?;
    Ok(0)
}

/// The JSON Schema of the JSON report, pretty-printed with a final newline.
pub fn report_schema_json() -> String {
    // The schema of what is written: fields skipped when empty are optional.
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator()
        .into_root_schema_for::<crate::report::json::Document<'static>>();
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}

/// The synopsis, description and options of a command, as the page shows each command.
fn usage_sections(man: &clap_mangen::Man, page: &mut Vec<u8>) -> Result<(), Error> {
    man.render_synopsis_section(page).map_err(Error::Output)?;
    man.render_description_section(page)
        .map_err(Error::Output)?;
    man.render_options_section(page).map_err(Error::Output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_report_schema_is_current() {
        let published = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("report.schema.json"),
        )
        .unwrap_or_default();
        assert!(
            published == report_schema_json(),
            "report.schema.json is stale: run `cargo run -- report-schema > report.schema.json`"
        );
    }

    #[test]
    fn man_page_and_completions_name_every_command() {
        let mut page = Vec::new();
        man(&mut page).unwrap();
        let page = String::from_utf8(page).unwrap();
        assert!(
            page.starts_with(".ie") || page.contains(".TH imagegate"),
            "{page}"
        );
        for sub in ["check", "pre-push", "hook", "inspect", "completions"] {
            assert!(
                page.contains(&format!("IMAGEGATE {}", sub.to_uppercase())),
                "{sub}"
            );
        }
        let mut bash = Vec::new();
        completions(clap_complete::Shell::Bash, &mut bash).unwrap();
        let bash = String::from_utf8(bash).unwrap();
        assert!(bash.contains("--undecided") && bash.contains("pre-push"));
    }
}
