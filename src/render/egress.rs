//! Where `--render`'s engines may reach (issue 15). kustomize fetches remote bases itself
//! (HTTP(S) GETs and `git fetch` of URLs the checked repository chooses), so while renders
//! run, a forward proxy on loopback ([`Proxy`]) applies imagegate's own destination rules
//! (`resolve/destinations.rs`) to every connection an engine asks for, and the engine runs
//! in an environment ([`child_env`]) that sends HTTP(S) through that proxy, lets git speak
//! only HTTP(S), and has an empty private home: no git config, credential helper, SSH key or
//! agent, and no kustomize plugin directory of the user's.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::resolve::destinations::Destinations;

/// The longest request head the proxy reads (request line and headers).
const MAX_HEAD: usize = 16 << 10;
/// How long a client may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long connecting to one address of the destination may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more are answered 503.
const MAX_CONNECTIONS: usize = 64;
/// Variables that point a child at the proxy: Go reads the first four (upper case first),
/// curl (git) the lower-case ones and `ALL_PROXY`.
const PROXY_VARS: [&str; 6] = [
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "https_proxy",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The egress of one run's renders: the proxy and the private home, published for
/// `process::run` ([`child_env`]) while this value lives.
pub struct Egress {
    id: u64,
    // Dropped after `drop` unpublishes them, in this order.
    _proxy: Proxy,
    _home: tempfile::TempDir,
}

/// What a child needs to know of the running egress.
struct Published {
    id: u64,
    proxy: String,
    home: PathBuf,
}

static ACTIVE: Mutex<Option<Published>> = Mutex::new(None);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn active() -> MutexGuard<'static, Option<Published>> {
    ACTIVE.lock().unwrap_or_else(|e| e.into_inner())
}

impl Egress {
    /// Starts the proxy with the run's destination rules and makes the private home.
    pub fn start(destinations: Arc<Destinations>) -> Result<Egress, String> {
        let home = tempfile::Builder::new()
            .prefix("imagegate-render-home-")
            .tempdir()
            .map_err(|e| format!("--render: cannot make the engines' home directory: {e}"))?;
        let proxy = Proxy::start(destinations)
            .map_err(|e| format!("--render: cannot start the engines' proxy on loopback: {e}"))?;
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        *active() = Some(Published {
            id,
            proxy: format!("http://{}", proxy.addr()),
            home: home.path().to_path_buf(),
        });
        Ok(Egress {
            id,
            _proxy: proxy,
            _home: home,
        })
    }
}

impl Drop for Egress {
    fn drop(&mut self) {
        let mut published = active();
        if published.as_ref().is_some_and(|p| p.id == self.id) {
            *published = None;
        }
    }
}

