//! Reading an answer's `usage` and completion text without building a tree of it: a `usage`
//! or `choices` of any size costs no memory beyond the bytes already read. The readers here are
//! the rule of the parent module read from JSON text; `Reported::of_value` is the same rule
//! read from a parsed tree.
//!
//! What is not read is skipped by `S`: `IgnoredAny` (syntax only: a number out of range or a
//! lone surrogate escape passes, as the whole-answer readers always took them) or [`Checked`]
//! (every value checked as a `serde_json::Value` parse checks it, built into nothing: the
//! stream relay's events, which were parsed into a tree before).

use super::{figure_of_f64, figure_of_u64, Figure, Reported};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;
use std::marker::PhantomData;

/// The `usage` of an answer, every other field skipped.
#[derive(Deserialize)]
pub struct UsageOnly {
    pub usage: Option<ReportedDe>,
}

/// The characters of an answer's completion text (`choices[].message.content`,
/// `choices[].delta.content`, `choices[].text`), every other field skipped.
#[derive(Deserialize)]
pub struct ChoicesOnly {
    pub choices: Option<ChoiceChars>,
}

/// Any JSON value, checked as a `serde_json::Value` parse checks it (numbers in range, escapes
/// and surrogates in strings and keys, nesting depth), built into nothing. `IgnoredAny` checks
/// only the syntax.
pub struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Checked;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_unit<E>(self) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Checked, A::Error> {
                while s.next_element::<Checked>()?.is_some() {}
                Ok(Checked)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Checked, A::Error> {
                while m.next_key::<Checked>()?.is_some() {
                    m.next_value::<Checked>()?;
                }
                Ok(Checked)
            }
        }
        d.deserialize_any(V)
    }
}

/// A map key looked up in a list of names without allocating: its index in the list, or the
/// list's length for any other key (escapes in a key are decoded first, as a tree's keys are).
pub(super) struct KeyIn(pub &'static [&'static str]);

impl<'de> DeserializeSeed<'de> for KeyIn {
    type Value = usize;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIn {
    type Value = usize;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E>(self, s: &str) -> Result<usize, E> {
        Ok(self.0.iter().position(|n| *n == s).unwrap_or(self.0.len()))
    }
}

/// `Reported`, read from any JSON value (a `usage` that is not an object is `malformed`),
/// what it does not read skipped by `S`.
pub struct ReportedWith<S>(pub Reported, PhantomData<S>);

/// The whole-answer readers' `usage`: what is not read is checked for syntax only.
pub type ReportedDe = ReportedWith<IgnoredAny>;

impl<S> ReportedWith<S> {
    fn new(r: Reported) -> Self {
        ReportedWith(r, PhantomData)
    }

