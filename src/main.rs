//! The imagegate binary: parses the command line, runs it, and maps the outcome to an exit
//! code (0 pass, 1 findings, 2 the tool could not run, 3 undecided). A run that could not
//! happen is announced to the CI (`run_error`), so exit 2 is never silent there.

use std::io::{BufWriter, ErrorKind, Write};

use clap::Parser;

/// imagegate's log lines on stderr: `imagegate: …`, warnings marked. Only imagegate's own
/// records; the libraries' are not the user's business.
struct Stderr;

impl log::Log for Stderr {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level() && metadata.target().starts_with("imagegate")
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            match record.level() {
                log::Level::Warn => eprintln!("imagegate: warning: {}", record.args()),
                _ => eprintln!("imagegate: {}", record.args()),
            }
        }
    }

    fn flush(&self) {}
}

/// mimalloc rather than the system allocator: the YAML scan makes and frees a small string per
/// scalar on every core, and glibc's malloc took about a sixth of the network run's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc 2's `mi_option_arena_eager_commit` and `mi_option_purge_delay` (mimalloc.h), which
/// libmimalloc-sys does not name.
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

static LOGGER: Stderr = Stderr;

fn main() {
    // SAFETY: mimalloc's option setters only store a value; called before any other thread.
    // Freed memory goes back to the OS at once, and arenas are committed as they are used:
    // with mimalloc's defaults the offline scan of 50,000 resources peaked at 122 MB, not 79.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
    }
    if let Some(path) = imagegate::trust::absolute_path_entries() {
        // SAFETY: the first thing main does, before any thread exists that could read the
        // environment at the same time. Relative PATH entries (`.`, an empty entry) would
        // let a file in the checked repository stand in for a credential helper or git.
        unsafe { std::env::set_var("PATH", path) };
    }
    let cli = match imagegate::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            if e.use_stderr() {
                let text = e.to_string();
                let first = text.lines().next().unwrap_or_default();
                imagegate::run_error::announce(first.trim_start_matches("error: "), &[]);
            }
            e.exit();
        }
    };
    log::set_logger(&LOGGER).expect("the only logger");
    log::set_max_level(imagegate::settings::log_level(&cli));
    let reports = imagegate::run_error::reports(&cli.command);
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let result = imagegate::run(cli, &mut out);
    let flushed = out.flush();
    drop(out);
    let code = match result {
        Ok(code) => match flushed {
            Err(e) if e.kind() != ErrorKind::BrokenPipe => {
                eprintln!("imagegate: cannot write the report: {e}");
                2
            }
            _ => code,
        },
        // A closed pipe (`imagegate … | head`) is the reader's choice, not a failure.
        Err(imagegate::error::Error::Output(e)) if e.kind() == ErrorKind::BrokenPipe => 0,
        Err(e) => {
            imagegate::run_error::announce(&e.to_string(), &reports);
            // Errors name a file and position; keep them on one line for grep and CI logs.
            let _ = miette::set_hook(Box::new(|_| {
                Box::new(miette::MietteHandlerOpts::new().wrap_lines(false).build())
            }));
            eprintln!("{:?}", miette::Report::new(e));
            2
        }
    };
    std::process::exit(code);
}
