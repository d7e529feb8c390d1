//! Network benchmark: imagegate against the real registry (Debian's docker-registry, token
//! auth) behind a delaying TCP proxy, beside the seed's method (a shell loop of
//! `skopeo inspect --raw`, sequential and with `xargs -P 16`), measured in the same run.
//!
//! Run: `cargo bench --bench network`. Knobs (environment):
//!   BENCH_TAGS (1000), BENCH_REPOS (200), BENCH_MISSING_PCT (10), BENCH_DELAY_MS (25, each
//!   way), BENCH_RUNS (5), BENCH_PEERS (1: also time skopeo; 0: imagegate only),
//!   BENCH_SEQ_SAMPLE (100: the sequential loop is timed on this many refs and scaled),
//!   BENCH_CONCURRENCY (unset: imagegate at its default flags, as a user runs it; a number:
//!   imagegate's --concurrency and --registry-concurrency).
//!
//!   BENCH_WRAP (unset: a program to run imagegate through, e.g. a profiler's wrapper script;
//!   it gets imagegate's path and arguments).
//!
//!   BENCH_TLS (0: plain HTTP/1.1; 1: the registry serves TLS with a certificate made here, so
//!   clients that offer ALPN get HTTP/2).
//!
//! It prints medians, ratios against the peers (skopeo sequential, `xargs -P16 skopeo`, and one
//! `curl -Z` process at the width imagegate's window settled on), the floor, imagegate's peak
//! RSS, the TCP connections it opened, and the requests the registry and the token service saw.
//! Everything runs on loopback.

#[path = "../tests/cli/harness.rs"]
mod harness;
#[path = "../tests/cli/loopback_http.rs"]
mod loopback_http;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use harness::*;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A TCP proxy that delays every chunk by `delay` in each direction, preserving order and
/// pipelining (it models latency, not bandwidth), counting the connections it accepts. It
/// runs on one thread with tokio: with a thread per direction and per connection it cost
/// more CPU than imagegate itself (2.2 s per 11,000-reference run), which on two cores
/// the registry then lacked.
fn delaying_proxy_counted(target: String, delay: Duration, accepted: Arc<AtomicUsize>) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                accepted.fetch_add(1, Ordering::SeqCst);
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::join!(
                        pump(client_read, server_write, delay),
                        pump(server_read, client_write, delay)
                    );
                });
            }
        });
    });
    port
}

