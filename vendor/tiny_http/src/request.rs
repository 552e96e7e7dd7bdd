use std::io::Error as IoError;
use std::io::{self, Cursor, ErrorKind, Read, Write};

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use std::sync::mpsc::Sender;

use crate::limits::ConnState;
use crate::util::{ChunkedReader, EqualReader, FusedReader};
use crate::{HTTPVersion, Header, HeaderFields, Method, Response, StatusCode};
use std::sync::{Arc, OnceLock};

/// Represents an HTTP request made by a client.
///
/// A `Request` object is what is produced by the server, and is your what
/// your code must analyse and answer.
///
/// This object implements the `Send` trait, therefore you can dispatch your requests to
/// worker threads.
///
/// # Pipelining
///
/// If a client sends multiple requests in a row (without waiting for the response), then you will
/// get multiple `Request` objects simultaneously. This is called *requests pipelining*.
/// Tiny-http automatically reorders the responses so that you don't need to worry about the order
/// in which you call `respond` or `into_writer`.
///
/// This mechanic is disabled if:
///
///  - The body of a request is large enough (handling requires pipelining requires storing the
///    body of the request in a buffer ; if the body is too big, tiny-http will avoid doing that)
///  - A request sends a `Expect: 100-continue` header (which means that the client waits to
///    know whether its body will be processed before sending it)
///  - A request sends a `Connection: close` header or `Connection: upgrade` header (used for
///    websockets), which indicates that this is the last request that will be received on this
///    connection
///
/// # Automatic cleanup
///
/// If a `Request` object is destroyed without `into_writer` or `respond` being called,
/// an empty response with a 500 status code (internal server error) will automatically be
/// sent back to the client.
/// This means that if your code fails during the handling of a request, this "internal server
/// error" response will automatically be sent during the stack unwinding.
///
/// # Testing
///
/// If you want to build fake requests to test your server, use [`TestRequest`](crate::test::TestRequest).
pub struct Request {
    // where to read the body from
    data_reader: Option<Box<dyn Read + Send + 'static>>,

    // if this writer is empty, then the request has been answered
    response_writer: Option<Box<dyn Write + Send + 'static>>,

    remote_addr: Option<SocketAddr>,

    // true if HTTPS, false if HTTP
    secure: bool,

    method: Method,

    path: String,

    http_version: HTTPVersion,

    // litegate patch L (issue 17, round 4): the header fields as spans into one buffer
    // (`HeaderFields`), and the `Header`s of `headers()` built from them on first use only.
    fields: HeaderFields,
    headers: OnceLock<Vec<Header>>,

    body_length: Option<usize>,

    // litegate patch (issue 17, round 3): the body is chunked (from the framing, so that
    // `has_body` needs no header after `take_head` moved them out).
    chunked: bool,

    // true if a `100 Continue` response must be sent when `as_reader()` is called
    must_send_continue: bool,

    // If Some, a message must be sent after responding
    notify_when_responded: Option<Sender<()>>,

    // litegate patch: the connection's shared state (deadline, unread body, must close).
    state: Option<Arc<ConnState>>,
}

struct NotifyOnDrop<R> {
    sender: Sender<()>,
    inner: R,
}

impl<R: Read> Read for NotifyOnDrop<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}
impl<R: Write> Write for NotifyOnDrop<R> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
impl<R> Drop for NotifyOnDrop<R> {
    fn drop(&mut self) {
        self.sender.send(()).unwrap();
    }
}

/// Error that can happen when building a `Request` object.
#[derive(Debug)]
pub enum RequestCreationError {
    /// The client sent an `Expect` header that was not recognized by tiny-http.
    ExpectationFailed,

    /// Error while reading data from the socket during the creation of the `Request`.
    CreationIoError(IoError),