/// The variables an engine child gets on top of the few `process.rs` keeps: the proxy for
/// every scheme and no exceptions (Go still connects to loopback hosts directly, whatever
/// `NO_PROXY` says), git limited to HTTP(S) with no prompt, no system or global config and
/// no SSH, and the private home. `Err` when no [`Egress`] is running: an engine never runs
/// with a way out that the rules do not watch.
pub fn child_env() -> Result<Vec<(&'static str, OsString)>, String> {
    let published = active();
    let Some(p) = published.as_ref() else {
        return Err(
            "--render: the engines' proxy is not running, so the engine is not run".to_string(),
        );
    };
    let mut env: Vec<(&'static str, OsString)> = PROXY_VARS
        .iter()
        .map(|v| (*v, OsString::from(&p.proxy)))
        .collect();
    env.push(("NO_PROXY", OsString::new()));
    env.push(("no_proxy", OsString::new()));
    for (var, value) in [
        // `git fetch` (kustomize's remote bases, and submodules) over HTTP(S) only: no ssh,
        // git://, file:// or ext::; the proxy variables then cover all of it.
        ("GIT_ALLOW_PROTOCOL", "https:http"),
        ("GIT_TERMINAL_PROMPT", "0"),
        ("GIT_CONFIG_NOSYSTEM", "1"),
        ("GIT_CONFIG_GLOBAL", "/dev/null"),
        ("GIT_SSH_COMMAND", "false"),
    ] {
        env.push((var, OsString::from(value)));
    }
    env.push(("HOME", p.home.clone().into_os_string()));
    if cfg!(windows) {
        env.push(("USERPROFILE", p.home.clone().into_os_string()));
    }
    Ok(env)
}

/// A forward proxy on 127.0.0.1 that opens a connection only where imagegate's own
/// requests may go: `CONNECT host:port` is tunnelled (HTTPS), an absolute `http://` request
/// is forwarded with `Connection: close` and then relayed as it comes (plain HTTP carries
/// nothing of the run's, so it gets the same rules as HTTPS rather than a rule of its own).
/// A refusal is a 403 whose reason names the host and the rule, and a warning naming the
/// host and port, never the path or query. Dropping it stops it and closes its tunnels.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

struct Shared {
    destinations: Arc<Destinations>,
    stop: AtomicBool,
    live: AtomicUsize,
    /// The clients' sockets, to shut when the proxy stops.
    open: Mutex<HashMap<u64, TcpStream>>,
}

impl Proxy {
    /// Listens on an ephemeral port of 127.0.0.1 and serves on threads of its own.
    pub fn start(destinations: Arc<Destinations>) -> io::Result<Proxy> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            destinations,
            stop: AtomicBool::new(false),
            live: AtomicUsize::new(0),
            open: Mutex::new(HashMap::new()),
        });
        let for_thread = shared.clone();
        let accept = std::thread::Builder::new()
            .name("render-proxy".into())
            .spawn(move || accept_loop(listener, for_thread))?;
        Ok(Proxy {
            addr,
            shared,
            accept: Some(accept),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        // Only the accept thread registers clients, so none is added after this.
        let mut open = self.shared.open.lock().unwrap_or_else(|e| e.into_inner());
        for (_, s) in open.drain() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut next = 0u64;
    while !shared.stop.load(Ordering::SeqCst) {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Nothing waiting (the listener does not block, so that stopping is seen),
                // or out of descriptors: look again shortly.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if stream.set_nonblocking(false).is_err() {
            continue;
        }
        if shared.live.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            reply(
                &stream,
                503,
                "Service Unavailable",
                "imagegate: too many connections through the render proxy",
            );
            continue;
        }
        next += 1;
        let id = next;
        if let Ok(clone) = stream.try_clone() {
            lock(&shared.open).insert(id, clone);
        }
        shared.live.fetch_add(1, Ordering::SeqCst);
        let for_thread = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("render-proxy-conn".into())
            .spawn(move || {
                serve(&stream, &for_thread.destinations);
                lock(&for_thread.open).remove(&id);
                for_thread.live.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            // The stream went with the closure and is closed.
            lock(&shared.open).remove(&id);
            shared.live.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One client: its request, the rules, then a tunnel to the destination.
fn serve(client: &TcpStream, rules: &Destinations) {
    let _ = client.set_read_timeout(Some(HEAD_TIMEOUT));
    let (head, rest) = match read_head(client) {
        Ok(read) => read,
        Err(why) => return reply(client, 400, "Bad Request", &why),
    };
    let request = match Request::parse(&head) {
        Ok(r) => r,
        Err(why) => return reply(client, 400, "Bad Request", &why),
    };
    let shown = request.shown();
    let upstream = match connect(rules, &request.host, request.port) {
        Ok(s) => s,
        Err(Refused::Denied(why)) => {
            log::warn!("--render: refused the engine's connection to {shown}: {why}");
            let reason = format!("Forbidden by imagegate: {why}");
            return reply(client, 403, &reason, &format!("imagegate: {why}"));
        }
        Err(Refused::Failed(why)) => {
            log::debug!("--render: the engine's connection to {shown} failed: {why}");
            return reply(client, 502, "Bad Gateway", &format!("imagegate: {why}"));
        }
    };
    log::debug!("--render: the engine reaches {shown} through imagegate's proxy");
    let sent = match &request.forward {
        None => (&*client).write_all(b"HTTP/1.1 200 Connection established\r\n\r\n"),
        Some(head) => (&upstream).write_all(head),
    };
    if sent.and_then(|_| (&upstream).write_all(&rest)).is_err() {
        return;
    }
    let _ = client.set_read_timeout(None);
    tunnel(client, &upstream);
}

/// Reads up to the end of the request head; the bytes after it are the second value.
fn read_head(client: &TcpStream) -> Result<(Vec<u8>, Vec<u8>), String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok((buf, rest));
        }
        if buf.len() > MAX_HEAD {
            return Err(format!("the request head is longer than {MAX_HEAD} bytes"));
        }
        match (&*client).read(&mut chunk) {
            Ok(0) => return Err("the request ended before its head did".into()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("reading the request: {e}")),
        }
    }
}

/// A request the proxy serves: where to, and for plain HTTP the head to send there.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    host: String,
    port: u16,
    /// `None` for CONNECT.
    forward: Option<Vec<u8>>,
}

/// Hop-by-hop headers a forwarded request loses (it gets `Connection: close`).
const HOP_HEADERS: [&str; 5] = [
    "connection",
    "proxy-connection",
    "proxy-authorization",
    "proxy-authenticate",
    "keep-alive",
];