    fn malformed() -> Self {
        Self::new(Reported {
            malformed: true,
            ..Reported::default()
        })
    }
}

/// The keys of a `usage` object that are read.
const USAGE_KEYS: &[&str] = &[
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "prompt_tokens_details",
];

impl<'de, S: Deserialize<'de>> Deserialize<'de> for ReportedWith<S> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<S>(PhantomData<S>);
        impl<'de, S: Deserialize<'de>> Visitor<'de> for V<S> {
            type Value = ReportedWith<S>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a usage object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut r = Reported::default();
                // Anthropic-style top-level cache figures, used when the details have none.
                let (mut top_read, mut top_write) = (None, None);
                while let Some(k) = m.next_key_seed(KeyIn(USAGE_KEYS))? {
                    // `null` is the same as absent for the top-level cache figures.
                    let cache = |f: Option<FigureWith<S>>| f.map(|f| f.0);
                    match k {
                        0 => r.prompt = Some(m.next_value::<FigureWith<S>>()?.0),
                        1 => r.completion = Some(m.next_value::<FigureWith<S>>()?.0),
                        2 => r.total = Some(m.next_value::<FigureWith<S>>()?.0),
                        3 => top_read = cache(m.next_value()?),
                        4 => top_write = cache(m.next_value()?),
                        5 => {
                            let d = m.next_value::<DetailsWith<S>>()?;
                            r.cache_read = d.read;
                            r.cache_write = d.write;
                        }
                        _ => {
                            m.next_value::<S>()?;
                        }
                    }
                }
                r.cache_read = r.cache_read.or(top_read);
                r.cache_write = r.cache_write.or(top_write);
                Ok(ReportedWith::new(r))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                while s.next_element::<S>()?.is_some() {}
                Ok(ReportedWith::malformed())
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(ReportedWith::malformed())
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(ReportedWith::malformed())
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(ReportedWith::malformed())
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(ReportedWith::malformed())
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(ReportedWith::malformed())
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                // `"usage": null` is the same as no usage.
                Ok(ReportedWith::new(Reported::default()))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// The cache figures of `prompt_tokens_details` (anything but an object has none).
struct DetailsWith<S> {
    read: Option<Figure>,
    write: Option<Figure>,
    skip: PhantomData<S>,
}

impl<S> Default for DetailsWith<S> {
    fn default() -> Self {
        DetailsWith {
            read: None,
            write: None,
            skip: PhantomData,
        }
    }
}

impl<'de, S: Deserialize<'de>> Deserialize<'de> for DetailsWith<S> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<S>(PhantomData<S>);
        impl<'de, S: Deserialize<'de>> Visitor<'de> for V<S> {
            type Value = DetailsWith<S>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("prompt token details")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                const KEYS: &[&str] = &[
                    "cached_tokens",
                    "cache_write_tokens",
                    "cache_creation_tokens",
                ];
                let mut out = DetailsWith::default();
                let mut creation = None;
                while let Some(k) = m.next_key_seed(KeyIn(KEYS))? {
                    let slot = match k {
                        0 => &mut out.read,
                        1 => &mut out.write,
                        2 => &mut creation,
                        _ => {
                            m.next_value::<S>()?;
                            continue;
                        }
                    };
                    *slot = m.next_value::<Option<FigureWith<S>>>()?.map(|f| f.0);
                }
                out.write = out.write.or(creation);
                Ok(out)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                while s.next_element::<S>()?.is_some() {}
                Ok(DetailsWith::default())
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(DetailsWith::default())
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(DetailsWith::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(DetailsWith::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(DetailsWith::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(DetailsWith::default())
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(DetailsWith::default())
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// One figure, read from any JSON value (anything but a count in range is `Invalid`).
struct FigureWith<S>(Figure, PhantomData<S>);

impl<'de, S: Deserialize<'de>> Deserialize<'de> for FigureWith<S> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<S>(PhantomData<S>);
        impl<'de, S: Deserialize<'de>> Visitor<'de> for V<S> {
            type Value = FigureWith<S>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a token count")
            }
            fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
                Ok(FigureWith(figure_of_u64(n), PhantomData))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
                Ok(FigureWith(
                    match u64::try_from(n) {
                        Ok(u) => figure_of_u64(u),
                        Err(_) => Figure::Invalid,
                    },
                    PhantomData,
                ))
            }
            fn visit_f64<E>(self, x: f64) -> Result<Self::Value, E> {
                Ok(FigureWith(figure_of_f64(x), PhantomData))
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(FigureWith(Figure::Invalid, PhantomData))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(FigureWith(Figure::Invalid, PhantomData))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(FigureWith(Figure::Invalid, PhantomData))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                while s.next_element::<S>()?.is_some() {}
                Ok(FigureWith(Figure::Invalid, PhantomData))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                while m.next_entry::<S, S>()?.is_some() {}
                Ok(FigureWith(Figure::Invalid, PhantomData))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// The characters of the completion text in a `choices` array.
pub struct ChoiceChars(pub u64);

impl<'de> Deserialize<'de> for ChoiceChars {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Choice {
            message: Option<Content>,
            delta: Option<Content>,
            text: Option<StrChars>,
        }
        #[derive(Deserialize)]
        struct Content {
            content: Option<StrChars>,
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ChoiceChars;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of choices")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<ChoiceChars, A::Error> {
                let mut n = 0u64;
                while let Some(c) = s.next_element::<Option<Choice>>()? {
                    let Some(c) = c else { continue };
                    let of = |x: Option<Content>| x.and_then(|c| c.content).map_or(0, |s| s.0);
                    n = n
                        .saturating_add(of(c.message))
                        .saturating_add(of(c.delta))
                        .saturating_add(c.text.map_or(0, |s| s.0));
                }
                Ok(ChoiceChars(n))
            }
            fn visit_unit<E>(self) -> Result<ChoiceChars, E> {
                Ok(ChoiceChars(0))
            }
        }
        d.deserialize_any(V)
    }
}

/// The character count of a string; any other value counts 0 (and is skipped unbuilt).
struct StrChars(u64);

impl<'de> Deserialize<'de> for StrChars {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrChars;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("text")
            }
            fn visit_str<E>(self, s: &str) -> Result<StrChars, E> {
                Ok(StrChars(s.chars().count() as u64))
            }
            fn visit_u64<E>(self, _: u64) -> Result<StrChars, E> {
                Ok(StrChars(0))
            }
            fn visit_i64<E>(self, _: i64) -> Result<StrChars, E> {
                Ok(StrChars(0))
            }
            fn visit_f64<E>(self, _: f64) -> Result<StrChars, E> {
                Ok(StrChars(0))
            }
            fn visit_bool<E>(self, _: bool) -> Result<StrChars, E> {
                Ok(StrChars(0))
            }
            fn visit_unit<E>(self) -> Result<StrChars, E> {
                Ok(StrChars(0))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<StrChars, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(StrChars(0))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<StrChars, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(StrChars(0))
            }
        }
        d.deserialize_any(V)
    }
}
