//! One event of an OpenAI-shaped stream, read without a tree (issue 17): what the stream
//! relay needs of it — its `usage`, whether it has choices, the characters of its completion
//! text, whether a choice finished, whether it is an error — read in one pass, nothing built.
//! It reads exactly what a `serde_json::Value` of the event read before (`UsageTally::see`):
//! every value is checked as such a parse checks it ([`Checked`]), so an event that is not
//! JSON for one is not JSON for the other; a key given twice counts by its last value, as in
//! a tree; anything that is not where the shape expects it counts nothing. `usage` is read
//! by the answers' reader ([`ReportedWith`]), skipping by `Checked`. The same pass keeps where
//! the top-level `"id"` strings are ([`IdSpans`]), so the relay stamps the request id there
//! without walking the event again (`completion_id::stamp_spans_into`).

use super::de::{Checked, KeyIn, ReportedWith};
use super::Reported;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;

/// What a stream event says (an event that is not an object says nothing).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Event {
    /// Its `usage`, when present and not `null`.
    pub usage: Option<Reported>,
    /// `choices` is an array with at least one element.
    pub has_choices: bool,
    /// Characters of completion text in its choices (`message.content`, `delta.content`,
    /// `text`, when strings).
    pub chars: u64,
    /// A choice has a `finish_reason` that is not `null`.
    pub finished: bool,
    /// It has a top-level `error` (of any value, `null` too).
    pub error: bool,
}

impl Event {
    /// Reads one event's data (the text after `data:`); an error when it is not JSON.
    pub fn read(data: &str) -> serde_json::Result<Event> {
        serde_json::from_str::<Full>(data).map(|f| f.event)
    }

    /// [`Event::read`], and where `data`'s top-level `"id"` strings are, in the same pass.
    pub fn read_with_ids(data: &str) -> serde_json::Result<(Event, IdSpans)> {
        let Full { event, mut ids } = serde_json::from_str(data)?;
        // The read kept each id's text as the address of the borrowed `&str` (an id without
        // escapes is borrowed from `data`): made an offset in `data`, quotes included, or the
        // spans are not used at all if one does not lie between its quotes there.
        let (base, bytes) = (data.as_ptr() as usize, data.as_bytes());
        for s in &mut ids.spans[..ids.n] {
            let (addr, len) = *s;
            let span = addr.checked_sub(base).and_then(|a| {
                let end = a.checked_add(len)?;
                let quoted =
                    a > 0 && bytes.get(a - 1) == Some(&b'"') && bytes.get(end) == Some(&b'"');
                quoted.then_some((a - 1, end + 1))
            });
            match span {
                Some(span) => *s = span,
                None => {
                    ids.unknown = true;
                    break;
                }
            }
        }
        Ok((event, ids))
    }
}

/// The most top-level `id` strings an event's read keeps the place of (an event has one).
const MAX_IDS: usize = 4;

/// Where an event's top-level `"id"` string values are (the key written `"id"`, without
/// escapes, as `completion_id::stamp_into` matches it; non-string values are not stamped).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct IdSpans {
    spans: [(usize, usize); MAX_IDS],
    n: usize,
    /// One was not kept (a value with an escape, more than [`MAX_IDS`]).
    unknown: bool,
}

impl IdSpans {
    /// The byte spans (quotes included) of the top-level `"id"` strings, in order; `None`
    /// when the read did not keep them all (the caller then walks the event itself).
    pub fn get(&self) -> Option<&[(usize, usize)]> {
        (!self.unknown).then_some(&self.spans[..self.n])
    }

    fn push(&mut self, at: (usize, usize)) {
        match self.spans.get_mut(self.n) {
            Some(slot) => {
                *slot = at;
                self.n += 1;
            }
            None => self.unknown = true,
        }
    }
}

/// An event and its ids, as one pass reads them.
#[derive(Default)]
struct Full {
    event: Event,
    ids: IdSpans,
}

/// Visitor methods for the JSON types a reader does not look into: the value is checked
/// and skipped, and reads as `$v`.
macro_rules! otherwise {
    ($de:lifetime, $v:expr; $($kind:ident)*) => { $( otherwise!(@$kind $de, $v); )* };
    (@bool $de:lifetime, $v:expr) => {
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> { Ok($v) }
    };
    (@i64 $de:lifetime, $v:expr) => {
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> { Ok($v) }
    };
    (@u64 $de:lifetime, $v:expr) => {
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> { Ok($v) }
    };
    (@f64 $de:lifetime, $v:expr) => {
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> { Ok($v) }
    };
    (@str $de:lifetime, $v:expr) => {
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> { Ok($v) }
    };
    (@unit $de:lifetime, $v:expr) => {
        fn visit_unit<E>(self) -> Result<Self::Value, E> { Ok($v) }
    };
    (@seq $de:lifetime, $v:expr) => {
        fn visit_seq<A: SeqAccess<$de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
            while s.next_element::<Checked>()?.is_some() {}
            Ok($v)
        }
    };
    (@map $de:lifetime, $v:expr) => {
        fn visit_map<A: MapAccess<$de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
            while m.next_key::<Checked>()?.is_some() {
                m.next_value::<Checked>()?;
            }
            Ok($v)
        }
    };
}

/// A top-level key: `usage`, `choices`, `error` (escapes decoded, as a tree matches them), or
/// `id` written as such (as `completion_id::stamp_into` matches it).
struct TopKey;

/// [`TopKey`]'s index for an `id` key; 4 for any other key.
const ID: usize = 3;

