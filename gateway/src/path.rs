//! Path normalisation. pingora forwards the path as the client wrote it, so `/public/../admin`
//! would be routed as `/public` while the app serves `/admin`. The gateway routes, limits and
//! forwards the normalised path instead, and refuses paths that cannot be made safe.

use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path does not start with '/'")]
    NotAbsolute,
    #[error("the path contains a NUL byte, a backslash or a control character")]
    ForbiddenByte,
    #[error("the path climbs above the root")]
    AboveRoot,
}

/// Returns the normalised path: `%2e` decoded where it forms a dot segment, dot segments
/// resolved (RFC 3986 §5.2.4), and runs of `/` collapsed. Other escapes are left as they are.
pub fn normalize(path: &str) -> Result<Cow<'_, str>, PathError> {
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let lower = path.as_bytes();
    if lower.iter().any(|&b| b == b'\\' || b < 0x20 || b == 0x7f) || contains_ci(path, "%00") || contains_ci(path, "%5c") {
        return Err(PathError::ForbiddenByte);
    }
    let clean = !path.contains("//") && !path.split('/').any(is_dot_segment) && !path.contains('%');
    if clean {
        return Ok(Cow::Borrowed(path));
    }
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path[1..].split('/').collect();
    let last = segments.len().saturating_sub(1);
    let mut trailing_slash = false;
    for (i, seg) in segments.iter().enumerate() {
        match dot_kind(seg) {
            Some(1) => trailing_slash = i == last,
            Some(_) => {
                if out.pop().is_none() {
                    return Err(PathError::AboveRoot);
                }
                trailing_slash = i == last;
            }
            None if seg.is_empty() => trailing_slash = i == last,
            None => {
                out.push(seg);
                trailing_slash = false;
            }
        }
    }
    let mut s = String::with_capacity(path.len());
    for seg in &out {
        s.push('/');
        s.push_str(seg);
    }
    if out.is_empty() || trailing_slash {
        s.push('/');
    }
    Ok(Cow::Owned(s))
}

fn contains_ci(haystack: &str, needle: &str) -> bool {
    haystack.as_bytes().windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

fn is_dot_segment(seg: &str) -> bool {
    dot_kind(seg).is_some()
}

/// `Some(1)` for `.`, `Some(2)` for `..` (also when written with `%2e`).
fn dot_kind(seg: &str) -> Option<u8> {
    let mut dots = 0u8;
    let b = seg.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'.' {
            i += 1;
        } else if b.len() >= i + 3 && b[i] == b'%' && b[i + 1] == b'2' && (b[i + 2] == b'e' || b[i + 2] == b'E') {
            i += 3;
        } else {
            return None;
        }
        dots += 1;
        if dots > 2 {
            return None;
        }
    }
    (dots > 0).then_some(dots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_paths_are_borrowed() {
        assert!(matches!(normalize("/a/b.html"), Ok(Cow::Borrowed("/a/b.html"))));
        assert!(matches!(normalize("/"), Ok(Cow::Borrowed("/"))));
    }

    #[test]
    fn dot_segments_and_slashes_resolve() {
        assert_eq!(normalize("/public/../admin").unwrap(), "/admin");
        assert_eq!(normalize("/public/%2e%2E/admin").unwrap(), "/admin");
        assert_eq!(normalize("/a/./b/").unwrap(), "/a/b/");
        assert_eq!(normalize("//a///b").unwrap(), "/a/b");
        assert_eq!(normalize("/a/b/..").unwrap(), "/a/");
        assert_eq!(normalize("/a/...").unwrap(), "/a/...");
        assert_eq!(normalize("/a/%41").unwrap(), "/a/%41");
    }

    #[test]
    fn unsafe_paths_are_refused() {
        assert_eq!(normalize("/../etc/passwd"), Err(PathError::AboveRoot));
        assert_eq!(normalize("/a/%2e%2e/%2e%2e/b"), Err(PathError::AboveRoot));
        assert_eq!(normalize("/a\\..\\b"), Err(PathError::ForbiddenByte));
        assert_eq!(normalize("/a%00.php"), Err(PathError::ForbiddenByte));
        assert_eq!(normalize("/a%5c..%5cb"), Err(PathError::ForbiddenByte));
        assert_eq!(normalize("a/b"), Err(PathError::NotAbsolute));
    }
}