    /// litegate patch: the body's framing is ambiguous or invalid (400, connection closed).
    BadFraming(&'static str),
}

impl From<IoError> for RequestCreationError {
    fn from(err: IoError) -> RequestCreationError {
        RequestCreationError::CreationIoError(err)
    }
}

/// litegate patch: how the body is delimited, from `Content-Length` / `Transfer-Encoding`,
/// refusing every ambiguous form (request smuggling needs two parsers to disagree on it):
/// more than one `Content-Length` (even equal ones: no client we serve sends that), a length
/// that is not plain digits or overflows, both headers together, a transfer coding other than
/// exactly `chunked` (also a list, or `Transfer-Encoding` twice), and chunked in HTTP/1.0.
enum Framing {
    None,
    Length(usize),
    Chunked,
}

fn framing(headers: &HeaderFields, version: &HTTPVersion) -> Result<Framing, &'static str> {
    // litegate patch L: two looks at the fields' offsets (`get_all` compares a name only
    // when its length matches), the same refusals in the same order as one pass before.
    let mut lengths = headers.get_all("Content-Length");
    let mut codings = headers.get_all("Transfer-Encoding");
    let (length, coding) = (lengths.next(), codings.next());
    let (two_lengths, two_codings) = (lengths.next().is_some(), codings.next().is_some());
    if two_lengths || two_codings {
        // The first duplicate in the head is the one refused, as before.
        let first_dup = |name: &'static str| {
            headers
                .iter()
                .enumerate()
                .filter(|(_, (k, _))| k.eq_ignore_ascii_case(name))
                .nth(1)
                .map_or(usize::MAX, |(i, _)| i)
        };
        return Err(
            if first_dup("Content-Length") < first_dup("Transfer-Encoding") {
                "more than one Content-Length header"
            } else {
                "more than one Transfer-Encoding header"
            },
        );
    }
    match (length, coding) {
        (Some(_), Some(_)) => Err("Content-Length and Transfer-Encoding together"),
        (Some(v), None) => {
            let v = v.trim_matches(|c| c == ' ' || c == '\t');
            if v.is_empty() || v.len() > 19 || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err("invalid Content-Length");
            }
            v.parse::<u64>()
                .ok()
                .and_then(|n| std::convert::TryFrom::try_from(n).ok())
                .map(Framing::Length)
                .ok_or("invalid Content-Length")
        }
        (None, Some(v)) => {
            if *version < HTTPVersion(1, 1) {
                Err("Transfer-Encoding in an HTTP/1.0 request")
            } else if v
                .trim_matches(|c| c == ' ' || c == '\t')
                .eq_ignore_ascii_case("chunked")
            {
                Ok(Framing::Chunked)
            } else {
                Err("unsupported Transfer-Encoding (only `chunked` is accepted)")
            }
        }
        (None, None) => Ok(Framing::None),
    }
}

