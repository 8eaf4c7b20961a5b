//! The ban set the request path checks: every banned network as a range of 128-bit addresses
//! (IPv4 mapped into IPv6), merged and sorted, searched by binary search. An empty set costs
//! one atomic load. The set is rebuilt from the store every half second (every instance sees a
//! ban made through any of them) and at once after a ban through this instance's API.

use super::{ip_key, net_range, Ban};
use arc_swap::ArcSwap;
use std::net::IpAddr;
use std::sync::Arc;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct BanSet {
    /// Disjoint, sorted, inclusive ranges.
    ranges: Vec<(u128, u128)>,
}

impl BanSet {
    pub fn new<'a>(bans: impl IntoIterator<Item = &'a Ban>) -> Self {
        let mut ranges: Vec<(u128, u128)> = bans.into_iter().map(|b| net_range(&b.network)).collect();
        ranges.sort_unstable();
        let mut merged: Vec<(u128, u128)> = Vec::with_capacity(ranges.len());
        for (lo, hi) in ranges {
            match merged.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        BanSet { ranges: merged }
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        if self.ranges.is_empty() {
            return false;
        }
        let k = ip_key(ip);
        let i = self.ranges.partition_point(|&(lo, _)| lo <= k);
        i > 0 && k <= self.ranges[i - 1].1
    }
}

/// The current ban set, swapped atomically.
#[derive(Default)]
pub struct BanList {
    set: ArcSwap<BanSet>,
}

impl BanList {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.set.load().contains(ip)
    }

    pub fn replace(&self, bans: &[Ban]) {
        let next = BanSet::new(bans);
        if **self.set.load() != next {
            self.set.store(Arc::new(next));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ban(net: &str) -> Ban {
        Ban { network: net.parse().unwrap(), expires_ms: None, reason: String::new(), created_ms: 0, created_by: String::new() }
    }

    #[test]
    fn addresses_inside_banned_networks_are_found() {
        let set = BanSet::new(&[ban("203.0.113.0/24"), ban("203.0.113.7/32"), ban("198.51.100.9/32"), ban("2001:db8::/48")]);
        assert_eq!(set.ranges.len(), 3, "nested ranges merge");
        for ip in ["203.0.113.0", "203.0.113.255", "::ffff:203.0.113.9", "198.51.100.9", "2001:db8::1", "2001:db8:0:ffff::1"] {
            assert!(set.contains(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["203.0.112.255", "203.0.114.0", "198.51.100.8", "198.51.100.10", "2001:db9::1", "127.0.0.1", "::1"] {
            assert!(!set.contains(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn an_empty_list_bans_nobody_and_replacing_takes_effect() {
        let list = BanList::default();
        assert!(!list.contains("127.0.0.1".parse().unwrap()));
        list.replace(&[ban("127.0.0.1/32")]);
        assert!(list.contains("127.0.0.1".parse().unwrap()));
        list.replace(&[]);
        assert!(!list.contains("127.0.0.1".parse().unwrap()));
    }
}
