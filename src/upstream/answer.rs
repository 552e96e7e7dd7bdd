//! An upstream's answer as the calls read it (issue 17): its status, the one header anything
//! reads (Bedrock's `x-amzn-errortype`, for its errors), and its body, read under a cap or as
//! a stream. Both transports give this one type, so the relay and the error mapping are one
//! code path: the fast path (`fast`) its own body without building an `http::HeaderMap` and
//! a boxed `ureq::Body` per call, ureq's answers converted ([`Response::of_ureq`]). A body
//! read fault is a `ureq::Error` either way (`super::map_fault` words it).

use super::fast::FastBody;
use std::io::{self, Read};

/// The header Bedrock names its errors in (`call::bedrock`).
pub const ERROR_TYPE: &str = "x-amzn-errortype";

/// Spare room in a whole body's vector: a request id (36 bytes) longer than the upstream's id.
const ID_ROOM: u64 = 64;

/// An upstream's answer: status, error type, body.
pub struct Response {
    status: u16,
    /// `x-amzn-errortype`, kept for an error status only (a success reads no header).
    error_type: Option<Box<str>>,
    body: Body,
}

/// An answer's body, not read yet.
pub struct Body(Inner);

enum Inner {
    Fast(FastBody),
    Ureq(ureq::Body),
}

/// An answer's body as a reader (a stream's).
pub struct BodyReader(ReaderInner);

enum ReaderInner {
    Fast(FastBody),
    Ureq(ureq::BodyReader<'static>),
}

impl Response {
    /// A fast-path answer (`error_type` only for an error status).
    pub(super) fn fast(status: u16, error_type: Option<Box<str>>, body: FastBody) -> Response {
        Response {
            status,
            error_type,
            body: Body(Inner::Fast(body)),
        }
    }

    /// ureq's answer, converted.
    pub fn of_ureq(resp: ureq::http::Response<ureq::Body>) -> Response {
        let status = resp.status().as_u16();
        let error_type = (status >= 400)
            .then(|| resp.headers().get(ERROR_TYPE)?.to_str().ok().map(Box::from))
            .flatten();
        Response {
            status,
            error_type,
            body: Body(Inner::Ureq(resp.into_body())),
        }
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    /// The answer's `x-amzn-errortype` when its status is an error's.
    pub fn error_type(&self) -> Option<&str> {
        self.error_type.as_deref()
    }

    pub fn into_body(self) -> Body {
        self.body
    }
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("error_type", &self.error_type)
            .finish_non_exhaustive()
    }
}

impl Body {
    /// The whole body, at most `cap` bytes: more is `BodyExceedsLimit` (as ureq's
    /// `limit(cap).read_to_vec()`, which ureq's bodies still go through).
    pub fn read_capped(self, cap: u64) -> Result<Vec<u8>, ureq::Error> {
        match self.0 {
            Inner::Ureq(mut b) => b.with_config().limit(cap).read_to_vec(),
            Inner::Fast(mut b) => {
                // The length when the answer gave one (else what came with the head), so
                // the vector is sized once, with room for the request id the relay puts in
                // place of the upstream's (`completion_id`); never more than the cap allows.
                let hint = b
                    .size_hint()
                    .saturating_add(ID_ROOM)
                    .min(cap.saturating_add(1));
                let mut out = Vec::with_capacity(usize::try_from(hint).unwrap_or(0));
                (&mut b)
                    .take(cap.saturating_add(1))
                    .read_to_end(&mut out)
                    .map_err(ureq::Error::from)?;
                if out.len() as u64 > cap {
                    return Err(ureq::Error::BodyExceedsLimit(cap));
                }
                Ok(out)
            }
        }
    }

    pub fn into_reader(self) -> BodyReader {
        BodyReader(match self.0 {
            Inner::Fast(b) => ReaderInner::Fast(b),
            Inner::Ureq(b) => ReaderInner::Ureq(b.into_reader()),
        })
    }
}

impl Read for BodyReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match &mut self.0 {
            ReaderInner::Fast(b) => b.read(out),
            ReaderInner::Ureq(b) => b.read(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ureq answer keeps its status and, for an error, its error type; its body is read
    /// under the cap as ureq reads it.
    #[test]
    fn ureq_answers_convert() {
        let resp = ureq::http::Response::builder()
            .status(400)
            .header(ERROR_TYPE, "ValidationException:x")
            .body(ureq::Body::builder().data("0123456789"))
            .expect("response");
        let r = Response::of_ureq(resp);
        assert_eq!(r.status(), 400);
        assert_eq!(r.error_type(), Some("ValidationException:x"));
        assert!(matches!(
            r.into_body().read_capped(9),
            Err(ureq::Error::BodyExceedsLimit(_))
        ));
        let resp = ureq::http::Response::builder()
            .status(200)
            .header(ERROR_TYPE, "ignored")
            .body(ureq::Body::builder().data("0123456789"))
            .expect("response");
        let r = Response::of_ureq(resp);
        assert_eq!((r.status(), r.error_type()), (200, None));
        assert_eq!(r.into_body().read_capped(10).expect("read"), b"0123456789");
    }
}