impl Request {
    fn parse(head: &[u8]) -> Result<Request, String> {
        let text = std::str::from_utf8(head).map_err(|_| "the request head is not text")?;
        let mut lines = text.split("\r\n");
        let first = lines.next().unwrap_or_default();
        let parts: Vec<&str> = first.split(' ').collect();
        let [method, target, version] = parts[..] else {
            return Err("a malformed request line".into());
        };
        if method.is_empty()
            || !method.bytes().all(|b| b.is_ascii_uppercase())
            || !matches!(version, "HTTP/1.0" | "HTTP/1.1")
        {
            return Err("a malformed request line".into());
        }
        if method == "CONNECT" {
            let (host, port) = authority(target, None)?;
            return Ok(Request {
                host,
                port,
                forward: None,
            });
        }
        let rest = match target.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case("http://") => &target[7..],
            _ => return Err("only CONNECT and absolute http:// requests are proxied".into()),
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (auth, path) = rest.split_at(end);
        let (host, port) = authority(auth, Some(80))?;
        let path = path.split('#').next().unwrap_or_default();
        let path = match path.starts_with('/') {
            true => path.to_string(),
            false => format!("/{path}"),
        };
        let mut out = format!("{method} {path} {version}\r\n");
        let mut has_host = false;
        for line in lines.take_while(|l| !l.is_empty()) {
            let name = line.split(':').next().unwrap_or_default().trim();
            let name = name.to_ascii_lowercase();
            if HOP_HEADERS.contains(&name.as_str()) {
                continue;
            }
            has_host |= name == "host";
            out.push_str(line);
            out.push_str("\r\n");
        }
        if !has_host {
            out.push_str(&format!("Host: {auth}\r\n"));
        }
        out.push_str("Connection: close\r\n\r\n");
        Ok(Request {
            host,
            port,
            forward: Some(out.into_bytes()),
        })
    }

    /// `host:port`, `[v6]:port`: what logs and messages name.
    fn shown(&self) -> String {
        shown(&self.host, self.port)
    }
}

fn shown(host: &str, port: u16) -> String {
    match host.contains(':') {
        true => format!("[{host}]:{port}"),
        false => format!("{host}:{port}"),
    }
}

/// The host (without brackets) and port of `host:port` or `[v6]:port`; `default` when the
/// port may be left out. A host is a name or an address, nothing else (no user info).
fn authority(text: &str, default: Option<u16>) -> Result<(String, u16), String> {
    let bad = || "a malformed host or port".to_string();
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or_else(bad)?;
        v6.parse::<Ipv6Addr>().map_err(|_| bad())?;
        match after {
            "" => (v6, None),
            _ => (v6, Some(after.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        let (host, port) = match text.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        };
        let plain = host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if host.is_empty() || host.len() > 253 || !plain {
            return Err(bad());
        }
        (host, port)
    };
    let port = match port {
        Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad)?,
        None => default.ok_or_else(bad)?,
    };
    Ok((host.to_ascii_lowercase(), port))
}

enum Refused {
    /// The destination rules refuse it.
    Denied(String),
    /// It could not be resolved or connected to.
    Failed(String),
}

/// Connects to `host:port` if the rules allow it: the host's text first (metadata names,
/// denied names and literal addresses), then every address it resolves to, as
/// `destinations::Resolver` does for imagegate's own requests.
fn connect(rules: &Destinations, host: &str, port: u16) -> Result<TcpStream, Refused> {
    let shown = shown(host, port);
    if let Some(why) = rules.denies_host(&shown) {
        return Err(Refused::Denied(why));
    }
    let found: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| Refused::Failed(format!("cannot resolve {host}: {e}")))?
        .collect();
    let allowed = rules.allowed(host, found).map_err(Refused::Denied)?;
    let mut last = format!("{host} has no address");
    for addr in allowed {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("cannot connect to {shown}: {e}"),
        }
    }
    Err(Refused::Failed(last))
}

/// Copies both ways until either side ends, then closes both.
fn tunnel(client: &TcpStream, upstream: &TcpStream) {
    let close = || {
        let _ = client.shutdown(Shutdown::Both);
        let _ = upstream.shutdown(Shutdown::Both);
    };
    std::thread::scope(|s| {
        let up = std::thread::Builder::new().spawn_scoped(s, || {
            let _ = io::copy(&mut &*client, &mut &*upstream);
            close();
        });
        if up.is_err() {
            return close();
        }
        let _ = io::copy(&mut &*upstream, &mut &*client);
        close();
    });
}

/// An answer of the proxy's own, after which the connection closes. The reason phrase is
/// one line of printable text (Go shows it as the error of a refused CONNECT).
fn reply(client: &TcpStream, code: u16, reason: &str, body: &str) {
    let reason: String = reason
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { ' ' })
        .take(200)
        .collect();
    let body = format!("{body}\n");
    let text = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = (&*client).write_all(text.as_bytes());
    let _ = client.shutdown(Shutdown::Write);
}

#[cfg(test)]
#[path = "egress_tests.rs"]
mod tests;
