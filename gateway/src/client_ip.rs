//! Who the client is: the direct peer, or — only when that peer is a trusted proxy — the
//! right-most address in `X-Forwarded-For` that is not itself a trusted proxy.

use ipnet::IpNet;
use std::net::IpAddr;

/// The trusted-proxy list from the policy.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> Self {
        TrustedProxies(nets)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client address for a request from `peer` carrying `forwarded_for` header values.
    pub fn client_ip<'a>(&self, peer: IpAddr, forwarded_for: impl DoubleEndedIterator<Item = &'a str>) -> IpAddr {
        let peer = canonical(peer);
        if !self.contains(peer) {
            return peer;
        }
        let mut client = peer;
        // Walk from the right: each hop was added by the proxy to its right.
        for value in forwarded_for.rev() {
            for part in value.rsplit(',') {
                match parse_hop(part) {
                    Some(ip) => {
                        client = ip;
                        if !self.contains(ip) {
                            return ip;
                        }
                    }
                    // A garbled entry: trust nothing beyond it.
                    None => return client,
                }
            }
        }
        client
    }
}

/// IPv4-mapped IPv6 addresses are treated as the IPv4 address they carry.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

fn parse_hop(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    // "[2001:db8::1]:443" or "192.0.2.1:443"
    s.parse::<std::net::SocketAddr>().ok().map(|a| canonical(a.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_cannot_spoof() {
        let t = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
        assert_eq!(t.client_ip(ip("203.0.113.9"), ["1.2.3.4"].into_iter()), ip("203.0.113.9"));
    }

    #[test]
    fn trusted_chain_is_walked_from_the_right() {
        let t = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
        // client spoofed 6.6.6.6, real client 198.51.100.7, then two internal proxies
        let xff = ["6.6.6.6, 198.51.100.7", "10.1.1.1"];
        assert_eq!(t.client_ip(ip("10.2.2.2"), xff.into_iter()), ip("198.51.100.7"));
    }

    #[test]
    fn garbage_stops_the_walk() {
        let t = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
        assert_eq!(t.client_ip(ip("10.2.2.2"), ["1.1.1.1, junk"].into_iter()), ip("10.2.2.2"));
        assert_eq!(t.client_ip(ip("10.2.2.2"), ["[2001:db8::1]:443"].into_iter()), ip("2001:db8::1"));
    }

    #[test]
    fn mapped_ipv4_is_canonical() {
        let t = TrustedProxies::new(vec!["127.0.0.1/32".parse().unwrap()]);
        assert!(t.contains(ip("::ffff:127.0.0.1")));
    }
}
