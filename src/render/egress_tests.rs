//! The render proxy against real sockets on loopback (issue 15): what it tunnels, what it
//! refuses before connecting, how it forwards plain HTTP, that stopping it closes its
//! tunnels, and the environment a child gets while it runs.

use super::*;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;

fn rules(extra: &[&str]) -> Arc<Destinations> {
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    Arc::new(Destinations::new(&extra).unwrap())
}

/// Sends a request head to the proxy and returns the connection and the status line.
fn ask(proxy: &Proxy, head: &str) -> (TcpStream, String) {
    let s = TcpStream::connect(proxy.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    (&s).write_all(head.as_bytes()).unwrap();
    // Byte by byte, so that nothing after the line is read here.
    let mut line = Vec::new();
    let mut byte = [0u8];
    while line.last() != Some(&b'\n') && (&s).read(&mut byte).unwrap() == 1 {
        line.push(byte[0]);
    }
    (s, String::from_utf8(line).unwrap().trim_end().to_string())
}

fn connect_to(proxy: &Proxy, authority: &str) -> (TcpStream, String) {
    ask(
        proxy,
        &format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n"),
    )
}

/// A listener that counts the connections it accepts and echoes what they send.
fn echo(addr: &str) -> (SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind(addr).unwrap();
    let at = l.local_addr().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let counted = seen.clone();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            counted.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let _ = io::copy(&mut &s, &mut &s);
            });
        }
    });
    (at, seen)
}

#[test]
fn connect_is_tunnelled_to_an_allowed_destination() {
    let (at, seen) = echo("127.0.0.1:0");
    let proxy = Proxy::start(rules(&[])).unwrap();
    let (s, status) = connect_to(&proxy, &at.to_string());
    assert_eq!(status, "HTTP/1.1 200 Connection established");
    let mut r = BufReader::new(&s);
    let mut blank = String::new();
    r.read_line(&mut blank).unwrap();
    assert_eq!(blank, "\r\n");
    (&s).write_all(b"through the tunnel\n").unwrap();
    let mut back = String::new();
    r.read_line(&mut back).unwrap();
    assert_eq!(back, "through the tunnel\n");
    assert_eq!(seen.load(Ordering::SeqCst), 1);

    // Stopping the proxy closes the tunnel: the client reads the end.
    let started = std::time::Instant::now();
    drop(proxy);
    let mut rest = Vec::new();
    let end = r.read_to_end(&mut rest);
    assert!(
        matches!(end, Ok(0)) || end.is_err_and(|e| e.kind() == io::ErrorKind::ConnectionReset),
        "the tunnel stayed open"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Issue 15: metadata addresses and names, and a `--deny-destination` CIDR, are refused with
/// a 403 that names the host and the rule, and nothing connects to the destination; the CIDR
/// is matched on the address a name resolves to (`127.0.2`, which Go does not take for an
/// address, is 127.0.0.2 to the system's resolver).
#[test]
fn denied_destinations_are_refused_before_connecting() {
    let (at, seen) = echo("127.0.0.2:0");
    let port = at.port();
    let proxy = Proxy::start(rules(&["127.0.0.2/32"])).unwrap();
    for (authority, named) in [
        (format!("127.0.0.2:{port}"), "127.0.0.2"),
        (format!("127.0.2:{port}"), "127.0.2"),
        ("169.254.169.254:443".into(), "169.254.169.254"),
        ("[fd00:ec2::254]:443".into(), "fd00:ec2::254"),
        (
            "metadata.google.internal:80".into(),
            "metadata.google.internal",
        ),
    ] {
        let (s, status) = connect_to(&proxy, &authority);
        assert!(
            status.starts_with("HTTP/1.1 403 Forbidden by imagegate: ") && status.contains(named),
            "{authority}: {status}"
        );
        let mut rest = String::new();
        BufReader::new(&s).read_to_string(&mut rest).unwrap();
        assert!(rest.contains(&format!("imagegate: {named}")), "{rest}");
    }
    // A plain HTTP request to a denied host is refused the same way, path unseen.
    let (_, status) = ask(
        &proxy,
        &format!("GET http://127.0.2:{port}/latest/meta-data/?secret=1 HTTP/1.1\r\n\r\n"),
    );
    assert!(status.starts_with("HTTP/1.1 403 "), "{status}");
    assert!(!status.contains("meta-data") && !status.contains("secret"));
    assert_eq!(
        seen.load(Ordering::SeqCst),
        0,
        "a denied destination was contacted"
    );
    // Without the rule, the same name reaches the listener.
    let open = Proxy::start(rules(&[])).unwrap();
    let (_, status) = connect_to(&open, &format!("127.0.2:{port}"));
    assert_eq!(status, "HTTP/1.1 200 Connection established");
    // The listener counts on its own thread: give it a moment under load.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while seen.load(Ordering::SeqCst) == 0 && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(seen.load(Ordering::SeqCst), 1);
}

/// Plain HTTP goes to the origin in origin form, without the proxy's headers and with
/// `Connection: close`; the answer comes back as the origin sent it.
#[test]
fn plain_http_is_forwarded_in_origin_form() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let at = l.local_addr().unwrap();
    let origin = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        let (head, _) = read_head(&s).unwrap();
        (&s).write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
            .unwrap();
        String::from_utf8(head).unwrap()
    });
    let proxy = Proxy::start(rules(&[])).unwrap();
    let (s, status) = ask(
        &proxy,
        &format!(
            "GET http://{at}/base/deploy.yaml?ref=v1 HTTP/1.1\r\nHost: {at}\r\nProxy-Authorization: Basic eDp5\r\nProxy-Connection: keep-alive\r\nAccept: */*\r\n\r\n"
        ),
    );
    assert_eq!(status, "HTTP/1.1 200 OK");
    let mut rest = String::new();
    BufReader::new(&s).read_to_string(&mut rest).unwrap();
    assert!(rest.ends_with("\r\n\r\nok\n"), "{rest}");
    let head = origin.join().unwrap();
    assert_eq!(
        head,
        format!(
            "GET /base/deploy.yaml?ref=v1 HTTP/1.1\r\nHost: {at}\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        )
    );
}

