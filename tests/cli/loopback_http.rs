//! A loopback HTTP/1.1 server for the tests' own scripted services (the token issuer, the
//! chart and release file servers, a remote-resource server): hyper with every connection on
//! its own task, so a client's idle keep-alive connections never hold up a new one.
//!
//! Why not tiny_http, which these services used before (issue 17): its worker pool can queue
//! a newly accepted connection behind a worker that then serves a kept-alive connection for
//! as long as the client keeps it, and it drops a handler's `Connection: close`. A token
//! request then went unanswered until imagegate's 15 s request timeout (the network
//! benchmark's "15 s stall"; `concurrent_keep_alive_clients_are_answered_at_once` below).

// The benchmarks include this file (through the harness) and use part of it.
#![allow(dead_code)]

use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};

/// One request as the handler sees it, body read.
pub struct Request {
    pub method: hyper::Method,
    /// Path and query, as sent.
    pub target: String,
    pub headers: hyper::HeaderMap,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The handler's answer.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
}

/// A running server; dropping it stops accepting and ends its connections.
pub struct Server {
    pub port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Keeps the server for the rest of the test process.
    pub fn detach(mut self) -> u16 {
        // A dropped sender would read as "stop": keep it for good.
        if let Some(stop) = self.stop.take() {
            std::mem::forget(stop);
        }
        self.thread.take();
        self.port
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Serves `handler` on `addr` (a loopback address, port 0 for a free one). The handler runs
/// off the connection tasks, so a slow one (file reads, signing) delays only its own answer.
pub fn serve<F>(addr: &str, handler: F) -> Server
where
    F: Fn(Request) -> Reply + Send + Sync + 'static,
{
    serve_on(std::net::TcpListener::bind(addr).unwrap(), handler)
}

/// `serve` on a listener the caller bound (to know its port before the handler exists).
pub fn serve_on<F>(listener: std::net::TcpListener, handler: F) -> Server
where
    F: Fn(Request) -> Reply + Send + Sync + 'static,
{
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let handler = Arc::new(handler);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(accept(listener, handler, stopped));
    });
    Server {
        port,
        stop: Some(stop),
        thread: Some(thread),
    }
}

async fn accept<F>(
    listener: std::net::TcpListener,
    handler: Arc<F>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) where
    F: Fn(Request) -> Reply + Send + Sync + 'static,
{
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            _ = &mut stopped => return,
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |request| answer(request, handler.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer<F>(
    request: hyper::Request<Incoming>,
    handler: Arc<F>,
) -> Result<hyper::Response<Full<Bytes>>, hyper::Error>
where
    F: Fn(Request) -> Reply + Send + Sync + 'static,
{
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes().to_vec();
    let request = Request {
        method: parts.method,
        target: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_string(), |p| p.to_string()),
        headers: parts.headers,
        body,
    };
    let reply = tokio::task::spawn_blocking(move || handler(request))
        .await
        .unwrap_or_else(|_| Reply::new(500, "the test's handler panicked"));
    let mut response = hyper::Response::builder().status(reply.status);
    for (name, value) in reply.headers {
        response = response.header(name, value);
    }
    Ok(response.body(Full::new(Bytes::from(reply.body))).unwrap())
}

/// Issue 17: ten clients at once on one keep-alive pool, forty times over, are all answered
/// well within the timeout. With tiny_http, 150 such rounds had 18 and then 1 request
/// unanswered after 3 s in two runs.
#[test]
fn concurrent_keep_alive_clients_are_answered_at_once() {
    let server = serve("127.0.0.1:0", |r| Reply::new(200, r.target));
    let url = format!("http://127.0.0.1:{}", server.port);
    for round in 0..40 {
        let client = reqwest::blocking::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .build()
            .unwrap();
        let answers: Vec<_> = (0..10)
            .map(|i| {
                let (client, url) = (client.clone(), format!("{url}/r{i}?round={round}"));
                std::thread::spawn(move || client.get(&url).send().and_then(|r| r.text()))
            })
            .collect();
        for (i, answer) in answers.into_iter().enumerate() {
            let body = answer.join().unwrap().unwrap_or_else(|e| {
                panic!("round {round}, client {i}: {e}");
            });
            assert_eq!(body, format!("/r{i}?round={round}"));
        }
    }
}
