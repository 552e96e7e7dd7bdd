//! What a client may send, checked the same way by the HTTP toolkit (`http::Body`) and the
//! model call (`call::body`): a body is one JSON object (`json_object`, which also tells whether
//! the object names a key twice), and every string handed out as an identifier goes through
//! `check`. Owns the one check every string the `Body` accessors hand out goes through (ids,
//! aliases, emails, roles, model names in lists, the names in `metadata` and `aliases`
//! objects), so every endpoint refuses, with a 400 naming the field, text that would be a trap
//! once stored: control characters (NUL truncates in C tools and logs, ESC sequences repaint an
//! operator's terminal, CR/LF forge log lines and headers) and absurd lengths. Free text that
//! may legitimately hold newlines is exempt. Leaves the meaning of fields to their handlers.

mod body;
pub use body::Body;

use crate::error::{Error, Result};
use serde_json::{Map, Value};

/// The most characters an identifier, alias, email, role or model name may have.
pub const MAX_ID_CHARS: usize = 256;

/// Fields that are free text (compared or sent on, never an identifier): newlines allowed,
/// no length cap beyond the body's.
const FREE_TEXT: &[&str] = &["mock_response", "password", "master_key"];

/// Refuses `s` as the value of `field` when it has a control character or is too long.
pub fn check(field: &str, s: &str) -> Result<()> {
    if FREE_TEXT.contains(&field) {
        return Ok(());
    }
    // Byte length first: no character count of a megabyte string.
    if s.len() > MAX_ID_CHARS && s.chars().count() > MAX_ID_CHARS {
        return Err(Error::bad_param(
            field,
            format!("`{field}` is longer than {MAX_ID_CHARS} characters"),
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(Error::bad_param(
            field,
            format!("`{field}` must not contain control characters"),
        ));
    }
    Ok(())
}

/// The body as a JSON object (an empty body is `{}`), and whether that object names a key
/// twice: the parsed map keeps the last value, another parser may keep the first, so such
/// bytes must never be forwarded as they came.
pub fn json_object(bytes: &[u8]) -> Result<(Map<String, Value>, bool)> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok((Map::new(), false));
    }
    match serde_json::from_slice::<TopObject>(bytes) {
        Ok(TopObject(Some(parsed))) => Ok(parsed),
        Ok(TopObject(None)) => Err(Error::bad("Request body must be a JSON object")),
        Err(e) => Err(Error::bad(format!("Malformed JSON in request body: {e}"))),
    }
}

/// A JSON document parsed as `Value` would be, that also tells whether its top level is an
/// object and whether that object names a key twice (serde_json's `Map` silently keeps the
/// last value). `None`: valid JSON, but not an object.
struct TopObject(Option<(Map<String, Value>, bool)>);

impl<'de> serde::Deserialize<'de> for TopObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = TopObject;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON document")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> std::result::Result<TopObject, A::Error> {
                let mut m = Map::new();
                let mut dup = false;
                while let Some(k) = a.next_key::<String>()? {
                    let v: Value = a.next_value()?;
                    dup |= m.insert(k, v).is_some();
                }
                Ok(TopObject(Some((m, dup))))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> std::result::Result<TopObject, A::Error> {
                while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(TopObject(None))
            }
            fn visit_bool<E>(self, _: bool) -> std::result::Result<TopObject, E> {
                Ok(TopObject(None))
            }
            fn visit_i64<E>(self, _: i64) -> std::result::Result<TopObject, E> {
                Ok(TopObject(None))
            }
            fn visit_u64<E>(self, _: u64) -> std::result::Result<TopObject, E> {
                Ok(TopObject(None))
            }
            fn visit_f64<E>(self, _: f64) -> std::result::Result<TopObject, E> {
                Ok(TopObject(None))
            }
            fn visit_str<E>(self, _: &str) -> std::result::Result<TopObject, E> {
                Ok(TopObject(None))
            }
            fn visit_unit<E>(self) -> std::result::Result<TopObject, E> {
                Ok(TopObject(None))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_absurd_lengths_are_refused_naming_the_field() {
        for bad in ["a\0b", "a\nb", "\u{1b}[31m", "x\u{7f}", "x\u{85}", "\r"] {
            let e = check("team_id", bad).unwrap_err();
            assert_eq!(e.status(), 400);
            assert_eq!(e.body()["error"]["param"], "team_id", "{bad:?}");
        }
        assert!(check("team_alias", &"x".repeat(MAX_ID_CHARS)).is_ok());
        assert!(check("team_alias", &"é".repeat(MAX_ID_CHARS)).is_ok());
        assert!(check("team_alias", &"x".repeat(MAX_ID_CHARS + 1)).is_err());
        assert!(check("user_email", "ünïcode@example.com").is_ok());
        assert!(check("mock_response", "line one\nline two").is_ok());
    }

    #[test]
    fn a_body_is_one_json_object_and_a_repeated_key_is_noticed() {
        assert_eq!(json_object(b" \n").unwrap(), (Map::new(), false));
        let (m, dup) = json_object(br#"{"a": 1, "b": 2}"#).unwrap();
        assert_eq!((m.len(), dup), (2, false));
        let (m, dup) = json_object(br#"{"a": 1, "a": 2}"#).unwrap();
        assert_eq!((m["a"].as_i64(), dup), (Some(2), true));
        for not_object in [&b"[1]"[..], b"1", b"\"x\"", b"null", b"true"] {
            let e = json_object(not_object).unwrap_err();
            assert_eq!(e.message(), "Request body must be a JSON object");
        }
        assert!(json_object(b"{")
            .unwrap_err()
            .message()
            .starts_with("Malformed JSON"));
    }
}
