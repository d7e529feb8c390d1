//! Unit tests of `transport.rs`, kept beside it so the module itself stays short.
use super::super::scripted::{Server, options, reply};
use super::*;
use reqwest::header::{HeaderMap, HeaderValue};

#[tokio::test]
async fn send_retries_a_503_and_counts_the_retry() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let server = Server::start(move |_, _| {
        if counted.fetch_add(1, Ordering::SeqCst) == 0 {
            reply("503 Service Unavailable", &[("Retry-After", "0")], "")
        } else {
            reply("200 OK", &[], "")
        }
    });
    let t = Transport::new(options()).unwrap();
    let host = t.host(&server.host);
    let url = format!("{}/v2/", host.base());
    let http = host.http().unwrap().clone();
    let response = t
        .send(&host, &t.stats.pings, false, || http.get(&url))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(t.counts().pings, 2, "the first answer was retried");
    assert_eq!(t.counts().retries, 1);
}

#[tokio::test]
async fn a_denied_destination_is_refused_before_sending() {
    let t = Transport::new(options()).unwrap();
    let host = t.host("169.254.169.254");
    let http = host.http().unwrap().clone();
    let sent = t
        .send(&host, &t.stats.heads, false, || {
            http.head("http://169.254.169.254/v2/")
        })
        .await;
    assert!(matches!(sent, Err(Resolution::Refused(_))), "{sent:?}");
    assert_eq!(t.counts().heads, 0, "nothing was sent");
}

#[tokio::test]
async fn one_state_per_host_and_plain_http_on_loopback() {
    let t = Transport::new(options()).unwrap();
    let a = t.host("127.0.0.1:5000");
    let b = t.host("127.0.0.1:5000");
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(a.base(), "http://127.0.0.1:5000");
    assert_eq!(t.host("ghcr.io").base(), "https://ghcr.io");
    assert_eq!(t.host("docker.io").base(), "https://registry-1.docker.io");
}

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, HeaderValue::from_static(v));
    }
    h
}

#[test]
fn rate_limit_headers_in_their_forms() {
    // Docker Hub: the window rides on the value.
    assert_eq!(
        rate_limit(&headers(&[
            ("ratelimit-limit", "100;w=21600"),
            ("ratelimit-remaining", "76;w=21600")
        ])),
        Some((76, Some(21600)))
    );
    assert_eq!(
        rate_limit(&headers(&[
            ("ratelimit-remaining", "3"),
            ("ratelimit-reset", "20")
        ])),
        Some((3, Some(20)))
    );
    assert_eq!(
        rate_limit(&headers(&[("ratelimit", "limit=10, remaining=0, reset=5")])),
        Some((0, Some(5)))
    );
    assert_eq!(
        rate_limit(&headers(&[("ratelimit-remaining", "lots")])),
        None
    );
    assert_eq!(rate_limit(&HeaderMap::new()), None);
}