/// Builds a new request.
///
/// After the request line and headers have been read from the socket, a new `Request` object
/// is built.
///
/// You must pass a `Read` that will allow the `Request` object to read from the incoming data.
/// It is the responsibility of the `Request` to read only the data of the request and not further.
///
/// The `Write` object will be used by the `Request` to write the response.
#[allow(clippy::too_many_arguments)]
pub fn new_request<R, W>(
    secure: bool,
    method: Method,
    path: String,
    version: HTTPVersion,
    headers: Vec<Header>,
    remote_addr: Option<SocketAddr>,
    source_data: R,
    writer: W,
) -> Result<Request, RequestCreationError>
where
    R: Read + Send + 'static,
    W: Write + Send + 'static,
{
    // litegate patch L: the fields as spans (see `HeaderFields`).
    let fields = headers
        .iter()
        .map(|h| (h.field.as_str().as_str(), h.value.as_str()))
        .collect();
    new_request_with_state(
        secure,
        method,
        path,
        version,
        fields,
        remote_addr,
        source_data,
        writer,
        None,
    )
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn new_request_with_state<R, W>(
    secure: bool,
    method: Method,
    path: String,
    version: HTTPVersion,
    headers: HeaderFields,
    remote_addr: Option<SocketAddr>,
    mut source_data: R,
    writer: W,
    state: Option<Arc<ConnState>>,
) -> Result<Request, RequestCreationError>
where
    R: Read + Send + 'static,
    W: Write + Send + 'static,
{
    let framing = framing(&headers, &version).map_err(RequestCreationError::BadFraming)?;
    let content_length = match framing {
        Framing::Length(n) => Some(n),
        _ => None,
    };

    // true if the client sent a `Expect: 100-continue` header
    let expects_continue = {
        match headers.get("Expect") {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("100-continue") => true,
            _ => return Err(RequestCreationError::ExpectationFailed),
        }
    };

    // litegate patch: the body is always delimited by its framing (upstream handed the whole
    // stream to a `Connection: upgrade` request; we serve no upgrades).
    let has_body = !matches!(framing, Framing::None | Framing::Length(0));
    let reader = match framing {
        Framing::None | Framing::Length(0) => Box::new(io::empty()) as Box<dyn Read + Send + 'static>,
        Framing::Length(content_length) if content_length <= 1024 && !expects_continue => {
            // if the content-length is small enough, we just read everything into a buffer
            // (at most 1 KiB: the allocation is bounded whatever the client declares)
            let mut buffer = vec![0; content_length];
            let mut offset = 0;

            while offset != content_length {
                let read = source_data.read(&mut buffer[offset..])?;
                if read == 0 {
                    // the socket returned EOF, but we were before the expected content-length
                    // aborting
                    let info = "Connection has been closed before we received enough data";
                    let err = IoError::new(ErrorKind::ConnectionAborted, info);
                    return Err(RequestCreationError::CreationIoError(err));
                }

                offset += read;
            }

            Box::new(Cursor::new(buffer)) as Box<dyn Read + Send + 'static>
        }
        Framing::Length(content_length) => {
            let (data_reader, _) = EqualReader::new(source_data, content_length);
            let data_reader = match &state {
                Some(s) => data_reader.with_state(s.clone()),
                None => data_reader,
            };
            Box::new(FusedReader::new(data_reader)) as Box<dyn Read + Send + 'static>
        }
        Framing::Chunked => Box::new(FusedReader::new(ChunkedReader::new(
            source_data,
            state.clone(),
        ))) as Box<dyn Read + Send + 'static>,
    };

    Ok(Request {
        data_reader: Some(reader),
        response_writer: Some(Box::new(writer) as Box<dyn Write + Send + 'static>),
        remote_addr,
        secure,
        method,
        path,
        http_version: version,
        fields: headers,
        headers: OnceLock::new(),
        body_length: content_length,
        chunked: matches!(framing, Framing::Chunked),
        must_send_continue: expects_continue && has_body,
        notify_when_responded: None,
        state,
    })
}

impl Request {
    /// Returns true if the request was made through HTTPS.
    #[inline]
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// Returns the method requested by the client (eg. `GET`, `POST`, etc.).
    #[inline]
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// Returns the resource requested by the client.
    #[inline]
    pub fn url(&self) -> &str {
        &self.path
    }

    /// Returns a list of all headers sent by the client.
    #[inline]
    pub fn headers(&self) -> &[Header] {
        // litegate patch L: built from the fields on first use (the fork reads `fields`).
        self.headers.get_or_init(|| {
            self.fields
                .iter()
                .filter_map(|(k, v)| Header::from_bytes(k.as_bytes(), v.as_bytes()).ok())
                .collect()
        })
    }

    /// litegate patch L (issue 17, round 4): the header fields, names as sent, values
    /// trimmed, in order (no `Header` built).
    pub fn fields(&self) -> &HeaderFields {
        &self.fields
    }

    /// Returns the HTTP version of the request.
    #[inline]
    pub fn http_version(&self) -> &HTTPVersion {
        &self.http_version
    }

    /// Returns the length of the body in bytes.
    ///
    /// Returns `None` if the length is unknown.
    #[inline]
    pub fn body_length(&self) -> Option<usize> {
        self.body_length
    }

    /// litegate patch: the connection closes after this request's response (e.g. a refusal
    /// sent without reading the body). The response should say `Connection: close`.
    pub fn close_connection(&self) {
        if let Some(s) = &self.state {
            s.close();
        }
    }

    /// litegate patch: the client waits for `100 Continue` before it sends the body, and the
    /// body has not been asked for yet.
    pub fn expects_continue(&self) -> bool {
        self.must_send_continue
    }

    /// litegate patch: true when a body follows the head (a length > 0 or chunked).
    pub fn has_body(&self) -> bool {
        self.must_send_continue || self.body_length.map_or(self.is_chunked(), |n| n > 0)
    }

    fn is_chunked(&self) -> bool {
        // litegate patch: the framing says it (strict framing: a `Transfer-Encoding` header
        // is chunked or the request was refused), so no header is needed here.
        self.chunked
    }

    /// litegate patch (issue 17, rounds 3 and 4): moves the request target and the header
    /// fields out without copying them. Afterwards `url()` is empty and `fields()` and
    /// `headers()` hold only the first `TE` header (a copy), which the response still
    /// consults to choose its transfer coding; the body's framing was settled when the
    /// request was created.
    pub fn take_head(&mut self) -> (String, HeaderFields) {
        let mut kept = HeaderFields::new();
        if let Some(te) = self.fields.get("TE") {
            kept.push("TE", te);
        }
        let fields = std::mem::replace(&mut self.fields, kept);
        self.headers = OnceLock::new();
        let path = std::mem::take(&mut self.path);
        (path, fields)
    }


    /// Returns the address of the client that sent this request.
    ///
    /// The address is always `Some` for TCP listeners, but always `None` for UNIX listeners
    /// (as the remote address of a UNIX client is almost always unnamed).
    ///
    /// Note that this is gathered from the socket. If you receive the request from a proxy,
    /// this function will return the address of the proxy and not the address of the actual
    /// user.
    #[inline]
    pub fn remote_addr(&self) -> Option<&SocketAddr> {
        self.remote_addr.as_ref()
    }

    /// Sends a response with a `Connection: upgrade` header, then turns the `Request` into a `Stream`.
    ///
    /// The main purpose of this function is to support websockets.
    /// If you detect that the request wants to use some kind of protocol upgrade, you can
    ///  call this function to obtain full control of the socket stream.
    ///
    /// If you call this on a non-websocket request, tiny-http will wait until this `Stream` object
    ///  is destroyed before continuing to read or write on the socket. Therefore you should always
    ///  destroy it as soon as possible.
    pub fn upgrade<R: Read>(
        mut self,
        protocol: &str,
        response: Response<R>,
    ) -> Box<dyn ReadWrite + Send> {
        use crate::util::CustomStream;

        response
            .raw_print_te(
                self.response_writer.as_mut().unwrap().by_ref(),
                self.http_version.clone(),
                self.fields.get("TE"),
                false,
                Some(protocol),
            )
            .ok(); // TODO: unused result

        self.response_writer.as_mut().unwrap().flush().ok(); // TODO: unused result

        let stream = CustomStream::new(self.extract_reader_impl(), self.extract_writer_impl());
        if let Some(sender) = self.notify_when_responded.take() {
            let stream = NotifyOnDrop {
                sender,
                inner: stream,
            };
            Box::new(stream) as Box<dyn ReadWrite + Send>
        } else {
            Box::new(stream) as Box<dyn ReadWrite + Send>
        }
    }

    /// Allows to read the body of the request.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # extern crate tiny_http;
    /// # use std::io::Read;
    /// # fn get_content_type(_: &tiny_http::Request) -> &'static str { "" }
    /// # fn main() {
    /// # let server = tiny_http::Server::http("0.0.0.0:0").unwrap();
    /// let mut request = server.recv().unwrap();
    ///
    /// if get_content_type(&request) == "application/json" {
    ///     let mut content = String::new();
    ///     request.as_reader().read_to_string(&mut content).unwrap();
    ///     println!("{}", content);
    /// }
    /// # }
    /// ```
    ///
    /// If the client sent a `Expect: 100-continue` header with the request, calling this
    ///  function will send back a `100 Continue` response.
    #[inline]
    pub fn as_reader(&mut self) -> &mut dyn Read {
        if self.must_send_continue {
            let msg = Response::new_empty(StatusCode(100));
            msg.raw_print_te(
                self.response_writer.as_mut().unwrap().by_ref(),
                self.http_version.clone(),
                self.fields.get("TE"),
                true,
                None,
            )
            .ok();
            self.response_writer.as_mut().unwrap().flush().ok();
            self.must_send_continue = false;
        }

        self.data_reader.as_mut().unwrap()
    }

    /// Turns the `Request` into a writer.
    ///
    /// The writer has a raw access to the stream to the user.
    /// This function is useful for things like CGI.
    ///
    /// Note that the destruction of the `Writer` object may trigger
    /// some events. For exemple if a client has sent multiple requests and the requests
    /// have been processed in parallel, the destruction of a writer will trigger
    /// the writing of the next response.
    /// Therefore you should always destroy the `Writer` as soon as possible.
    #[inline]
    pub fn into_writer(mut self) -> Box<dyn Write + Send + 'static> {
        let writer = self.extract_writer_impl();
        if let Some(sender) = self.notify_when_responded.take() {
            let writer = NotifyOnDrop {
                sender,
                inner: writer,
            };
            Box::new(writer) as Box<dyn Write + Send + 'static>
        } else {
            writer
        }
    }

    /// Extract the response `Writer` object from the Request, dropping this `Writer` has the same side effects
    /// as the object returned by `into_writer` above.
    ///
    /// This may only be called once on a single request.
    fn extract_writer_impl(&mut self) -> Box<dyn Write + Send + 'static> {
        use std::mem;

        assert!(self.response_writer.is_some());

        let mut writer = None;
        mem::swap(&mut self.response_writer, &mut writer);
        writer.unwrap()
    }

    /// Extract the body `Reader` object from the Request.
    ///
    /// This may only be called once on a single request.
    fn extract_reader_impl(&mut self) -> Box<dyn Read + Send + 'static> {
        use std::mem;

        assert!(self.data_reader.is_some());

        let mut reader = None;
        mem::swap(&mut self.data_reader, &mut reader);
        reader.unwrap()
    }

    /// Sends a response to this request.
    #[inline]
    pub fn respond<R>(mut self, response: Response<R>) -> Result<(), IoError>
    where
        R: Read,
    {
        let res = self.respond_impl(response);
        if let Some(sender) = self.notify_when_responded.take() {
            sender.send(()).unwrap();
        }
        res
    }

    fn respond_impl<R>(&mut self, mut response: Response<R>) -> Result<(), IoError>
    where
        R: Read,
    {
        // litegate patch: a connection that closes after this response says so (`Response`
        // refuses a `Connection` header from the application).
        if self.state.as_ref().is_some_and(|s| s.must_close()) {
            response.mark_closing();
        }
        let mut writer = self.extract_writer_impl();

        let do_not_send_body = self.method == Method::Head;

        // litegate patch (issue 17): a response whose length is known and bounded is
        // gathered, head and body, into one buffer and leaves in one write. Printed straight
        // into the connection's 1 KiB `BufWriter`, a head and a body over 1 KiB took two or
        // three writes (and as many wake-ups of the client).
        // The buffer is the thread's, reused from response to response (a connection's
        // requests run on its thread); one above `GATHER_KEEP` is not kept.
        if response.data_length().is_some_and(|n| n <= GATHER_MAX) {
            let version = self.http_version.clone();
            let te = self.fields.get("TE");
            return GATHER.with(|cell| {
                let mut taken;
                let mut fresh;
                let out: &mut Vec<u8> = match cell.try_borrow_mut() {
                    Ok(b) => {
                        taken = b;
                        &mut taken
                    }
                    Err(_) => {
                        fresh = Vec::new();
                        &mut fresh
                    }
                };
                out.clear();
                let res = response
                    .raw_print_te(&mut *out, version, te, do_not_send_body, None)
                    .and_then(|_| {
                        Self::ignore_client_closing_errors(
                            writer.write_all(out).and_then(|_| writer.flush()),
                        )
                    });
                if out.capacity() > GATHER_KEEP {
                    *out = Vec::new();
                }
                res
            });
        }

        Self::ignore_client_closing_errors(response.raw_print_te(
            writer.by_ref(),
            self.http_version.clone(),
            self.fields.get("TE"),
            do_not_send_body,
            None,
        ))?;

        Self::ignore_client_closing_errors(writer.flush())
    }

    fn ignore_client_closing_errors(result: io::Result<()>) -> io::Result<()> {
        result.or_else(|err| match err.kind() {
            ErrorKind::BrokenPipe => Ok(()),
            ErrorKind::ConnectionAborted => Ok(()),
            ErrorKind::ConnectionRefused => Ok(()),
            ErrorKind::ConnectionReset => Ok(()),
            _ => Err(err),
        })
    }

    pub(crate) fn with_notify_sender(mut self, sender: Sender<()>) -> Self {
        self.notify_when_responded = Some(sender);
        self
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> Result<(), fmt::Error> {
        write!(
            formatter,
            "Request({} {} from {:?})",
            self.method, self.path, self.remote_addr
        )
    }
}

