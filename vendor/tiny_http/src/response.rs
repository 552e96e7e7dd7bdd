use crate::common::{HTTPVersion, Header, StatusCode};
use crate::HeaderFields;
use httpdate::HttpDate;
use std::cmp::Ordering;
use std::sync::mpsc::Receiver;
use std::sync::OnceLock;

use std::io::Result as IoResult;
use std::io::{self, Cursor, Read, Write};

use std::fs::File;

use std::str::FromStr;
use std::time::SystemTime;

/// Object representing an HTTP response whose purpose is to be given to a `Request`.
///
/// Some headers cannot be changed. Trying to define the value
/// of one of these will have no effect:
///
///  - `Connection`
///  - `Trailer`
///  - `Transfer-Encoding`
///  - `Upgrade`
///
/// Some headers have special behaviors:
///
///  - `Content-Encoding`: If you define this header, the library
///     will assume that the data from the `Read` object has the specified encoding
///     and will just pass-through.
///
///  - `Content-Length`: The length of the data should be set manually
///     using the `Reponse` object's API. Attempting to set the value of this
///     header will be equivalent to modifying the size of the data but the header
///     itself may not be present in the final result.
///
///  - `Content-Type`: You may only set this header to one value at a time. If you
///     try to set it more than once, the existing value will be overwritten. This
///     behavior differs from the default for most headers, which is to allow them to
///     be set multiple times in the same response.
///
pub struct Response<R> {
    reader: R,
    status_code: StatusCode,
    // litegate patch L (issue 17, round 4): the headers as spans into one buffer, in the
    // order they were added; the `Header`s of `headers()` built from them on first use.
    fields: HeaderFields,
    headers: OnceLock<Vec<Header>>,
    data_length: Option<usize>,
    chunked_threshold: Option<usize>,
}

/// A `Response` without a template parameter.
pub type ResponseBox = Response<Box<dyn Read + Send>>;

/// Transfer encoding to use when sending the message.
/// Note that only *supported* encoding are listed here.
#[derive(Copy, Clone)]
enum TransferEncoding {
    Identity,
    Chunked,
}

impl FromStr for TransferEncoding {
    type Err = ();

    fn from_str(input: &str) -> Result<TransferEncoding, ()> {
        if input.eq_ignore_ascii_case("identity") {
            Ok(TransferEncoding::Identity)
        } else if input.eq_ignore_ascii_case("chunked") {
            Ok(TransferEncoding::Chunked)
        } else {
            Err(())
        }
    }
}

/// litegate patch (issue 17): the header lines the library adds to a response head.
struct Extra<'a> {
    upgrade: Option<&'a str>,
    add_server: bool,
    add_date: bool,
    framing: Framing,
}

enum Framing {
    None,
    Chunked,
    Length(usize),
}

thread_local! {
    /// litegate patch (issue 17): the `Date` value of the current second, formatted once per
    /// second per thread (formatting it took ~1k instructions and two allocations per
    /// response).
    static DATE: std::cell::Cell<(u64, [u8; 29])> = const { std::cell::Cell::new((u64::MAX, [0; 29])) };
}

/// litegate patch (issue 17): the IMF-fixdate of now (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn date_now() -> [u8; 29] {
    let now = SystemTime::now();
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    DATE.with(|c| {
        let (at, bytes) = c.get();
        if at == secs {
            return bytes;
        }
        let mut out = [b' '; 29];
        let s = HttpDate::from(now).to_string();
        let n = s.len().min(29);
        out[..n].copy_from_slice(&s.as_bytes()[..n]);
        c.set((secs, out));
        out
    })
}

