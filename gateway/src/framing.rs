//! Request framing checks that close request-smuggling gaps pingora leaves open: a request
//! whose body length could be read two ways is refused, never forwarded.

use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, Version};

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("both Content-Length and Transfer-Encoding are present")]
    LengthAndChunked,
    #[error("more than one Content-Length value")]
    DuplicateContentLength,
    #[error("Content-Length is not a decimal number")]
    InvalidContentLength,
    #[error("Transfer-Encoding other than a single \"chunked\"")]
    UnsupportedTransferEncoding,
    #[error("Transfer-Encoding on an HTTP/1.0 request")]
    ChunkedOnHttp10,
}

/// Checks the framing headers; `Ok(Some(n))` is a declared body length.
pub fn check(version: Version, headers: &HeaderMap) -> Result<Option<u64>, FramingError> {
    check_fields(version, headers.iter().map(|(k, v)| (k.as_str().as_bytes(), v.as_bytes())))
}

/// The header fields of a raw HTTP/1 request head, as the client sent them. pingora drops
/// `Content-Length` when `Transfer-Encoding` is present, so the raw head is the only place
/// where a CL.TE request can still be seen.
pub fn raw_fields(head: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    head.split(|&b| b == b'\n').skip(1).filter_map(|line| {
        let colon = line.iter().position(|&b| b == b':')?;
        Some((&line[..colon], line[colon + 1..].trim_ascii()))
    })
}

/// [`check`] over any sequence of (name, value) fields.
pub fn check_fields<'a>(version: Version, fields: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Result<Option<u64>, FramingError> {
    let (mut cl, mut cl_count, mut te, mut te_count) = (None, 0, None, 0);
    for (name, value) in fields {
        if name.eq_ignore_ascii_case(CONTENT_LENGTH.as_str().as_bytes()) {
            cl_count += 1;
            cl = Some(value);
        } else if name.eq_ignore_ascii_case(TRANSFER_ENCODING.as_str().as_bytes()) {
            te_count += 1;
            te = Some(value);
        }
    }
    if cl.is_some() && te.is_some() {
        return Err(FramingError::LengthAndChunked);
    }
    if cl.is_some() && te.is_some() {
        return Err(FramingError::LengthAndChunked);
    }
    if let Some(te) = te {
        if version == Version::HTTP_10 {
            return Err(FramingError::ChunkedOnHttp10);
        }
        let ok = te_count == 1 && te.trim_ascii().eq_ignore_ascii_case(b"chunked");
        if !ok {
            return Err(FramingError::UnsupportedTransferEncoding);
        }
        return Ok(None);
    }
    let Some(v) = cl else { return Ok(None) };
    if cl_count > 1 {
        return Err(FramingError::DuplicateContentLength);
    }
    if v.contains(&b',') {
        return Err(FramingError::DuplicateContentLength);
    }
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return Err(FramingError::InvalidContentLength);
    }
    std::str::from_utf8(v).ok().and_then(|s| s.parse().ok()).map(Some).ok_or(FramingError::InvalidContentLength)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        m
    }

    #[test]
    fn plain_requests_pass() {
        assert_eq!(check(Version::HTTP_11, &h(&[])), Ok(None));
        assert_eq!(check(Version::HTTP_11, &h(&[("content-length", "42")])), Ok(Some(42)));
        assert_eq!(check(Version::HTTP_11, &h(&[("transfer-encoding", "Chunked")])), Ok(None));
    }

    #[test]
    fn smuggling_shapes_are_refused() {
        use FramingError::*;
        let v = Version::HTTP_11;
        assert_eq!(check(v, &h(&[("content-length", "4"), ("transfer-encoding", "chunked")])), Err(LengthAndChunked));
        assert_eq!(check(v, &h(&[("content-length", "4"), ("content-length", "4")])), Err(DuplicateContentLength));
        assert_eq!(check(v, &h(&[("content-length", "4, 4")])), Err(DuplicateContentLength));
        assert_eq!(check(v, &h(&[("content-length", "+4")])), Err(InvalidContentLength));
        assert_eq!(check(v, &h(&[("content-length", "0x10")])), Err(InvalidContentLength));
        assert_eq!(check(v, &h(&[("content-length", "")])), Err(InvalidContentLength));
        assert_eq!(check(v, &h(&[("transfer-encoding", "chunked, identity")])), Err(UnsupportedTransferEncoding));
        assert_eq!(check(v, &h(&[("transfer-encoding", "xchunked")])), Err(UnsupportedTransferEncoding));
        assert_eq!(check(v, &h(&[("transfer-encoding", "chunked"), ("transfer-encoding", "chunked")])), Err(UnsupportedTransferEncoding));
        assert_eq!(check(Version::HTTP_10, &h(&[("transfer-encoding", "chunked")])), Err(ChunkedOnHttp10));
    }

    #[test]
    fn raw_head_reveals_what_the_parser_dropped() {
        let head = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\ntransfer-encoding:  chunked \r\n\r\n";
        let fields: Vec<_> = raw_fields(head).collect();
        assert_eq!(fields[1], (&b"Content-Length"[..], &b"4"[..]));
        assert_eq!(fields[2], (&b"transfer-encoding"[..], &b"chunked"[..]));
        assert_eq!(check_fields(Version::HTTP_11, raw_fields(head)), Err(FramingError::LengthAndChunked));
        let clean = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(check_fields(Version::HTTP_11, raw_fields(clean)), Ok(None));
    }
}
