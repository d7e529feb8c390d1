//! Where imagegate may send a request. A reference, a mirror, a token realm or a redirect
//! can name any address, and imagegate runs in CI next to cloud metadata services; so every
//! request is checked before a byte is sent: link-local and cloud-metadata addresses are
//! never contacted, nor anything a trusted `--deny-destination` names. Names are checked on
//! the addresses they resolve to (by the HTTP client's resolver), literals before sending.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

/// Addresses no registry lives at: IPv4 link-local (169.254.169.254 is the metadata service
/// of AWS, GCP, Azure, OpenStack and more), IPv6 link-local, AWS's IPv6 metadata address,
/// Alibaba's metadata address, and "this network".
const DENIED_NETS: [&str; 5] = [
    "169.254.0.0/16",
    "fe80::/10",
    "fd00:ec2::254/128",
    "100.100.100.200/32",
    "0.0.0.0/8",
];

/// Names of metadata services.
const DENIED_NAMES: [&str; 5] = [
    "metadata.google.internal",
    "metadata.goog",
    "metadata",
    "instance-data",
    "instance-data.ec2.internal",
];

/// What `--deny-destination private` stands for: loopback and the private ranges.
const PRIVATE_NETS: [&str; 7] = [
    "127.0.0.0/8",
    "::1/128",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "fc00::/7",
];

/// The destinations a run may not contact.
#[derive(Debug, Clone)]
pub struct Destinations {
    nets: Vec<IpNet>,
    names: Vec<String>,
}

impl Default for Destinations {
    fn default() -> Destinations {
        Destinations::new(&[]).expect("the built-in list parses")
    }
}

impl Destinations {
    /// The built-in list plus trusted additions: a CIDR (`10.0.0.0/8`), an address, a host
    /// name, or `private` (loopback and the private ranges).
    pub fn new(extra: &[String]) -> Result<Destinations, String> {
        let mut nets: Vec<IpNet> = DENIED_NETS.iter().map(|n| n.parse().unwrap()).collect();
        let mut names: Vec<String> = DENIED_NAMES.iter().map(|n| n.to_string()).collect();
        for e in extra {
            let e = e.trim();
            if e.eq_ignore_ascii_case("private") {
                nets.extend(PRIVATE_NETS.iter().map(|n| n.parse::<IpNet>().unwrap()));
                names.push("localhost".into());
            } else if let Ok(net) = e.parse::<IpNet>() {
                nets.push(net);
            } else if let Ok(ip) = e.parse::<IpAddr>() {
                nets.push(IpNet::from(ip));
            } else if !e.is_empty()
                && e.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
            {
                names.push(e.trim_end_matches('.').to_ascii_lowercase());
            } else {
                return Err(format!(
                    "--deny-destination expects a CIDR, an address, a host name or `private`, got `{e}`"
                ));
            }
        }
        Ok(Destinations { nets, names })
    }

    /// Whether an address may not be contacted.
    pub fn denies_addr(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// Why a host (`name`, `name:port`, `1.2.3.4:5000`, `[::1]:5000`) may not be contacted,
    /// judged on its text; names are judged again on their addresses when they resolve.
    pub fn denies_host(&self, host: &str) -> Option<String> {
        let bare = strip_port(host);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return self
                .denies_addr(ip)
                .then(|| format!("{bare} is a link-local, metadata or denied address"));
        }
        let name = bare.trim_end_matches('.');
        // Without allocating: this runs for every reference of a run.
        let denied = |n: &String| {
            let (name, n) = (name.as_bytes(), n.as_bytes());
            name.eq_ignore_ascii_case(n)
                || n.contains(&b'.')
                    && name.len() > n.len()
                    && name[name.len() - n.len() - 1] == b'.'
                    && name[name.len() - n.len()..].eq_ignore_ascii_case(n)
        };
        self.names.iter().any(denied).then(|| {
            format!(
                "{} is a metadata service or a denied host",
                name.to_ascii_lowercase()
            )
        })
    }

    /// What a name resolved to (`found`), without denied addresses; an error when every
    /// address is denied. The one rule for imagegate's own requests ([`Resolver`]) and for
    /// the render engines' (`render/egress.rs`).
    pub fn allowed(&self, host: &str, found: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, String> {
        let any = !found.is_empty();
        let allowed: Vec<SocketAddr> = found
            .into_iter()
            .filter(|a| !self.denies_addr(a.ip()))
            .collect();
        if allowed.is_empty() && any {
            return Err(format!(
                "{host} resolves only to link-local, metadata or denied addresses"
            ));
        }
        Ok(allowed)
    }
}

/// A host without its port and IPv6 brackets.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.contains(':') => h,
        _ => host,
    }
}

/// Whether a resolved address is inside a private network (loopback, RFC 1918, CGNAT,
/// unique local): a registry outside one may not send imagegate into one.
pub fn is_internal(ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    PRIVATE_NETS
        .iter()
        .any(|n| n.parse::<IpNet>().is_ok_and(|n| n.contains(&ip)))
}

/// The HTTP client's name resolver: the system's answer without denied addresses. A name
/// that resolves only to denied addresses fails to connect, so a DNS name cannot smuggle a
/// metadata address past the check on literals.
#[derive(Debug, Clone)]
pub struct Resolver {
    pub destinations: Arc<Destinations>,
}

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let destinations = self.destinations.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            if let Some(why) = destinations.denies_host(&host) {
                return Err(why.into());
            }
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed = destinations.allowed(&host, found)?;
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_and_link_local_are_denied_loopback_is_not() {
        let d = Destinations::default();
        for host in [
            "169.254.169.254",
            "169.254.169.254:80",
            "[fd00:ec2::254]",
            "[fe80::1]:5000",
            "metadata.google.internal",
            "METADATA.GOOGLE.INTERNAL.",
            "100.100.100.200",
            "[::ffff:169.254.169.254]",
        ] {
            assert!(d.denies_host(host).is_some(), "{host}");
        }
        for host in [
            "127.0.0.1:5000",
            "[::1]:5000",
            "10.1.2.3",
            "ghcr.io",
            "registry.lan",
        ] {
            assert!(d.denies_host(host).is_none(), "{host}");
        }
        let private = Destinations::new(&["private".into(), "evil.example".into()]).unwrap();
        assert!(private.denies_host("127.0.0.1:5000").is_some());
        assert!(private.denies_host("10.1.2.3").is_some());
        assert!(private.denies_host("evil.example").is_some());
        assert!(private.denies_host("a.evil.example").is_some());
        assert!(private.denies_host("ghcr.io").is_none());
        assert!(Destinations::new(&["not a host!".into()]).is_err());
    }
}
