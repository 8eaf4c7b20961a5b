//! Reading the start of a request body before any upstream is contacted, so that the WAF can
//! refuse a request on its body while the app has seen nothing of it.
//!
//! pingora's `request_body_filter` runs only after the upstream connection is made, so the
//! body is read in `request_filter` instead and then handed on. pingora replays what was read
//! there from its retry buffer (64 KiB); when a read-ahead goes past that buffer, the proxy's
//! body filter replays it itself ([`Prefetched::take_replay`]). One rule keeps this exact: a
//! read that would overflow the retry buffer must never also finish the body, because pingora
//! sends nothing more once the body is done. So past 64 KiB only a body with a known length
//! is read further, and only while more than 64 KiB of it are still to come.

use bytes::{Bytes, BytesMut};
use pingora_core::Result;
use pingora_proxy::Session;

/// pingora's retry buffer (`BODY_BUF_LIMIT`), and the most one body read returns.
pub const RETRY_BUFFER: usize = 64 * 1024;

/// The body read ahead.
#[derive(Debug, Default)]
pub struct Prefetched {
    /// The bytes read (the whole body when `complete`).
    pub data: Bytes,
    /// The whole body was read.
    pub complete: bool,
    /// pingora's retry buffer overflowed: the proxy must put `data` back in front of the body.
    replay: bool,
}

impl Prefetched {
    /// The bytes the body filter must send before the first chunk it sees, once.
    pub fn take_replay(&mut self) -> Option<Bytes> {
        if std::mem::take(&mut self.replay) {
            Some(self.data.clone())
        } else {
            None
        }
    }
}

/// Whether another read may be made, given what has been read and the declared length.
pub fn may_read(read: usize, limit: usize, declared: Option<u64>) -> bool {
    if read >= limit {
        return false;
    }
    match declared {
        // Everything fits in the retry buffer: read on until the end.
        Some(len) if len as usize <= RETRY_BUFFER => true,
        // Past the buffer: only while no single read can reach the end.
        Some(len) => (len as usize).saturating_sub(read) > RETRY_BUFFER,
        // Unknown length (chunked): one read, which always fits the buffer.
        None => read == 0,
    }
}

/// Reads up to about `limit` bytes of the request body (see the module docs for the exact rule).
pub async fn prefetch(session: &mut Session, limit: usize, declared: Option<u64>) -> Result<Prefetched> {
    session.as_mut().enable_retry_buffering();
    let mut buf = BytesMut::new();
    let mut complete = session.as_mut().is_body_done();
    while !complete && may_read(buf.len(), limit, declared) {
        match session.as_mut().read_request_body().await? {
            Some(chunk) => buf.extend_from_slice(&chunk),
            None => complete = true,
        }
        complete = complete || session.as_mut().is_body_done();
    }
    let replay = session.as_ref().retry_buffer_truncated();
    Ok(Prefetched { data: buf.freeze(), complete, replay })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_bodies_are_read_whole() {
        assert!(may_read(0, 1000, Some(10)));
        assert!(may_read(9, 1000, Some(10)));
        assert!(may_read(60_000, 65_536, Some(65_536)));
        assert!(!may_read(1000, 1000, Some(5000)), "stops at the limit");
    }

    #[test]
    fn large_bodies_are_never_finished_by_an_overflowing_read() {
        let len = 200_000u64;
        let mut read = 0usize;
        // Whatever each read returns (at most RETRY_BUFFER), the body is never completed.
        while may_read(read, 64 * 1024, Some(len)) {
            read += RETRY_BUFFER;
            assert!((read as u64) < len);
        }
        assert!(may_read(0, 65_536, Some(70_000)), "70 000 > 64 KiB: the first read cannot finish it");
        assert!(!may_read(10_000, 65_536, Some(70_000)), "70 000 − 10 000 ≤ 64 KiB: a read could finish it");
    }

    #[test]
    fn chunked_bodies_get_one_read() {
        assert!(may_read(0, 65_536, None));
        assert!(!may_read(1, 65_536, None));
    }
}
