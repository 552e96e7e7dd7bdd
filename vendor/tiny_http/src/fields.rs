//! litegate patch L (issue 17, round 4): a request's header fields as spans into one buffer.
//!
//! Upstream kept each header as a `Header` of two `AsciiString`s: two allocations per header
//! on every request, plus the `Vec`. `HeaderFields` keeps every name and value, in the order
//! they came, in one `String`, with one `Vec` of offsets: two allocations per request
//! whatever the number of headers. Names are kept as sent and compared without regard to
//! ASCII case (`get`), values are as the parser gave them (surrounding blanks trimmed).
//! `Request::headers()` still hands out `Header`s, built from these on first use only.

use std::fmt;
use std::iter::FromIterator;

/// A request's header fields, in order, names as sent (see the module doc).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct HeaderFields {
    /// Every name followed by its value, back to back.
    text: String,
    /// Per field: where its name starts, where its value starts (the name's end) and where
    /// its value ends, as offsets into `text`.
    spans: Vec<[u32; 3]>,
}

impl HeaderFields {
    /// No fields.
    pub fn new() -> HeaderFields {
        HeaderFields::default()
    }

    /// Room for `fields` fields whose names and values take `bytes` bytes in all.
    pub fn with_capacity(fields: usize, bytes: usize) -> HeaderFields {
        HeaderFields {
            text: String::with_capacity(bytes),
            spans: Vec::with_capacity(fields),
        }
    }

    /// Appends a field. Panics only past 4 GiB of text, which no bounded head reaches.
    pub fn push(&mut self, name: &str, value: &str) {
        let at = |n: usize| -> u32 {
            std::convert::TryFrom::try_from(n).expect("header fields over 4 GiB")
        };
        let start = at(self.text.len());
        self.text.push_str(name);
        let mid = at(self.text.len());
        self.text.push_str(value);
        self.spans.push([start, mid, at(self.text.len())]);
    }

    /// Replaces the value of the field at `index` (in place; nothing if there is none).
    pub fn set_value(&mut self, index: usize, value: &str) {
        if index >= self.len() {
            return;
        }
        let mut out = HeaderFields::with_capacity(self.len(), self.text.len() + value.len());
        for (i, (k, v)) in self.iter().enumerate() {
            out.push(k, if i == index { value } else { v });
        }
        *self = out;
    }