#[test]
fn requests_are_parsed_strictly() {
    let connect = Request::parse(b"CONNECT [::1]:443 HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!((connect.host.as_str(), connect.port), ("::1", 443));
    assert_eq!(connect.shown(), "[::1]:443");
    let get = Request::parse(b"GET http://Example.COM?x HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!((get.host.as_str(), get.port), ("example.com", 80));
    assert_eq!(
        String::from_utf8(get.forward.unwrap()).unwrap(),
        "GET /?x HTTP/1.0\r\nHost: Example.COM\r\nConnection: close\r\n\r\n"
    );
    for bad in [
        "CONNECT example.com HTTP/1.1",
        "CONNECT a:b:443 HTTP/1.1",
        "CONNECT example.com:0 HTTP/1.1",
        "CONNECT [::1 HTTP/1.1",
        "CONNECT ex ample.com:443 HTTP/1.1",
        "GET /relative HTTP/1.1",
        "GET https://example.com/ HTTP/1.1",
        "GET http://user:pw@example.com/ HTTP/1.1",
        "GET http://exa%6dple.com/ HTTP/1.1",
        "get http://example.com/ HTTP/1.1",
        "GET http://example.com/ SPDY/3",
        "",
    ] {
        assert!(
            Request::parse(format!("{bad}\r\n\r\n").as_bytes()).is_err(),
            "{bad}"
        );
    }
    // A head that never ends, and one too long, are refused.
    let proxy = Proxy::start(rules(&[])).unwrap();
    let (_, status) = ask(
        &proxy,
        &format!("GET http://x/{} HTTP/1.1\r\n", "a".repeat(20000)),
    );
    assert!(status.starts_with("HTTP/1.1 400 "), "{status}");
    let (_, status) = ask(&proxy, "BREW coffee HTCPCP/1.0\r\n\r\n");
    assert!(status.starts_with("HTTP/1.1 400 "), "{status}");
}

/// A child gets the proxy, git's limits and a private empty home only while an egress runs;
/// without one, no engine runs.
#[test]
fn the_child_environment_exists_only_while_the_egress_runs() {
    assert!(child_env().is_err());
    let egress = Egress::start(rules(&[])).unwrap();
    let env: HashMap<&str, OsString> = child_env().unwrap().into_iter().collect();
    let proxy = env["HTTPS_PROXY"].to_str().unwrap().to_string();
    assert!(proxy.starts_with("http://127.0.0.1:"), "{proxy}");
    for var in PROXY_VARS {
        assert_eq!(env[var], *proxy, "{var}");
    }
    assert_eq!(env["NO_PROXY"], "");
    assert_eq!(env["no_proxy"], "");
    assert_eq!(env["GIT_ALLOW_PROTOCOL"], "https:http");
    assert_eq!(env["GIT_SSH_COMMAND"], "false");
    assert_eq!(env["GIT_CONFIG_GLOBAL"], "/dev/null");
    assert_eq!(env["GIT_CONFIG_NOSYSTEM"], "1");
    assert_eq!(env["GIT_TERMINAL_PROMPT"], "0");
    let home = PathBuf::from(&env["HOME"]);
    assert_ne!(Some(home.as_os_str()), std::env::var_os("HOME").as_deref());
    assert_eq!(std::fs::read_dir(&home).unwrap().count(), 0);
    assert!(!env.contains_key("SSH_AUTH_SOCK"));
    // The proxy answers while the egress lives.
    let addr = proxy.trim_start_matches("http://");
    assert!(TcpStream::connect(addr).is_ok());
    drop(egress);
    assert!(child_env().is_err());
    assert!(!home.exists(), "the private home outlived the renders");
}