/// litegate patch (issue 17): responses of known length up to this many bytes are written
/// with one write (`respond_impl`); longer ones stream through the connection's buffer.
pub const GATHER_MAX: usize = 1 << 20;

/// litegate patch (issue 17): a gathered response buffer above this many bytes is freed
/// after its write rather than kept for the thread's next response.
const GATHER_KEEP: usize = 16 * 1024;

thread_local! {
    /// litegate patch (issue 17): the thread's buffer for gathered responses.
    static GATHER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Drop for Request {
    fn drop(&mut self) {
        // litegate patch: the client waits for `100 Continue` before sending the body and we
        // never asked for it: whether the body will come is unknown, so the connection closes.
        if self.must_send_continue {
            if let Some(s) = &self.state {
                s.close();
            }
        }
        if self.response_writer.is_some() {
            let response = Response::empty(500);
            let _ = self.respond_impl(response); // ignoring any potential error
            if let Some(sender) = self.notify_when_responded.take() {
                sender.send(()).unwrap();
            }
        }
    }
}

/// Dummy trait that regroups the `Read` and `Write` traits.
///
/// Automatically implemented on all types that implement both `Read` and `Write`.
pub trait ReadWrite: Read + Write {}
impl<T> ReadWrite for T where T: Read + Write {}

#[cfg(test)]
mod tests {
    use super::Request;
    use crate::{HTTPVersion, HeaderFields};

    /// litegate patch (issue 17): a response of known length leaves in one write, head and
    /// body together, whatever its size up to `GATHER_MAX` (printed straight into the
    /// connection's writer, its status line, each header and the body were separate writes).
    #[test]
    fn a_response_of_known_length_is_one_write() {
        use crate::{HTTPVersion, Method, Response};
        use std::io::Write;
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Writes(Arc<Mutex<Vec<Vec<u8>>>>);
        impl Write for Writes {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().push(b.to_vec());
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        for size in [2usize, 900, 3000, 30_000] {
            let w = Writes::default();
            let rq = super::new_request(
                false,
                Method::Get,
                "/x".into(),
                HTTPVersion(1, 1),
                vec![],
                None,
                std::io::empty(),
                w.clone(),
            )
            .unwrap();
            let body = vec![b'x'; size];
            rq.respond(Response::from_data(body.clone())).unwrap();
            let writes = w.0.lock().unwrap();
            assert_eq!(writes.len(), 1, "size {}: {} writes", size, writes.len());
            let out = String::from_utf8(writes[0].clone()).unwrap();
            assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{}", out);
            assert!(out.contains(&format!("\r\nContent-Length: {}\r\n", size)));
            assert!(out.ends_with(&format!("\r\n\r\n{}", "x".repeat(size))));
        }
    }

    /// litegate patch (issue 17, round 3): `take_head` hands out the target and every header
    /// as they came, and the request still frames its body and chooses its response's
    /// transfer coding as before (the answer's bytes are the same, `Date` aside).
    #[test]
    fn take_head_moves_the_head_out() {
        use crate::{HTTPVersion, Header, Method, Response};
        use std::io::Write;
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let answer = |te: Option<&str>, chunked: bool, take: bool| {
            let mut headers = vec![
                Header::from_bytes(&b"Host"[..], &b"x"[..]).unwrap(),
                Header::from_bytes(&b"Authorization"[..], &b"Bearer sk-1"[..]).unwrap(),
            ];
            if let Some(te) = te {
                headers.push(Header::from_bytes(&b"TE"[..], te.as_bytes()).unwrap());
            }
            let body: &[u8] = if chunked {
                headers.push(Header::from_bytes(&b"Transfer-Encoding"[..], &b"chunked"[..]).unwrap());
                b"3\r\nabc\r\n0\r\n\r\n"
            } else {
                b""
            };
            let sink = Sink::default();
            let mut rq = super::new_request(
                false,
                Method::Post,
                "/v1/chat?x=1".into(),
                HTTPVersion(1, 1),
                headers.clone(),
                None,
                std::io::Cursor::new(body.to_vec()),
                sink.clone(),
            )
            .unwrap();
            if take {
                let (url, got) = rq.take_head();
                assert_eq!(url, "/v1/chat?x=1");
                let want: Vec<(String, String)> = headers
                    .iter()
                    .map(|h| (h.field.as_str().to_string(), h.value.as_str().to_string()))
                    .collect();
                let got: Vec<(String, String)> =
                    got.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
                assert_eq!(got, want);
                assert_eq!(rq.url(), "");
                let kept: Vec<String> = rq.headers().iter().map(|h| h.to_string()).collect();
                assert_eq!(kept, te.map(|t| format!("TE: {t}")).into_iter().collect::<Vec<_>>());
            } else {
                let all: Vec<String> = rq.headers().iter().map(|h| h.to_string()).collect();
                let want: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
                assert_eq!(all, want);
            }
            assert_eq!(rq.has_body(), chunked);
            let mut read = Vec::new();
            rq.as_reader().read_to_end(&mut read).unwrap();
            assert_eq!(read, if chunked { &b"abc"[..] } else { &b""[..] });
            rq.respond(Response::from_data(b"hello".to_vec())).unwrap();
            let out = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
            out.lines()
                .filter(|l| !l.starts_with("Date:"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        use std::io::Read;
        for te in [None, Some("chunked"), Some("identity"), Some("gzip;q=0.5, chunked;q=0.9")] {
            for chunked in [false, true] {
                assert_eq!(answer(te, chunked, true), answer(te, chunked, false), "{:?}", te);
            }
        }
        assert!(answer(Some("chunked"), false, true).contains("Transfer-Encoding: chunked"));
    }

    /// `framing` before patch L (one pass over `Header`s), kept as the oracle.
    fn framing_before(headers: &[(&str, &str)], version: &HTTPVersion) -> Result<String, &'static str> {
        let mut length: Option<&str> = None;
        let mut coding: Option<&str> = None;
        for (k, v) in headers {
            if k.eq_ignore_ascii_case("Content-Length") {
                if length.replace(v).is_some() {
                    return Err("more than one Content-Length header");
                }
            } else if k.eq_ignore_ascii_case("Transfer-Encoding") {
                if coding.replace(v).is_some() {
                    return Err("more than one Transfer-Encoding header");
                }
            }
        }
        let fields: HeaderFields = match (length, coding) {
            (Some(l), None) => vec![("Content-Length", l)].into(),
            (None, Some(c)) => vec![("Transfer-Encoding", c)].into(),
            (Some(l), Some(c)) => vec![("Content-Length", l), ("Transfer-Encoding", c)].into(),
            (None, None) => HeaderFields::new(),
        };
        // With at most one of each, the rest of `framing` is unchanged: shared.
        super::framing(&fields, version).map(|f| shown(&f))
    }

    fn shown(f: &super::Framing) -> String {
        match f {
            super::Framing::None => "none".into(),
            super::Framing::Length(n) => format!("length {}", n),
            super::Framing::Chunked => "chunked".into(),
        }
    }

    /// Property test (patch L): on generated header lists (duplicates of either framing
    /// header in any order and case, both together, other headers between, odd values),
    /// `framing` over `HeaderFields` answers what the one pass over `Header`s answered.
    #[test]
    fn framing_reads_as_before() {
        const NAMES: &[&str] = &["Content-Length", "content-length", "Transfer-Encoding", "TRANSFER-ENCODING", "Host", "Content-Lengths", "TE"];
        const VALUES: &[&str] = &["5", "0", " 12 ", "chunked", "gzip, chunked", "-1", "", "99999999999999999999"];
        let mut rng = 0x1234_5678_9abc_def1_u64;
        let mut next = move |n: usize| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng % n as u64) as usize
        };
        for case in 0..5000 {
            let pairs: Vec<(&str, &str)> = (0..next(6))
                .map(|_| (NAMES[next(NAMES.len())], VALUES[next(VALUES.len())]))
                .collect();
            let version = if next(4) == 0 { HTTPVersion(1, 0) } else { HTTPVersion(1, 1) };
            let fields: HeaderFields = pairs.iter().copied().collect();
            let got = super::framing(&fields, &version).map(|f| shown(&f));
            assert_eq!(got, framing_before(&pairs, &version), "case {}: {:?}", case, pairs);
        }
    }

    #[test]
    fn must_be_send() {
        #![allow(dead_code)]
        fn f<T: Send>(_: &T) {}
        fn bar(rq: &Request) {
            f(rq);
        }
    }
}
