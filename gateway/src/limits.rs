//! Size limits on the request head, checked before anything else looks at the request.

use govgate_policies::Limits;
use pingora_http::RequestHeader;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeadViolation {
    #[error("the URI is longer than the limit")]
    UriTooLong,
    #[error("more header lines than the limit")]
    TooManyHeaders,
    #[error("the header lines are larger than the limit")]
    HeadersTooLarge,
}

impl HeadViolation {
    pub fn status(self) -> u16 {
        match self {
            HeadViolation::UriTooLong => 414,
            HeadViolation::TooManyHeaders | HeadViolation::HeadersTooLarge => 431,
        }
    }
}

pub fn check_head(req: &RequestHeader, limits: &Limits) -> Result<(), HeadViolation> {
    let uri_len = req.uri.path_and_query().map(|p| p.as_str().len()).unwrap_or(0);
    if uri_len as u64 > limits.max_uri_bytes.0 {
        return Err(HeadViolation::UriTooLong);
    }
    if req.headers.len() > limits.max_header_count {
        return Err(HeadViolation::TooManyHeaders);
    }
    let bytes: usize = req.headers.iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    if bytes as u64 > limits.max_header_bytes.0 {
        return Err(HeadViolation::HeadersTooLarge);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use govgate_policies::ByteSize;

    #[test]
    fn each_limit_has_its_status() {
        let limits = Limits { max_uri_bytes: ByteSize(20), max_header_count: 2, max_header_bytes: ByteSize(300), ..Limits::default() };
        let mut req = RequestHeader::build("GET", b"/short", None).unwrap();
        req.insert_header("host", "a").unwrap();
        assert_eq!(check_head(&req, &limits), Ok(()));
        let long = RequestHeader::build("GET", b"/this/uri/is/far/too/long", None).unwrap();
        assert_eq!(check_head(&long, &limits).map_err(HeadViolation::status), Err(414));
        req.append_header("x-a", "1").unwrap();
        req.append_header("x-b", "2").unwrap();
        assert_eq!(check_head(&req, &limits), Err(HeadViolation::TooManyHeaders));
        let mut big = RequestHeader::build("GET", b"/", None).unwrap();
        big.insert_header("cookie", "x".repeat(400)).unwrap();
        assert_eq!(check_head(&big, &limits).map_err(HeadViolation::status), Err(431));
    }
}