/// Copies `from` to `to`, each chunk `delay` after it was read; ends `to`'s writing side
/// when `from` ends.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let read = async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n @ 1..) = from.read(&mut buf).await {
            if tx
                .send((tokio::time::Instant::now() + delay, buf[..n].to_vec()))
                .is_err()
            {
                break;
            }
        }
    };
    let write = async move {
        while let Some((due, bytes)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(read, write);
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}

fn time(mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_secs_f64()
}

/// Set (to a file path) when this binary runs as the measuring parent of one imagegate run.
const MEASURE: &str = "IMAGEGATE_BENCH_MEASURE_TO";

fn main() {
    if let Some(to) = std::env::var_os(MEASURE) {
        measure(&to);
    }
    let tags = env("BENCH_TAGS", 1000);
    let repos = env("BENCH_REPOS", 200).max(1);
    let missing_pct = env("BENCH_MISSING_PCT", 10);
    let delay = Duration::from_millis(env("BENCH_DELAY_MS", 25) as u64);
    let runs = env("BENCH_RUNS", 5).max(1);
    let peers = env("BENCH_PEERS", 1) == 1;
    let seq_sample = env("BENCH_SEQ_SAMPLE", 100);
    let fixed = std::env::var("BENCH_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse::<usize>().ok());
    // The width the floor assumes: the fixed one, else the default ceiling.
    let concurrency = fixed.unwrap_or(128);

    let issuer = TokenIssuer::start(&["bench/"], &[]);
    // The token service sits behind the same delay as the registry.
    let token_connections = Arc::new(AtomicUsize::new(0));
    let token_proxy = delaying_proxy_counted(
        format!("127.0.0.1:{}", issuer.port()),
        delay,
        token_connections.clone(),
    );
    *issuer.realm_override.lock().unwrap() = Some(format!("http://127.0.0.1:{token_proxy}/token"));
    let tls = env("BENCH_TLS", 0) == 1;
    let pki = Pki::new(&["127.0.0.1"]);
    let reg = Registry::start_with(
        Auth::Token(issuer.clone()),
        tls.then_some(Tls {
            pki: &pki,
            client_auth: false,
        }),
    );
    eprintln!("pushing {tags} tags across {repos} repositories …");
    let per_repo = tags.div_ceil(repos);
    let mut pushed = 0;
    for r in 0..repos {
        let repo = format!("bench/app{r}");
        for t in 0..per_repo {
            if pushed == tags {
                break;
            }
            reg.push_image_seeded(
                &repo,
                &format!("v{t}"),
                DOCKER_MANIFEST,
                "linux",
                "amd64",
                "same",
            );
            pushed += 1;
        }
    }
    let connections = Arc::new(AtomicUsize::new(0));
    let proxy = delaying_proxy_counted(reg.host.clone(), delay, connections.clone());
    let host = format!("127.0.0.1:{proxy}");
    let mut images = Vec::new();
    let mut n = 0;
    'outer: for r in 0..repos {
        for t in 0..per_repo {
            if n == tags {
                break 'outer;
            }
            images.push(format!("{host}/bench/app{r}:v{t}"));
            n += 1;
        }
    }
    let missing = tags * missing_pct / 100;
    for i in 0..missing {
        images.push(format!("{host}/bench/app{}:v{}-typo", i % repos, i));
    }

    let w = Workdir::new();
    for (i, chunk) in images.chunks(10).enumerate() {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        w.write(
            &format!("manifests/d{i}.yaml"),
            &deployment(&format!("d{i}"), &refs),
        );
    }
    std::fs::write(w.path().join("images.txt"), images.join("\n") + "\n").unwrap();
    // Over TLS the loopback registry is asked over verified HTTPS, trusting the test CA.
    let config = w.path().join("trusted.yaml");
    std::fs::write(
        &config,
        if tls {
            format!(
                "registries:\n  '{host}':\n    insecure: false\n    ca-file: {}\n",
                pki.ca.display()
            )
        } else {
            String::new()
        },
    )
    .unwrap();

    // Round trip through the proxy, measured: a small GET /v2/ on a fresh connection,
    // median of 10.
    let rtt = median(
        (0..10)
            .map(|_| {
                time(|| {
                    let mut s = TcpStream::connect(("127.0.0.1", proxy)).unwrap();
                    s.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                        .unwrap();
                    let mut b = Vec::new();
                    let _ = s.read_to_end(&mut b);
                })
            })
            .collect(),
    ); // connecting to the proxy is local; the request and its answer cross the delay once each
    let unique = images.len();

    let bin = env!("CARGO_BIN_EXE_imagegate");
    let mut ig = Vec::new();
    // CPU seconds (user + system) of each timed run: on a shared machine the wall time
    // also measures the neighbours, this does not.
    let mut cpu = Vec::new();
    // The registry's CPU seconds in each timed run: on two shared cores it is what bounds a
    // run that keeps it busy.
    let mut registry_cpu = Vec::new();
    // And this process's (the latency proxies, the token service, the log readers).
    let mut own_cpu = Vec::new();
    let mut peak_rss_mb: f64 = 0.0;
    let mut counts = None;
    let mut opened = 0;
    // One untimed run first (the registry's caches warm). Medians are of the runs after it.
    // imagegate as every run of this benchmark calls it.
    // BENCH_WRAP: a program imagegate is run through (its path is the first argument), for
    // profilers; the wrapper must keep imagegate's stdout and exit code.
    let wrap = std::env::var("BENCH_WRAP").ok();
    let me = std::env::current_exe().expect("the benchmark's own path");
    let measured = w.path().join("measured");
    let imagegate = |verbose: bool| {
        // Through this binary as a small parent that reports imagegate's own peak RSS and
        // CPU time (see `measure`).
        let mut command = Command::new(&me);
        command
            .env(MEASURE, &measured)
            .args(wrap.as_deref())
            .arg(bin);
        command
            .args(["check", "--all", "--no-cache", "--format", "json"])
            .arg("--config")
            .arg(&config)
            .args(fixed.iter().flat_map(|c| {
                ["--concurrency", "--registry-concurrency"]
                    .map(|f| [f.to_string(), c.to_string()])
                    .concat()
            }))
            .args(verbose.then_some("-v"))
            .arg("manifests")
            .current_dir(w.path())
            .env("DOCKER_CONFIG", &w.docker_config)
            .output()
            .unwrap()
    };
    let trace = std::env::var("BENCH_VERBOSE").is_ok();
    imagegate(false);
    for _ in 0..runs {
        issuer.requests.store(0, Ordering::SeqCst);
        connections.store(0, Ordering::SeqCst);
        reg.reset_log();
        let mut out = None;
        let registry_cpu_before = reg.cpu_seconds();
        let own_cpu_before = own_cpu_seconds();
        ig.push(time(|| {
            out = Some(imagegate(trace));
        }));
        registry_cpu.push(reg.cpu_seconds() - registry_cpu_before);
        own_cpu.push(own_cpu_seconds() - own_cpu_before);
        let (rss, secs) = read_measured(&measured);
        peak_rss_mb = peak_rss_mb.max(rss);
        cpu.push(secs);
        let out = out.unwrap();
        if trace {
            for line in String::from_utf8_lossy(&out.stderr).lines() {
                if line.contains("in flight") || line.contains("retry") {
                    eprintln!("{line}");
                }
            }
        }
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
        let want = if missing > 0 { 1 } else { 0 };
        assert_eq!(
            out.status.code(),
            Some(want),
            "exit code: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(json["summary"]["not_found"].as_u64(), Some(missing as u64));
        assert_eq!(json["summary"]["ok"].as_u64(), Some(tags as u64));
        opened = connections.load(Ordering::SeqCst);
        if trace {
            eprintln!(
                "token service: {} connections, {} answers",
                token_connections.swap(0, Ordering::SeqCst),
                issuer.requests.load(Ordering::SeqCst)
            );
        }
        let reqs = reg.requests();
        let at_server = |m: &str, p: &str| {
            reqs.iter()
                .filter(|(mm, u)| mm == m && u.contains(p))
                .count()
        };
        counts = Some((
            reqs.iter()
                .filter(|(m, u)| m == "GET" && u == "/v2/")
                .count(),
            issuer.requests.load(Ordering::SeqCst),
            at_server("HEAD", "/manifests/"),
            at_server("GET", "/manifests/"),
        ));
    }
    let ig_median = median(ig.clone());
    // The width the window settled on: its last move in a verbose run.
    let verbose = imagegate(true);
    let settled = String::from_utf8_lossy(&verbose.stderr)
        .lines()
        .rev()
        .find_map(|l| {
            l.split(": ")
                .nth(2)?
                .split(" requests in flight")
                .next()?
                .parse::<usize>()
                .ok()
        })
        .unwrap_or(8);
    let (pings, tokens, heads, gets) = counts.unwrap();
    println!(
        "imagegate network benchmark ({} unique refs: {tags} tags in {repos} repos + {missing} missing; delay {} ms each way)",
        unique,
        delay.as_millis()
    );
    println!(
        "measured round trip through the proxy: {:.1} ms",
        rtt * 1000.0
    );
    println!(
        "imagegate check --all: median {:.3} s over {runs} runs {:?}",
        ig_median,
        ig.iter()
            .map(|x| (x * 1000.0).round() / 1000.0)
            .collect::<Vec<_>>()
    );
    println!(
        "imagegate CPU time (user + system): median {:.3} s per run",
        median(cpu)
    );
    let registry_cpu = median(registry_cpu);
    println!(
        "registry CPU time per run: median {registry_cpu:.3} s ({:.2} ms per request it answered)",
        registry_cpu * 1e3 / (unique + 1) as f64
    );
    println!(
        "the benchmark's own CPU time per run (latency proxies, token service): median {:.3} s",
        median(own_cpu)
    );
    println!(
        "requests at the server: {pings} /v2/ pings, {tokens} token requests, {heads} manifest HEADs, {gets} manifest GETs"
    );
    println!(
        "transport: {}; TCP connections opened to the registry in the last run: {opened}; window settled at {settled}; peak RSS {peak_rss_mb:.1} MB",
        if tls {
            "TLS (HTTP/2 where offered)"
        } else {
            "plain HTTP/1.1"
        }
    );
    // Floor: connection and token round trips (TCP connect, ping, token, HEAD) + the HEAD
    // waves, each wave a round trip.
    let floor = rtt * (3.0 + (unique as f64 / concurrency as f64).ceil());
    println!(
        "floor = RTT x (3 + ceil({unique}/{concurrency})) = {:.3} s; imagegate / floor = {:.2}",
        floor,
        ig_median / floor
    );

    if !peers {
        return;
    }
    let skopeo =
        which("skopeo").expect("skopeo is needed for the peer runs: apt-get install -y skopeo");
    let sample: Vec<&String> = images.iter().take(seq_sample.min(images.len())).collect();
    let seq_script = format!(
        "while read -r ref; do {skopeo} inspect --raw --tls-verify=false \"docker://$ref\" >/dev/null 2>&1 || true; done"
    );
    let seq_input = sample
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    let mut seq = Vec::new();
    for _ in 0..runs.min(3) {
        seq.push(
            time(|| {
                let mut child = Command::new("bash")
                    .arg("-c")
                    .arg(&seq_script)
                    .stdin(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(seq_input.as_bytes())
                    .unwrap();
                child.wait().unwrap();
            }) * unique as f64
                / sample.len() as f64,
        );
    }
    let par_script = format!(
        "xargs -P 16 -I{{}} sh -c '{skopeo} inspect --raw --tls-verify=false docker://{{}} >/dev/null 2>&1 || true' < images.txt"
    );
    let mut par = Vec::new();
    for _ in 0..runs {
        par.push(time(|| {
            Command::new("bash")
                .arg("-c")
                .arg(&par_script)
                .current_dir(w.path())
                .status()
                .unwrap();
        }));
    }
    let (seq_m, par_m) = (median(seq), median(par));
    println!(
        "skopeo sequential loop: median {:.1} s (timed on {} refs, scaled to {unique})",
        seq_m,
        sample.len()
    );
    println!("skopeo xargs -P 16: median {:.2} s", par_m);
    println!(
        "ratios: sequential/imagegate = {:.0}x, parallel/imagegate = {:.1}x",
        seq_m / ig_median,
        par_m / ig_median
    );

    // One curl process with a token for every repository, HEADs at the settled width.
    let access: Vec<(String, Vec<&str>)> = (0..repos)
        .map(|r| (format!("bench/app{r}"), vec!["pull"]))
        .collect();
    let token = issuer.sign(&access);
    let scheme = if tls { "https" } else { "http" };
    let mut curl_config = String::new();
    for image in &images {
        let (name, tag) = image.rsplit_once(':').unwrap();
        let repo = name.split_once('/').unwrap().1;
        curl_config.push_str(&format!(
            "url = \"{scheme}://{host}/v2/{repo}/manifests/{tag}\"\noutput = \"/dev/null\"\n"
        ));
    }
    std::fs::write(w.path().join("curl.cfg"), curl_config).unwrap();
    let mut curl = Vec::new();
    for _ in 0..runs {
        curl.push(time(|| {
            Command::new("curl")
                .args([
                    "-s",
                    "--no-progress-meter",
                    "-Z",
                    "--parallel-max",
                    &settled.to_string(),
                    "-I",
                ])
                .args(["-H", &format!("Authorization: Bearer {token}")])
                .args([
                    "-H",
                    &format!("Accept: {}", imagegate::resolve::registry::MANIFEST_ACCEPT),
                ])
                .args(["--cacert", pki.ca.to_str().unwrap(), "-K", "curl.cfg"])
                .current_dir(w.path())
                .status()
                .unwrap();
        }));
    }
    let curl_m = median(curl);
    println!(
        "curl -Z --parallel-max {settled}: median {:.3} s; imagegate/curl = {:.2}",
        curl_m,
        ig_median / curl_m
    );
}

/// Runs the command in this process's arguments, then writes its peak RSS (MB) and CPU
/// seconds (user + system) to the file `to`, and exits with its code. The benchmark's own
/// rusage of its children cannot be used for this: a child spawned with vfork (as
/// `Command` does) reports the parent's peak RSS as its own when it execs, so it would count
/// this benchmark's proxies and pushed images. A child of this small process carries only
/// this process's few MB.
fn measure(to: &std::ffi::OsStr) -> ! {
    let mut args = std::env::args_os().skip(1);
    let program = args.next().expect("a program to measure");
    let status = Command::new(program)
        .args(args)
        .status()
        .expect("the measured program runs");
    let usage = rusage(libc::RUSAGE_CHILDREN);
    let line = format!(
        "{} {}",
        usage.ru_maxrss as f64 / 1024.0,
        cpu_seconds(&usage)
    );
    std::fs::write(to, line).expect("the measurement is written");
    std::process::exit(status.code().unwrap_or(1));
}

/// CPU seconds (user + system) this process has used so far, all its threads.
fn own_cpu_seconds() -> f64 {
    cpu_seconds(&rusage(libc::RUSAGE_SELF))
}

/// `getrusage(who)`.
fn rusage(who: libc::c_int) -> libc::rusage {
    // SAFETY: getrusage fills the struct it is given; a zeroed rusage is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut usage) };
    usage
}

/// User + system seconds of a rusage.
fn cpu_seconds(usage: &libc::rusage) -> f64 {
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// The peak RSS (MB) and CPU seconds `measure` wrote for the last run.
fn read_measured(path: &std::path::Path) -> (f64, f64) {
    let text = std::fs::read_to_string(path).expect("the measured run wrote its figures");
    let mut parts = text.split(' ').map(|p| p.parse::<f64>().expect("a number"));
    (parts.next().unwrap(), parts.next().unwrap())
}

fn which(name: &str) -> Option<String> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
