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
    let mut lengths = headers.get_all(CONTENT_LENGTH).iter();
    let mut encodings = headers.get_all(TRANSFER_ENCODING).iter();
    let cl = lengths.next();
    let te = encodings.next();
    if cl.is_some() && te.is_some() {
        return Err(FramingError::LengthAndChunked);
    }
    if let Some(te) = te {
        if version == Version::HTTP_10 {
            return Err(FramingError::ChunkedOnHttp10);
        }
        let ok = encodings.next().is_none() && te.to_str().is_ok_and(|v| v.trim().eq_ignore_ascii_case("chunked"));
        if !ok {
            return Err(FramingError::UnsupportedTransferEncoding);
        }
        return Ok(None);
    }
    let Some(cl) = cl else { return Ok(None) };
    if lengths.next().is_some() {
        return Err(FramingError::DuplicateContentLength);
    }
    let v = cl.as_bytes();
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
}
