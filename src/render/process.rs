//! Running an engine as a child process that nothing of the repository's choosing reaches:
//! a clean environment (only what finding programs and temporary files need, plus
//! `egress.rs`'s proxy and private home), the tree it renders as its working directory,
//! capped output, and a time limit after which it is killed.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The most output an engine may print: more is a failure, not a manifest.
pub const MAX_OUTPUT: u64 = 256 << 20;
/// The most of an engine's error output kept for the message.
const MAX_ERROR: u64 = 64 << 10;

/// Variables passed through to the engine; everything else (`KUSTOMIZE_PLUGIN_HOME`,
/// `XDG_CONFIG_HOME`, `SSH_AUTH_SOCK`, the caller's proxies and home, credentials of the CI)
/// is left behind, and `egress::child_env` adds the proxy, git's limits and a private home.
const KEPT: [&str; 8] = [
    "PATH",
    "TMPDIR",
    "LANG",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    // Windows cannot start a process without these.
    "SYSTEMROOT",
    "TEMP",
    "TMP",
];

/// What a finished engine printed.
pub struct Output {
    pub success: bool,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Output {
    /// The engine's output, or its own message as the error.
    pub fn into_stdout(self, program: &Path) -> Result<Vec<u8>, String> {
        if self.success {
            Ok(self.stdout)
        } else if self.stderr.is_empty() {
            Err(format!("{} failed with no message", program.display()))
        } else {
            Err(self.stderr)
        }
    }
}

/// Runs `program args` in `cwd` with a clean environment; `Err` says why it did not finish
/// (could not start, too much output, out of time).
pub fn run(program: &Path, args: &[&str], cwd: &Path, timeout: Duration) -> Result<Output, String> {
    run_with(program, args, cwd, timeout, &[])
}

/// [`run`], with variables set after the clean environment and the egress's are made
/// (`HOME` and an engine's own directories pointed at a scratch directory).
pub fn run_with(
    program: &Path,
    args: &[&str],
    cwd: &Path,
    timeout: Duration,
    set: &[(&str, &Path)],
) -> Result<Output, String> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(cwd)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in KEPT {
        if let Some(v) = std::env::var_os(var) {
            cmd.env(var, v);
        }
    }
    // Remote bases are fetched through imagegate's proxy, under its destination rules.
    cmd.envs(super::egress::child_env()?);
    for (var, value) in set {
        cmd.env(var, value);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    let stdout = child.stdout.take().map(|s| reader(s, MAX_OUTPUT + 1));
    let stderr = child.stderr.take().map(|s| reader(s, MAX_ERROR));
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < timeout => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{} did not finish in {} s and was stopped",
                    program.display(),
                    timeout.as_secs()
                ));
            }
            Err(e) => return Err(format!("waiting for {}: {e}", program.display())),
        }
    };
    let stdout = stdout.and_then(|h| h.join().ok()).unwrap_or_default();
    let stderr = stderr.and_then(|h| h.join().ok()).unwrap_or_default();
    if stdout.len() as u64 > MAX_OUTPUT {
        return Err(format!(
            "{} printed more than {} MiB",
            program.display(),
            MAX_OUTPUT >> 20
        ));
    }
    Ok(Output {
        success: status.success(),
        stdout,
        stderr: String::from_utf8_lossy(&stderr).trim().to_string(),
    })
}

/// Reads a pipe to its end on a thread of its own, keeping at most `cap` bytes (and
/// draining the rest, so the child never blocks on a full pipe).
fn reader(pipe: impl Read + Send + 'static, cap: u64) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut pipe = pipe;
        let _ = pipe.by_ref().take(cap).read_to_end(&mut kept);
        let _ = std::io::copy(&mut pipe, &mut std::io::sink());
        kept
    })
}