    /// How many fields.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// No fields at all.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The fields as `(name, value)`, in the order they came.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.spans.iter().map(move |s| self.pair(s))
    }

    /// The first field named `name` (ASCII case ignored): its value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.spans
            .iter()
            .filter(|s| (s[1] - s[0]) as usize == name.len())
            .map(|s| self.pair(s))
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Every value of the fields named `name` (ASCII case ignored), in order. A field's
    /// name is looked at only when its length is `name`'s (read from the offsets).
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.spans
            .iter()
            .filter(move |s| (s[1] - s[0]) as usize == name.len())
            .map(move |s| self.pair(s))
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    fn pair(&self, s: &[u32; 3]) -> (&str, &str) {
        let [a, b, c] = s.map(|n| n as usize);
        // Offsets are only ever made by `push` at `str` boundaries.
        (&self.text[a..b], &self.text[b..c])
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for HeaderFields {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> HeaderFields {
        let mut f = HeaderFields::new();
        for (k, v) in pairs {
            f.push(k.as_ref(), v.as_ref());
        }
        f
    }
}

impl<K: AsRef<str>, V: AsRef<str>> From<Vec<(K, V)>> for HeaderFields {
    fn from(pairs: Vec<(K, V)>) -> HeaderFields {
        pairs.into_iter().collect()
    }
}

impl fmt::Debug for HeaderFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientConnection;
    use crate::connection::Connection;
    use crate::util::RefinedTcpStream;
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::sync::Arc;
    use std::time::Duration;

    /// What the fork read before patch L, from the same httparse result: per header a
    /// `HeaderField` (an ASCII name, else "malformed") and an `AsciiString` of the trimmed
    /// value (else the `NonAsciiHeader` refusal, naming the header in lower case).
    fn old_read(head: &[u8]) -> Result<Vec<(String, String)>, Option<String>> {
        let mut slots = [httparse::EMPTY_HEADER; crate::limits::MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut slots);
        match parsed.parse(head) {
            Ok(httparse::Status::Complete(_)) => {}
            _ => return Err(None),
        }
        let mut out = Vec::new();
        for h in parsed.headers.iter() {
            let name = ascii::AsciiString::from_ascii(h.name.as_bytes()).map_err(|_| None)?;
            let value = ascii::AsciiString::from_ascii(h.value.trim_ascii())
                .map_err(|_| Some(h.name.to_ascii_lowercase()))?;
            out.push((name.to_string(), value.to_string()));
        }
        Ok(out)
    }

    type Seen = (
        Vec<Vec<(String, String)>>,
        Vec<Vec<(String, String)>>,
        Vec<u8>,
    );

    /// Serves `input` on a real connection: per request its `fields()` and its `headers()`
    /// as pairs, and what the connection wrote back.
    fn serve(input: Vec<u8>) -> Seen {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let client = std::thread::spawn(move || {
            let _ = c.write_all(&input);
            let _ = c.shutdown(Shutdown::Write);
            let mut out = Vec::new();
            let _ = c.read_to_end(&mut out);
            out
        });
        let (r, w) = RefinedTcpStream::new(Connection::from(s));
        let mut conn = ClientConnection::new(w, r, Arc::new(crate::limits::Config::default()));
        let (mut fields, mut headers) = (Vec::new(), Vec::new());
        while let Some(rq) = conn.next() {
            let pairs = |it: &mut dyn Iterator<Item = (&str, &str)>| -> Vec<(String, String)> {
                it.map(|(k, v)| (k.to_string(), v.to_string())).collect()
            };
            fields.push(pairs(&mut rq.fields().iter()));
            headers.push(pairs(
                &mut rq
                    .headers()
                    .iter()
                    .map(|h| (h.field.as_str().as_str(), h.value.as_str())),
            ));
            let _ = rq.respond(crate::Response::empty(204));
        }
        drop(conn);
        (fields, headers, client.join().unwrap())
    }

    /// Property test: on generated heads (names in any case, tokens, blanks around values,
    /// empty values, tabs, bytes over 0x7f, repeated names, up to past `MAX_HEADERS`), the
    /// fields a request carries are the old `Header`s, in order, byte for byte, and a head
    /// the old read refused is refused the same way.
    #[test]
    fn fields_read_as_the_old_headers() {
        const NAMES: &[&str] = &[
            "Host",
            "host",
            "AUTHORIZATION",
            "Authorization",
            "x-api-key",
            "TE",
            "Cookie",
            "X-Litegate-UI",
            "Accept-Encoding",
            "a",
            "X!#$%&'*+-.^_`|~9",
            "Connection",
        ];
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let (mut served, mut refused) = (0, 0);
        for case in 0..400 {
            let mut head = b"POST /v1/chat/completions HTTP/1.1\r\n".to_vec();
            let count = match next() % 10 {
                0 => 90 + (next() % 20) as usize,
                _ => (next() % 12) as usize,
            };
            for _ in 0..count {
                if next() % 3 == 0 {
                    for _ in 0..1 + next() % 8 {
                        head.push(b"abcXYZ-_09"[(next() % 10) as usize]);
                    }
                } else {
                    head.extend_from_slice(
                        NAMES[(next() % NAMES.len() as u64) as usize].as_bytes(),
                    );
                }
                head.push(b':');
                for _ in 0..next() % 40 {
                    head.push(match next() % 20 {
                        0 => b' ',
                        1 => b'\t',
                        2 if next() % 8 == 0 => 0x80 + (next() % 0x80) as u8,
                        3 => b'"',
                        _ => b' ' + 1 + (next() % 94) as u8,
                    });
                }
                head.extend_from_slice(b"\r\n");
            }
            head.extend_from_slice(b"Connection: close\r\n\r\n");
            let shown = String::from_utf8_lossy(&head).into_owned();
            let (fields, headers, out) = serve(head.clone());
            match old_read(&head) {
                Ok(want) => {
                    served += 1;
                    assert_eq!(fields, vec![want.clone()], "case {}: {}", case, shown);
                    assert_eq!(headers, vec![want], "case {}: {}", case, shown);
                }
                Err(why) => {
                    refused += 1;
                    assert!(fields.is_empty(), "case {}: {}", case, shown);
                    let out = String::from_utf8_lossy(&out).into_owned();
                    if let Some(name) = why {
                        let said = format!("the value of header {} is not ASCII", name);
                        assert!(out.contains(&said), "case {}: {} -> {}", case, shown, out);
                    }
                }
            }
        }
        assert!(
            served > 100 && refused > 20,
            "{} served, {} refused",
            served,
            refused
        );
    }

    #[test]
    fn fields_keep_order_names_and_values() {
        let pairs = [
            ("Host", "a"),
            ("content-LENGTH", "3"),
            ("X-Empty", ""),
            ("", "no name"),
            ("host", "b"),
        ];
        let f: HeaderFields = pairs.iter().copied().collect();
        assert_eq!(f.len(), 5);
        assert!(!f.is_empty() && HeaderFields::new().is_empty());
        assert_eq!(f.iter().collect::<Vec<_>>(), pairs.to_vec());
        assert_eq!(f.get("HOST"), Some("a"));
        assert_eq!(f.get("Content-Length"), Some("3"));
        assert_eq!(f.get("x-empty"), Some(""));
        assert_eq!(f.get("missing"), None);
        assert_eq!(f.get_all("host").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(format!("{f:?}"), format!("{:?}", pairs.to_vec()));
        let same: HeaderFields = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
            .into();
        assert_eq!(same, f);
    }
}
