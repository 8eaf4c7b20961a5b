//! `application/x-www-form-urlencoded` and query strings.

use super::Pairs;
use crate::transforms::url_decode;

/// Parses `a=1&b=2` into decoded pairs (`+` is a space, bad escapes kept).
pub fn parse(s: &[u8]) -> Pairs {
    let mut out = Vec::new();
    for part in s.split(|c| *c == b'&') {
        if part.is_empty() {
            continue;
        }
        let (k, v) = match part.iter().position(|c| *c == b'=') {
            Some(i) => (&part[..i], &part[i + 1..]),
            None => (part, &b""[..]),
        };
        out.push((url_decode(k, false), url_decode(v, false)));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses() {
        let p = super::parse(b"a=1&b=x+y%21&c&&d=%zz");
        assert_eq!(p.len(), 4);
        assert_eq!(p[1].1, b"x y!");
        assert_eq!(p[2].1, b"");
        assert_eq!(p[3].1, b"%zz");
    }
}
