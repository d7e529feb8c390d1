//! 429-storm benchmark (issue 17): a scripted loopback registry that answers 429 whenever
//! more than LIMIT requests are in flight, and takes DELAY_MS to answer each one. Why fake: no
//! real registry refuses by concurrency on demand. It runs imagegate at its default flags
//! (an adaptive window up to 128) and at a fixed width of LIMIT (`--registry-concurrency
//! LIMIT`, which never exceeds it), and prints both times, their ratio, how many requests were
//! refused, and the most times one request was refused in a row.
//!
//! Run: `cargo bench --bench storm`. Knobs: STORM_REFS (1100), STORM_LIMIT (20),
//! STORM_DELAY_MS (50), STORM_RUNS (3). Everything runs on loopback.

#[path = "../tests/cli/harness.rs"]
mod harness;
#[path = "../tests/cli/loopback_http.rs"]
mod loopback_http;

use std::collections::HashMap;
use std::io::Write;
use std::net::TcpListener;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use harness::*;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What the storm server saw.
#[derive(Default)]
struct Seen {
    refused: AtomicUsize,
    answered: AtomicUsize,
    /// Per manifest path: refusals in a row now, and the most seen.
    streaks: Mutex<HashMap<String, (usize, usize)>>,
}

fn storm_server(limit: usize, delay: Duration, seen: Arc<Seen>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let host = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    let in_flight = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            let (seen, in_flight) = (seen.clone(), in_flight.clone());
            std::thread::spawn(move || {
                // Keep-alive: answer requests on this connection until it closes.
                while let Some(head) = read_request_head(&mut stream) {
                    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    std::thread::sleep(delay);
                    let refuse = now > limit && path != "/v2/";
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    {
                        let mut streaks = seen.streaks.lock().unwrap();
                        let s = streaks.entry(path).or_default();
                        s.0 = if refuse { s.0 + 1 } else { 0 };
                        s.1 = s.1.max(s.0);
                    }
                    let answer = if refuse {
                        seen.refused.fetch_add(1, Ordering::SeqCst);
                        "HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\n\r\n".to_string()
                    } else {
                        seen.answered.fetch_add(1, Ordering::SeqCst);
                        format!(
                            "HTTP/1.1 200 OK\r\nDocker-Content-Digest: sha256:{}\r\nContent-Length: 0\r\n\r\n",
                            "a".repeat(64)
                        )
                    };
                    if stream.write_all(answer.as_bytes()).is_err() {
                        break;
                    }
                }
            });
        }
    });
    host
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}

fn main() {
    let refs = env("STORM_REFS", 1100);
    let limit = env("STORM_LIMIT", 20);
    let delay = Duration::from_millis(env("STORM_DELAY_MS", 50) as u64);
    let runs = env("STORM_RUNS", 3).max(1);
    let bin = env!("CARGO_BIN_EXE_imagegate");
    let mut results = Vec::new();
    for (label, extra) in [
        ("default flags (adaptive, ceiling 128)", vec![]),
        (
            "fixed width",
            vec!["--registry-concurrency".to_string(), limit.to_string()],
        ),
    ] {
        let mut times = Vec::new();
        let (mut refused, mut worst) = (0, 0);
        for _ in 0..runs {
            let seen = Arc::new(Seen::default());
            let host = storm_server(limit, delay, seen.clone());
            let w = Workdir::new();
            let images: Vec<String> = (0..refs)
                .map(|i| format!("{host}/storm/app{}:v{}", i % 100, i))
                .collect();
            for (i, chunk) in images.chunks(10).enumerate() {
                let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
                w.write(
                    &format!("m/d{i}.yaml"),
                    &deployment(&format!("d{i}"), &refs),
                );
            }
            let start = Instant::now();
            let out = Command::new(bin)
                .args([
                    "check",
                    "--all",
                    "--no-cache",
                    "--no-suggest",
                    "--deadline",
                    "300",
                ])
                .args(&extra)
                .arg("m")
                .current_dir(w.path())
                .env("DOCKER_CONFIG", &w.docker_config)
                .output()
                .unwrap();
            times.push(start.elapsed().as_secs_f64());
            assert_eq!(
                out.status.code(),
                Some(0),
                "every reference exists: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            refused = seen.refused.load(Ordering::SeqCst);
            worst = seen
                .streaks
                .lock()
                .unwrap()
                .values()
                .map(|s| s.1)
                .max()
                .unwrap_or(0);
        }
        let m = median(times.clone());
        println!(
            "{label}: median {m:.2} s over {runs} runs {times:.2?}; last run: {refused} refused, at most {worst} refusal(s) in a row for one request"
        );
        results.push(m);
    }
    println!(
        "429 storm ({refs} refs, refused above {limit} in flight, {} ms per answer): default / fixed width {limit} = {:.2}",
        delay.as_millis(),
        results[0] / results[1]
    );
}