/// The index of a top-level key that is read (`usage`, `choices`, `error`), or `ID + 1`.
fn top_key(s: &str) -> usize {
    ["usage", "choices", "error"]
        .iter()
        .position(|n| *n == s)
        .unwrap_or(ID + 1)
}

impl<'de> DeserializeSeed<'de> for TopKey {
    type Value = usize;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for TopKey {
    type Value = usize;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    /// A key without escapes (serde_json borrows it from the input).
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<usize, E> {
        Ok(if s == "id" { ID } else { top_key(s) })
    }
    fn visit_str<E>(self, s: &str) -> Result<usize, E> {
        Ok(top_key(s))
    }
}

/// A top-level `id` value: a string without escapes (its text's address and length), a
/// string with escapes, or anything else (checked and skipped).
enum IdValue {
    At(usize, usize),
    Escaped,
    Other,
}

impl<'de> Deserialize<'de> for IdValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = IdValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an id")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<IdValue, E> {
                Ok(IdValue::At(s.as_ptr() as usize, s.len()))
            }
            fn visit_str<E>(self, _: &str) -> Result<IdValue, E> {
                Ok(IdValue::Escaped)
            }
            otherwise!('de, IdValue::Other; bool i64 u64 f64 unit seq map);
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Full {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Full;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a stream event")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Full, A::Error> {
                let (mut e, mut ids) = (Event::default(), IdSpans::default());
                while let Some(k) = m.next_key_seed(TopKey)? {
                    match k {
                        0 => {
                            let u = m.next_value::<Option<ReportedWith<Checked>>>()?;
                            e.usage = u.map(|u| u.0);
                        }
                        1 => {
                            let c = m.next_value::<Choices>()?;
                            (e.has_choices, e.chars, e.finished) = (c.any, c.chars, c.finished);
                        }
                        2 => {
                            m.next_value::<Checked>()?;
                            e.error = true;
                        }
                        ID => match m.next_value::<IdValue>()? {
                            IdValue::At(addr, len) => ids.push((addr, len)),
                            IdValue::Escaped => ids.unknown = true,
                            IdValue::Other => {}
                        },
                        _ => {
                            m.next_value::<Checked>()?;
                        }
                    }
                }
                Ok(Full { event: e, ids })
            }
            otherwise!('de, Full::default(); bool i64 u64 f64 str unit seq);
        }
        d.deserialize_any(V)
    }
}

/// What a `choices` value says (anything but an array says nothing).
#[derive(Default)]
struct Choices {
    any: bool,
    chars: u64,
    finished: bool,
}

impl<'de> Deserialize<'de> for Choices {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Choices;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("choices")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Choices, A::Error> {
                let mut out = Choices::default();
                while let Some(c) = s.next_element::<Choice>()? {
                    out.any = true;
                    let chars = c.message.saturating_add(c.delta).saturating_add(c.text);
                    out.chars = out.chars.saturating_add(chars);
                    out.finished |= c.finished;
                }
                Ok(out)
            }
            otherwise!('de, Choices::default(); bool i64 u64 f64 str unit map);
        }
        d.deserialize_any(V)
    }
}

/// One choice (anything but an object counts nothing).
#[derive(Default)]
struct Choice {
    message: u64,
    delta: u64,
    text: u64,
    finished: bool,
}

impl<'de> Deserialize<'de> for Choice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Choice;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a choice")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Choice, A::Error> {
                const KEYS: &[&str] = &["message", "delta", "text", "finish_reason"];
                let mut c = Choice::default();
                while let Some(k) = m.next_key_seed(KeyIn(KEYS))? {
                    match k {
                        0 => c.message = m.next_value::<Content>()?.0,
                        1 => c.delta = m.next_value::<Content>()?.0,
                        2 => c.text = m.next_value::<Chars>()?.0,
                        3 => c.finished = m.next_value::<NotNull>()?.0,
                        _ => {
                            m.next_value::<Checked>()?;
                        }
                    }
                }
                Ok(c)
            }
            otherwise!('de, Choice::default(); bool i64 u64 f64 str unit seq);
        }
        d.deserialize_any(V)
    }
}

/// The characters of a `message` or `delta`'s `content` string (anything else: 0).
struct Content(u64);

impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Content;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a message")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Content, A::Error> {
                let mut n = 0;
                while let Some(k) = m.next_key_seed(KeyIn(&["content"]))? {
                    if k == 0 {
                        n = m.next_value::<Chars>()?.0;
                    } else {
                        m.next_value::<Checked>()?;
                    }
                }
                Ok(Content(n))
            }
            otherwise!('de, Content(0); bool i64 u64 f64 str unit seq);
        }
        d.deserialize_any(V)
    }
}

/// The characters of a string, escapes decoded (anything else: 0).
struct Chars(u64);

impl<'de> Deserialize<'de> for Chars {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Chars;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("text")
            }
            fn visit_str<E>(self, s: &str) -> Result<Chars, E> {
                Ok(Chars(s.chars().count() as u64))
            }
            otherwise!('de, Chars(0); bool i64 u64 f64 unit seq map);
        }
        d.deserialize_any(V)
    }
}

/// Whether a value is anything but `null`.
struct NotNull(bool);

impl<'de> Deserialize<'de> for NotNull {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NotNull;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_unit<E>(self) -> Result<NotNull, E> {
                Ok(NotNull(false))
            }
            otherwise!('de, NotNull(true); bool i64 u64 f64 str seq map);
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
pub(crate) mod tests;
