//! A scripted loopback HTTP server for the resolve layers' unit tests: it answers each
//! request with what the test's closure says and records every request head. Real registry
//! behaviour is tested against the real registry in tests/cli; this only drives one layer.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Options;
use super::hosts::Registries;

pub struct Server {
    pub host: String,
    pub seen: Arc<Mutex<Vec<String>>>,
}

/// An HTTP/1.1 answer.
pub fn reply(status: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut s = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    s + "\r\n" + body
}

impl Server {
    /// Answers `answer(path, head)` to every request.
    pub fn start(answer: impl Fn(&str, &str) -> String + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (answer, log) = (Arc::new(answer), seen.clone());
        std::thread::spawn(move || {
            for mut stream in listener.incoming().map_while(Result::ok) {
                let (answer, log) = (answer.clone(), log.clone());
                std::thread::spawn(move || {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&buf).into_owned();
                    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                    log.lock().unwrap().push(head.clone());
                    let _ = stream.write_all(answer(&path, &head).as_bytes());
                });
            }
        });
        Server { host, seen }
    }

    /// How many requests went to a path that contains `part`.
    pub fn count(&self, part: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.lines().next().is_some_and(|l| l.contains(part)))
            .count()
    }
}

/// Options for a test run: short timeouts, no config.
pub fn options() -> Options {
    Options {
        concurrency: 8,
        per_registry: 8,
        timeout: Duration::from_secs(5),
        deadline: tokio::time::Instant::now() + Duration::from_secs(30),
        deadline_secs: 30,
        registries: Arc::new(Registries::default()),
    }
}
