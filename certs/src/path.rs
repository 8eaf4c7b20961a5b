//! Path building: from the leaf through any order of supplied and stored intermediates up to a trust
//! anchor, depth first, yielding every candidate path (bounded) so validation can try the next one
//! when a path fails. Issuers are matched by name (byte-equal or case/space-insensitive attribute
//! comparison), preferring candidates whose subjectKeyIdentifier equals the authorityKeyIdentifier.

use crate::parse::{Certificate, DistinguishedName};

/// Maximum number of certificates in a path (leaf and anchor included).
pub const MAX_PATH_LEN: usize = 10;
/// Maximum number of complete candidate paths produced.
pub const MAX_CANDIDATES: usize = 16;

/// A candidate path: `certs[0]` is the leaf; the last element is the trust anchor when `complete`.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    /// Leaf first.
    pub certs: Vec<&'a Certificate>,
    /// Whether the last element is a trust anchor.
    pub complete: bool,
}

/// Whether two names are the same (RFC 5280 §7.1, simplified: byte equality, or equal attribute lists
/// after trimming, collapsing spaces and case folding).
pub fn names_match(a: &DistinguishedName, b: &DistinguishedName) -> bool {
    if a.raw == b.raw {
        return true;
    }
    if a.attributes.len() != b.attributes.len() || a.rdns.len() != b.rdns.len() {
        return false;
    }
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    a.attributes.iter().zip(&b.attributes).all(|((oa, va), (ob, vb))| oa == ob && norm(va) == norm(vb))
}

/// Builds candidate paths for `leaf`. Complete paths come first in discovery order; if none is
/// complete, the longest partial path is returned alone (for reporting).
pub fn build<'a>(
    leaf: &'a Certificate,
    supplied: &[&'a Certificate],
    intermediates: &[&'a Certificate],
    anchors: &[&'a Certificate],
) -> Vec<Candidate<'a>> {
    let mut out = Vec::new();
    let mut best_partial: Vec<&'a Certificate> = Vec::new();
    let mut path = vec![leaf];
    dfs(&mut path, supplied, intermediates, anchors, &mut out, &mut best_partial);
    if out.is_empty() {
        out.push(Candidate { certs: best_partial, complete: false });
    }
    out
}

fn dfs<'a>(
    path: &mut Vec<&'a Certificate>,
    supplied: &[&'a Certificate],
    intermediates: &[&'a Certificate],
    anchors: &[&'a Certificate],
    out: &mut Vec<Candidate<'a>>,
    best_partial: &mut Vec<&'a Certificate>,
) {
    if out.len() >= MAX_CANDIDATES {
        return;
    }
    let Some(&cur) = path.last() else { return };
    if path.len() > best_partial.len() {
        *best_partial = path.clone();
    }
    let (anchor_hits, hits) = {
        let issued_by = |c: &&'a Certificate| names_match(&c.subject, &cur.issuer) && !path.iter().any(|p| p.sha256 == c.sha256);
        let key_mismatch = |c: &&'a Certificate| match (&cur.authority_key_id, &c.subject_key_id) {
            (Some(a), Some(s)) => a != s,
            _ => false,
        };
        let mut anchor_hits: Vec<&'a Certificate> = anchors.iter().copied().filter(issued_by).collect();
        anchor_hits.sort_by_key(key_mismatch);
        let mut hits: Vec<&'a Certificate> = supplied
            .iter()
            .chain(intermediates)
            .copied()
            .filter(|c| issued_by(c) && !anchors.iter().any(|a| a.sha256 == c.sha256))
            .collect();
        hits.sort_by_key(key_mismatch);
        (anchor_hits, hits)
    };
    // Anchors first: the shortest path to trust wins.
    for a in anchor_hits {
        path.push(a);
        out.push(Candidate { certs: path.clone(), complete: true });
        path.pop();
        if out.len() >= MAX_CANDIDATES {
            return;
        }
    }
    if path.len() + 1 >= MAX_PATH_LEN {
        return;
    }
    let mut seen: Vec<[u8; 32]> = Vec::new();
    for c in hits {
        if seen.contains(&c.sha256) {
            continue;
        }
        seen.push(c.sha256);
        path.push(c);
        dfs(path, supplied, intermediates, anchors, out, best_partial);
        path.pop();
    }
}