/// litegate patch (issue 17): the response head, printed into one buffer and written at
/// once, with the same bytes in the same order as upstream (`Connection: upgrade`,
/// `Upgrade`, `Server`, `Date`, the response's headers, then `Transfer-Encoding` or
/// `Content-Length`), without `fmt` and without a `Header` per added line.
fn write_head<W: Write>(
    mut writer: W,
    http_version: &HTTPVersion,
    status_code: &StatusCode,
    headers: &HeaderFields,
    extra: Extra<'_>,
) -> IoResult<()> {
    HEAD.with(|cell| {
        // A re-entrant use (none today) gets a fresh buffer instead of a panic.
        let mut taken;
        let mut fresh;
        let head: &mut Vec<u8> = match cell.try_borrow_mut() {
            Ok(b) => {
                taken = b;
                &mut taken
            }
            Err(_) => {
                fresh = Vec::new();
                &mut fresh
            }
        };
        head.clear();
        print_head(head, http_version, status_code, headers, extra);
        let res = writer.write_all(head);
        if head.capacity() > HEAD_KEEP {
            *head = Vec::new();
        }
        res
    })
}

/// litegate patch (issue 17): a response head buffer above this is not kept for the next.
const HEAD_KEEP: usize = 4 * 1024;

thread_local! {
    /// litegate patch (issue 17): the thread's response head buffer, reused from response to
    /// response (a connection's requests run on its thread).
    static HEAD: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn print_head(
    head: &mut Vec<u8>,
    http_version: &HTTPVersion,
    status_code: &StatusCode,
    headers: &HeaderFields,
    extra: Extra<'_>,
) {
    head.extend_from_slice(b"HTTP/");
    let mut num = itoa_buf();
    head.extend_from_slice(itoa(&mut num, http_version.0 as u64));
    head.push(b'.');
    head.extend_from_slice(itoa(&mut num, http_version.1 as u64));
    head.push(b' ');
    head.extend_from_slice(itoa(&mut num, status_code.0 as u64));
    head.push(b' ');
    head.extend_from_slice(status_code.default_reason_phrase().as_bytes());
    head.extend_from_slice(b"\r\n");
    if let Some(up) = extra.upgrade {
        head.extend_from_slice(b"Connection: upgrade\r\nUpgrade: ");
        head.extend_from_slice(up.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    if extra.add_server {
        head.extend_from_slice(b"Server: tiny-http (Rust)\r\n");
    }
    if extra.add_date {
        head.extend_from_slice(b"Date: ");
        head.extend_from_slice(&date_now());
        head.extend_from_slice(b"\r\n");
    }
    for (name, value) in headers.iter() {
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    match extra.framing {
        Framing::Chunked => head.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        Framing::Length(n) => {
            head.extend_from_slice(b"Content-Length: ");
            head.extend_from_slice(itoa(&mut num, n as u64));
            head.extend_from_slice(b"\r\n");
        }
        Framing::None => {}
    }
    head.extend_from_slice(b"\r\n");
}

fn itoa_buf() -> [u8; 20] {
    [0; 20]
}

/// The decimal digits of `n`, in the tail of `buf`.
fn itoa(buf: &mut [u8; 20], mut n: u64) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

fn choose_transfer_encoding(
    status_code: StatusCode,
    request_te: Option<&str>,
    http_version: &HTTPVersion,
    entity_length: &Option<usize>,
    has_additional_headers: bool,
    chunked_threshold: usize,
) -> TransferEncoding {
    use crate::util;

    // HTTP 1.0 doesn't support other encoding
    if *http_version <= (1, 0) {
        return TransferEncoding::Identity;
    }

    // Per section 3.3.1 of RFC7230:
    // A server MUST NOT send a Transfer-Encoding header field in any response with a status code
    // of 1xx (Informational) or 204 (No Content).
    if status_code.0 < 200 || status_code.0 == 204 {
        return TransferEncoding::Identity;
    }

    // parsing the request's TE header
    // litegate patch L (issue 17, round 4): the request's first `TE` value, given as text.
    let user_request = request_te
        // getting the corresponding TransferEncoding
        .and_then(|value| {
            // getting list of requested elements
            let mut parse = util::parse_header_value(value);

            // sorting elements by most priority
            parse.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(Ordering::Equal));

            // trying to parse each requested encoding
            for value in parse.iter() {
                // q=0 are ignored
                if value.1 <= 0.0 {
                    continue;
                }

                if let Ok(te) = TransferEncoding::from_str(value.0) {
                    return Some(te);
                }
            }

            // encoding not found
            None
        });

    if let Some(user_request) = user_request {
        return user_request;
    }

    // if we have additional headers, using chunked
    if has_additional_headers {
        return TransferEncoding::Chunked;
    }

    // if we don't have a Content-Length, or if the Content-Length is too big, using chunks writer
    if entity_length
        .as_ref()
        .map_or(true, |val| *val >= chunked_threshold)
    {
        return TransferEncoding::Chunked;
    }

    // Identity by default
    TransferEncoding::Identity
}

impl<R> Response<R>
where
    R: Read,
{
    /// Creates a new Response object.
    ///
    /// The `additional_headers` argument is a receiver that
    ///  may provide headers even after the response has been sent.
    ///
    /// All the other arguments are straight-forward.
    pub fn new(
        status_code: StatusCode,
        headers: Vec<Header>,
        data: R,
        data_length: Option<usize>,
        additional_headers: Option<Receiver<Header>>,
    ) -> Response<R> {
        let mut response = Response {
            reader: data,
            status_code,
            fields: HeaderFields::new(),
            headers: OnceLock::new(),
            data_length,
            chunked_threshold: None,
        };

        for h in headers {
            response.add_header(h)
        }

        // dummy implementation
        if let Some(additional_headers) = additional_headers {
            for h in additional_headers.iter() {
                response.add_header(h)
            }
        }

        response
    }

    /// Set a threshold for `Content-Length` where we chose chunked
    /// transfer. Notice that chunked transfer might happen regardless of
    /// this threshold, for instance when the request headers indicate
    /// it is wanted or when there is no `Content-Length`.
    pub fn with_chunked_threshold(mut self, length: usize) -> Response<R> {
        self.chunked_threshold = Some(length);
        self
    }

    /// Convert the response into the underlying `Read` type.
    ///
    /// This is mainly useful for testing as it must consume the `Response`.
    pub fn into_reader(self) -> R {
        self.reader
    }

    /// The current `Content-Length` threshold for switching over to
    /// chunked transfer. The default is 32768 bytes. Notice that
    /// chunked transfer is mutually exclusive with sending a
    /// `Content-Length` header as per the HTTP spec.
    pub fn chunked_threshold(&self) -> usize {
        self.chunked_threshold.unwrap_or(32768)
    }

    /// litegate patch: announces that the connection closes after this response.
    pub(crate) fn mark_closing(&mut self) {
        self.fields.push("Connection", "close");
        self.headers = OnceLock::new();
    }

    /// Adds a header to the list.
    /// Does all the checks.
    pub fn add_header<H>(&mut self, header: H)
    where
        H: Into<Header>,
    {
        let header = header.into();
        self.add_field(header.field.as_str().as_str(), header.value.as_str());
    }

    /// litegate patch L (issue 17, round 4): `add_header` from text, with no `Header` made
    /// (two allocations each). The checks are `add_header`'s, plus `Header::from_bytes`'s:
    /// a name or value that is not ASCII adds nothing and returns false.
    pub fn add_field(&mut self, name: &str, value: &str) -> bool {
        if !name.is_ascii() || !value.is_ascii() {
            return false;
        }
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        self.headers = OnceLock::new();

        // ignoring forbidden headers
        if is("Connection") || is("Trailer") || is("Transfer-Encoding") || is("Upgrade") {
            return true;
        }

        // if the header is Content-Length, setting the data length
        if is("Content-Length") {
            if let Ok(val) = usize::from_str(value) {
                self.data_length = Some(val)
            }

            return true;
        // if the header is Content-Type and it's already set, overwrite it
        } else if is("Content-Type") {
            let at = self
                .fields
                .iter()
                .position(|(k, _)| k.eq_ignore_ascii_case("Content-Type"));
            if let Some(at) = at {
                self.fields.set_value(at, value);
                return true;
            }
        }

        self.fields.push(name, value);
        true
    }

    /// Returns the same request, but with an additional header.
    ///
    /// Some headers cannot be modified and some other have a
    ///  special behavior. See the documentation above.
    #[inline]
    pub fn with_header<H>(mut self, header: H) -> Response<R>
    where
        H: Into<Header>,
    {
        self.add_header(header.into());
        self
    }

    /// Returns the same request, but with a different status code.
    #[inline]
    pub fn with_status_code<S>(mut self, code: S) -> Response<R>
    where
        S: Into<StatusCode>,
    {
        self.status_code = code.into();
        self
    }

    /// Returns the same request, but with different data.
    pub fn with_data<S>(self, reader: S, data_length: Option<usize>) -> Response<S>
    where
        S: Read,
    {
        Response {
            reader,
            fields: self.fields,
            headers: self.headers,
            status_code: self.status_code,
            data_length,
            chunked_threshold: self.chunked_threshold,
        }
    }

    /// Prints the HTTP response to a writer.
    ///
    /// This function is the one used to send the response to the client's socket.
    /// Therefore you shouldn't expect anything pretty-printed or even readable.
    ///
    /// The HTTP version and headers passed as arguments are used to
    ///  decide which features (most notably, encoding) to use.
    ///
    /// Note: does not flush the writer.
    pub fn raw_print<W: Write>(
        self,
        writer: W,
        http_version: HTTPVersion,
        request_headers: &[Header],
        do_not_send_body: bool,
        upgrade: Option<&str>,
    ) -> IoResult<()> {
        let te = request_headers
            .iter()
            .find(|h| h.field.equiv("TE"))
            .map(|h| h.value.as_str());
        self.raw_print_te(writer, http_version, te, do_not_send_body, upgrade)
    }

    /// litegate patch L (issue 17, round 4): `raw_print` given only what it reads of the
    /// request's headers, the first `TE` value (the request keeps its headers as
    /// `HeaderFields`, not as `Header`s).
    pub(crate) fn raw_print_te<W: Write>(
        mut self,
        mut writer: W,
        http_version: HTTPVersion,
        request_te: Option<&str>,
        do_not_send_body: bool,
        upgrade: Option<&str>,
    ) -> IoResult<()> {
        let mut transfer_encoding = Some(choose_transfer_encoding(
            self.status_code,
            request_te,
            &http_version,
            &self.data_length,
            false, /* TODO */
            self.chunked_threshold(),
        ));

        // litegate patch (issue 17): `Server`, `Date`, the upgrade headers and the framing
        // header are printed straight into the head (see `write_head`), not inserted into
        // `self.headers` as `Header` values (two allocations each, and a shift of the list).
        let add_date = self.fields.get("Date").is_none();
        let add_server = self.fields.get("Server").is_none();
        if upgrade.is_some() {
            transfer_encoding = None;
        }

        // if the transfer encoding is identity, the content length must be known ; therefore if
        // we don't know it, we buffer the entire response first here
        // while this is an expensive operation, it is only ever needed for clients using HTTP 1.0
        let (mut reader, data_length): (Box<dyn Read>, _) =
            match (self.data_length, transfer_encoding) {
                (Some(l), _) => (Box::new(self.reader), Some(l)),
                (None, Some(TransferEncoding::Identity)) => {
                    let mut buf = Vec::new();
                    self.reader.read_to_end(&mut buf)?;
                    let l = buf.len();
                    (Box::new(Cursor::new(buf)), Some(l))
                }
                _ => (Box::new(self.reader), None),
            };

        // checking whether to ignore the body of the response
        let do_not_send_body = do_not_send_body
            || match self.status_code.0 {
                // status code 1xx, 204 and 304 MUST not include a body
                100..=199 | 204 | 304 => true,
                _ => false,
            };

        // sending headers
        let framing = match transfer_encoding {
            Some(TransferEncoding::Chunked) => Framing::Chunked,
            Some(TransferEncoding::Identity) => match data_length {
                Some(n) => Framing::Length(n),
                None => unreachable!("identity without a length is buffered above"),
            },
            None => Framing::None,
        };
        write_head(
            writer.by_ref(),
            &http_version,
            &self.status_code,
            &self.fields,
            Extra {
                upgrade,
                add_server,
                add_date,
                framing,
            },
        )?;

        // sending the body
        if !do_not_send_body {
            match transfer_encoding {
                Some(TransferEncoding::Chunked) => {
                    use chunked_transfer::Encoder;

                    let mut writer = Encoder::new(writer);
                    io::copy(&mut reader, &mut writer)?;
                }

                Some(TransferEncoding::Identity) => {
                    assert!(data_length.is_some());
                    let data_length = data_length.unwrap();

                    if data_length >= 1 {
                        io::copy(&mut reader, &mut writer)?;
                    }
                }

                _ => (),
            }
        }

        Ok(())
    }

    /// Retrieves the current value of the `Response` status code
    pub fn status_code(&self) -> StatusCode {
        self.status_code
    }

    /// Retrieves the current value of the `Response` data length
    pub fn data_length(&self) -> Option<usize> {
        self.data_length
    }

    /// Retrieves the current list of `Response` headers
    pub fn headers(&self) -> &[Header] {
        // litegate patch L: built from the fields on first use.
        self.headers.get_or_init(|| {
            self.fields
                .iter()
                .filter_map(|(k, v)| Header::from_bytes(k.as_bytes(), v.as_bytes()).ok())
                .collect()
        })
    }
}

impl<R> Response<R>
where
    R: Read + Send + 'static,
{
    /// Turns this response into a `Response<Box<Read + Send>>`.
    pub fn boxed(self) -> ResponseBox {
        Response {
            reader: Box::new(self.reader) as Box<dyn Read + Send>,
            status_code: self.status_code,
            fields: self.fields,
            headers: self.headers,
            data_length: self.data_length,
            chunked_threshold: self.chunked_threshold,
        }
    }
}

impl Response<File> {
    /// Builds a new `Response` from a `File`.
    ///
    /// The `Content-Type` will **not** be automatically detected,
    ///  you must set it yourself.
    pub fn from_file(file: File) -> Response<File> {
        let file_size = file.metadata().ok().map(|v| v.len() as usize);

        Response::new(
            StatusCode(200),
            Vec::with_capacity(0),
            file,
            file_size,
            None,
        )
    }
}

impl Response<Cursor<Vec<u8>>> {
    pub fn from_data<D>(data: D) -> Response<Cursor<Vec<u8>>>
    where
        D: Into<Vec<u8>>,
    {
        let data = data.into();
        let data_len = data.len();

        Response::new(
            StatusCode(200),
            Vec::with_capacity(0),
            Cursor::new(data),
            Some(data_len),
            None,
        )
    }

    pub fn from_string<S>(data: S) -> Response<Cursor<Vec<u8>>>
    where
        S: Into<String>,
    {
        let data = data.into();
        let data_len = data.len();

        Response::new(
            StatusCode(200),
            vec![
                Header::from_bytes(&b"Content-Type"[..], &b"text/plain; charset=UTF-8"[..])
                    .unwrap(),
            ],
            Cursor::new(data.into_bytes()),
            Some(data_len),
            None,
        )
    }
}

impl Response<io::Empty> {
    /// Builds an empty `Response` with the given status code.
    pub fn empty<S>(status_code: S) -> Response<io::Empty>
    where
        S: Into<StatusCode>,
    {
        Response::new(
            status_code.into(),
            Vec::with_capacity(0),
            io::empty(),
            Some(0),
            None,
        )
    }

    /// DEPRECATED. Use `empty` instead.
    pub fn new_empty(status_code: StatusCode) -> Response<io::Empty> {
        Response::empty(status_code)
    }
}

impl Clone for Response<io::Empty> {
    fn clone(&self) -> Response<io::Empty> {
        Response {
            reader: io::empty(),
            status_code: self.status_code,
            fields: self.fields.clone(),
            headers: OnceLock::new(),
            data_length: self.data_length,
            chunked_threshold: self.chunked_threshold,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn printed<R: Read>(r: Response<R>, version: HTTPVersion, upgrade: Option<&str>) -> String {
        let mut out = Vec::new();
        r.raw_print(&mut out, version, &[], false, upgrade).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// litegate patch (issue 17): the head printed without `Header` values keeps upstream's
    /// bytes and order: status line, `Server`, `Date` (IMF-fixdate), the response's headers,
    /// then the framing header; `Connection: upgrade` and `Upgrade` first on an upgrade; a
    /// `Date` or `Server` of the response's own replaces the library's.
    #[test]
    fn the_head_keeps_upstreams_bytes_and_order() {
        let r = Response::from_data(b"hello".to_vec())
            .with_header(Header::from_bytes(&b"X-A"[..], &b"1"[..]).unwrap());
        let out = printed(r, HTTPVersion(1, 1), None);
        let lines: Vec<&str> = out.split("\r\n").collect();
        assert_eq!(lines[0], "HTTP/1.1 200 OK");
        assert_eq!(lines[1], "Server: tiny-http (Rust)");
        let date = lines[2].strip_prefix("Date: ").unwrap();
        assert_eq!(date.len(), 29, "{date}");
        assert!(date.ends_with(" GMT") && date.as_bytes()[3] == b',', "{date}");
        assert_eq!(lines[3], "X-A: 1");
        assert!(out.ends_with("\r\nContent-Length: 5\r\n\r\nhello"), "{out}");

        let r = Response::from_data(Vec::new())
            .with_status_code(404)
            .with_header(Header::from_bytes(&b"Date"[..], &b"x"[..]).unwrap())
            .with_header(Header::from_bytes(&b"Server"[..], &b"y"[..]).unwrap());
        let out = printed(r, HTTPVersion(1, 0), None);
        assert_eq!(
            out,
            "HTTP/1.0 404 Not Found\r\nDate: x\r\nServer: y\r\nContent-Length: 0\r\n\r\n"
        );

        let r = Response::empty(101);
        let out = printed(r, HTTPVersion(1, 1), Some("websocket"));
        assert!(
            out.starts_with(
                "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\nServer: tiny-http (Rust)\r\nDate: "
            ),
            "{out}"
        );
        assert!(!out.contains("Content-Length") && !out.contains("Transfer-Encoding"), "{out}");
    }

    /// Upstream's `add_header` on a `Vec<Header>` (before patch L), as pairs: forbidden names
    /// dropped, `Content-Length` read into the length, a second `Content-Type` overwriting
    /// the first in place; a pair `Header::from_bytes` refuses (not ASCII) never arrives.
    fn old_add(list: &mut Vec<(String, String)>, len: &mut Option<usize>, k: &str, v: &str) {
        let is = |n: &str| k.eq_ignore_ascii_case(n);
        if !k.is_ascii() || !v.is_ascii() {
            return;
        }
        if is("Connection") || is("Trailer") || is("Transfer-Encoding") || is("Upgrade") {
            return;
        }
        if is("Content-Length") {
            if let Ok(n) = usize::from_str(v) {
                *len = Some(n);
            }
            return;
        }
        if is("Content-Type") {
            if let Some(h) = list.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case("Content-Type")) {
                h.1 = v.to_string();
                return;
            }
        }
        list.push((k.to_string(), v.to_string()));
    }

    /// Property test (patch L): on generated header lists, a response built with `Header`s
    /// (`Response::new`, `with_header`) or with `add_field` prints the head upstream's
    /// `Vec<Header>` printed: the same lines in the same order, the same framing; `headers()`
    /// lists the same; and `mark_closing` appends `Connection: close` last.
    #[test]
    fn fields_print_as_the_old_header_list() {
        const NAMES: &[&str] = &[
            "Content-Type", "content-type", "X-A", "Set-Cookie", "Date", "Server", "Connection",
            "transfer-encoding", "Upgrade", "Trailer", "Content-Length", "retry-after", "x-é",
        ];
        const VALUES: &[&str] = &["1", "", "text/plain", "application/json", "12", "x y", "é", "-3"];
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: usize| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng % n as u64) as usize
        };
        for case in 0..2000 {
            let pairs: Vec<(&str, &str)> = (0..next(8))
                .map(|_| (NAMES[next(NAMES.len())], VALUES[next(VALUES.len())]))
                .collect();
            let body = b"hello".to_vec();
            let (mut want, mut len) = (Vec::new(), Some(body.len()));
            for (k, v) in &pairs {
                old_add(&mut want, &mut len, k, v);
            }
            let closing = next(2) == 0;
            let headers: Vec<Header> = pairs
                .iter()
                .filter_map(|(k, v)| Header::from_bytes(k.as_bytes(), v.as_bytes()).ok())
                .collect();
            let mut a = Response::new(StatusCode(200), headers, Cursor::new(body.clone()), Some(5), None);
            let mut b = Response::new(StatusCode(200), Vec::new(), Cursor::new(body), Some(5), None);
            for (k, v) in &pairs {
                assert_eq!(b.add_field(k, v), k.is_ascii() && v.is_ascii());
            }
            let listed: Vec<(String, String)> = a
                .headers()
                .iter()
                .map(|h| (h.field.to_string(), h.value.to_string()))
                .collect();
            assert_eq!(listed, want, "case {}: {:?}", case, pairs);
            if closing {
                a.mark_closing();
                b.mark_closing();
                want.push(("Connection".into(), "close".into()));
            }
            let (pa, pb) = (printed(a, HTTPVersion(1, 1), None), printed(b, HTTPVersion(1, 1), None));
            assert_eq!(pa, pb, "case {}: {:?}", case, pairs);
            let lines: Vec<String> = pa
                .split("\r\n")
                .skip(1)
                .take_while(|l| !l.is_empty())
                .filter(|l| !l.starts_with("Server: tiny-http") && !l.starts_with("Date: "))
                .filter(|l| !l.starts_with("Content-Length: ") && !l.starts_with("Transfer-Encoding: "))
                .map(String::from)
                .collect();
            let mut want_lines: Vec<String> = want.iter().map(|(k, v)| format!("{}: {}", k, v)).collect();
            // A response's own `Date`/`Server` replaces the library's line; both are filtered.
            want_lines.retain(|l| !l.starts_with("Server: tiny-http") && !l.starts_with("Date: "));
            assert_eq!(lines, want_lines, "case {}: {:?}", case, pairs);
            let framing = match len {
                Some(n) if n < 32768 => format!("Content-Length: {}\r\n", n),
                _ => "Transfer-Encoding: chunked\r\n".to_string(),
            };
            assert!(pa.contains(&framing), "case {}: {:?} {}", case, pairs, pa);
        }
    }

    /// The cached `Date` is the one `HttpDate` formats for the same second.
    #[test]
    fn the_cached_date_is_httpdates() {
        let before = HttpDate::from(SystemTime::now()).to_string();
        let got = String::from_utf8(date_now().to_vec()).unwrap();
        let after = HttpDate::from(SystemTime::now()).to_string();
        assert!(got == before || got == after, "{got} vs {before}/{after}");
        assert_eq!(date_now().to_vec(), date_now().to_vec());
    }
}
