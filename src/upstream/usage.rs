//! Token figures an upstream reports, checked before they become spend (issue 11). An upstream
//! is a program we do not control: its `usage` may be missing, negative, fractional, a string,
//! astronomically large or self-contradictory. Spend and rate-limit counters must never go
//! negative, infinite or absurd because of it, and nothing here may panic or overflow.
//!
//! The rule, per figure (`prompt_tokens`, `completion_tokens`):
//! - an integer in `0..=MAX_TOKENS` (an integral float such as `12.0` too) is taken;
//! - anything else that is present (negative, fractional, NaN-like strings, `true`, `null`,
//!   above `MAX_TOKENS`) is *invalid*: a warning is logged and the figure is estimated as if
//!   it were missing — the prompt from the request (one token per 4 characters), the
//!   completion from the answer's text (embeddings: 0);
//! - a completion above what the request allowed (`max_tokens` × `n`) is clamped to that
//!   (warning logged): the upstream cannot have produced more than it was asked for;
//! - `total_tokens` is never billed; below `prompt + completion` it contradicts the figures,
//!   which is logged, and the two (already bounded) figures are billed;
//! - cache reads and writes (OpenAI's `prompt_tokens_details.cached_tokens` /
//!   `cache_creation_tokens` / `cache_write_tokens`, else Anthropic's top-level
//!   `cache_read_input_tokens` / `cache_creation_input_tokens`, as LiteLLM reads them) are part
//!   of `prompt_tokens`: an invalid one counts 0, and together they are clamped to the billed
//!   prompt (reads first), so a lying upstream cannot move more tokens to a cheaper or dearer
//!   price than the prompt it reported.
//!
//! The answer is parsed without building a tree of it: a `usage` or `choices` of any size
//! costs no memory beyond the bytes already read.

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;
use std::fmt;

/// The most tokens one call can be billed for per figure. The largest context windows in use
/// are ~10M tokens; a figure beyond this is not a count.
pub const MAX_TOKENS: u64 = 10_000_000;

/// One reported figure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Figure {
    Count(u64),
    /// Present but not a token count.
    Invalid,
}

/// A `usage` object as the upstream sent it (fields absent are `None`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Reported {
    pub prompt: Option<Figure>,
    pub completion: Option<Figure>,
    pub total: Option<Figure>,
    /// Prompt tokens read from the provider's prompt cache.
    pub cache_read: Option<Figure>,
    /// Prompt tokens written to the provider's prompt cache.
    pub cache_write: Option<Figure>,
    /// `usage` was present but not an object.
    pub malformed: bool,
}

/// What a call is billed for, every figure bounded: `prompt` includes `cache_read` and
/// `cache_write` (`cache_read + cache_write <= prompt`), as LiteLLM's `prompt_tokens` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Billed {
    pub prompt: u64,
    pub completion: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

impl Billed {
    /// Prompt tokens neither read from nor written to a cache (billed at the input price).
    pub fn uncached_prompt(&self) -> u64 {
        self.prompt
            .saturating_sub(self.cache_read)
            .saturating_sub(self.cache_write)
    }
}

fn figure_of_f64(x: f64) -> Figure {
    if x.is_finite() && x >= 0.0 && x.fract() == 0.0 && x <= MAX_TOKENS as f64 {
        Figure::Count(x as u64)
    } else {
        Figure::Invalid
    }
}

fn figure_of_u64(n: u64) -> Figure {
    if n <= MAX_TOKENS {
        Figure::Count(n)
    } else {
        Figure::Invalid
    }
}

impl Figure {
    fn of_value(v: &Value) -> Figure {
        match v {
            Value::Number(n) => match (n.as_u64(), n.as_f64()) {
                (Some(u), _) => figure_of_u64(u),
                (None, Some(f)) => figure_of_f64(f),
                _ => Figure::Invalid,
            },
            _ => Figure::Invalid,
        }
    }
}

impl Reported {
    /// From an already parsed `usage` value (stream events are parsed whole anyway).
    pub fn of_value(u: &Value) -> Reported {
        let Some(o) = u.as_object() else {
            return Reported {
                malformed: true,
                ..Reported::default()
            };
        };
        let details = o.get("prompt_tokens_details").filter(|d| d.is_object());
        let detail = |k: &str| details.and_then(|d| d.get(k)).filter(|v| !v.is_null());
        let top = |k: &str| o.get(k).filter(|v| !v.is_null());
        Reported {
            prompt: o.get("prompt_tokens").map(Figure::of_value),
            completion: o.get("completion_tokens").map(Figure::of_value),
            total: o.get("total_tokens").map(Figure::of_value),
            cache_read: detail("cached_tokens")
                .or_else(|| top("cache_read_input_tokens"))
                .map(Figure::of_value),
            cache_write: detail("cache_write_tokens")
                .or_else(|| detail("cache_creation_tokens"))
                .or_else(|| top("cache_creation_input_tokens"))
                .map(Figure::of_value),
            malformed: false,
        }
    }
}

/// What the request lets us estimate and bound.
pub struct Bounds {
    /// The prompt estimate from the request.
    pub prompt_estimate: u64,
    /// The most completion tokens the request allowed (`max_tokens` × `n`), if it said.
    pub completion_cap: Option<u64>,
    /// Embeddings have no completion.
    pub embedding: bool,
}

/// The tokens billed for a call, by the rule in the module docs. `usage`: what the upstream
/// reported (`None`: no `usage` at all); `completion_estimate`: counts the answer's text, called
/// only when needed; `what` names the call in warnings (formatted only if one is logged).
pub fn billable(
    usage: Option<Reported>,
    bounds: &Bounds,
    completion_estimate: impl FnOnce() -> u64,
    what: &dyn fmt::Display,
) -> Billed {
    let u = usage.unwrap_or_default();
    if u.malformed {
        log::warn!("{what}: the upstream's `usage` is not an object; estimated");
    }
    let take = |f: Option<Figure>, name: &str, estimate: &mut dyn FnMut() -> u64| match f {
        Some(Figure::Count(n)) => n,
        Some(Figure::Invalid) => {
            log::warn!("{what}: the upstream's usage.{name} is not a token count; estimated");
            estimate()
        }
        None => estimate(),
    };
    let prompt = take(u.prompt, "prompt_tokens", &mut || bounds.prompt_estimate);
    let mut est = Some(completion_estimate);
    let mut completion = if bounds.embedding {
        // Embeddings report no completion; anything there is not billed.
        0
    } else {
        take(u.completion, "completion_tokens", &mut || {
            est.take().map_or(0, |f| f()).min(MAX_TOKENS)
        })
    };
    if let Some(cap) = bounds.completion_cap.filter(|c| completion > *c) {
        log::warn!(
            "{what}: the upstream reports {completion} completion tokens, more than the \
             request allowed ({cap}); clamped"
        );
        completion = cap;
    }
    if let Some(Figure::Count(t)) = u.total {
        if t < prompt.saturating_add(completion) {
            log::warn!(
                "{what}: the upstream's usage.total_tokens ({t}) is below prompt + completion \
                 ({prompt} + {completion}); the figures are billed"
            );
        }
    }
    let cached = |f: Option<Figure>, name: &str| match f {
        Some(Figure::Count(n)) => n,
        Some(Figure::Invalid) => {
            log::warn!("{what}: the upstream's {name} is not a token count; 0 billed as such");
            0
        }
        None => 0,
    };
    let read = cached(u.cache_read, "cache read figure");
    let write = cached(u.cache_write, "cache write figure");
    let cache_read = read.min(prompt);
    let cache_write = write.min(prompt - cache_read);
    if (cache_read, cache_write) != (read, write) {
        log::warn!(
            "{what}: the upstream reports {read} cache read and {write} cache write tokens, \
             more than the {prompt} prompt tokens; clamped"
        );
    }
    Billed {
        prompt,
        completion,
        cache_read,
        cache_write,
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing a non-stream answer without a tree

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

/// `Reported`, read from any JSON value (a `usage` that is not an object is `malformed`).
pub struct ReportedDe(pub Reported);

impl<'de> Deserialize<'de> for ReportedDe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ReportedDe;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a usage object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<ReportedDe, A::Error> {
                let mut r = Reported::default();
                // Anthropic-style top-level cache figures, used when the details have none.
                let (mut top_read, mut top_write) = (None, None);
                while let Some(k) = m.next_key::<std::borrow::Cow<'de, str>>()? {
                    let slot = match &*k {
                        "prompt_tokens" => &mut r.prompt,
                        "completion_tokens" => &mut r.completion,
                        "total_tokens" => &mut r.total,
                        "cache_read_input_tokens" | "cache_creation_input_tokens" => {
                            // `null` is the same as absent for these.
                            let f = m.next_value::<Option<FigureDe>>()?.map(|f| f.0);
                            if k == "cache_read_input_tokens" {
                                top_read = f;
                            } else {
                                top_write = f;
                            }
                            continue;
                        }
                        "prompt_tokens_details" => {
                            let d = m.next_value::<DetailsDe>()?;
                            r.cache_read = d.read;
                            r.cache_write = d.write;
                            continue;
                        }
                        _ => {
                            m.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    *slot = Some(m.next_value::<FigureDe>()?.0);
                }
                r.cache_read = r.cache_read.or(top_read);
                r.cache_write = r.cache_write.or(top_write);
                Ok(ReportedDe(r))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<ReportedDe, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(malformed())
            }
            fn visit_str<E>(self, _: &str) -> Result<ReportedDe, E> {
                Ok(malformed())
            }
            fn visit_bool<E>(self, _: bool) -> Result<ReportedDe, E> {
                Ok(malformed())
            }
            fn visit_i64<E>(self, _: i64) -> Result<ReportedDe, E> {
                Ok(malformed())
            }
            fn visit_u64<E>(self, _: u64) -> Result<ReportedDe, E> {
                Ok(malformed())
            }
            fn visit_f64<E>(self, _: f64) -> Result<ReportedDe, E> {
                Ok(malformed())
            }
            fn visit_unit<E>(self) -> Result<ReportedDe, E> {
                // `"usage": null` is the same as no usage.
                Ok(ReportedDe(Reported::default()))
            }
        }
        fn malformed() -> ReportedDe {
            ReportedDe(Reported {
                malformed: true,
                ..Reported::default()
            })
        }
        d.deserialize_any(V)
    }
}

/// The cache figures of `prompt_tokens_details` (anything but an object has none).
#[derive(Default)]
struct DetailsDe {
    read: Option<Figure>,
    write: Option<Figure>,
}

impl<'de> Deserialize<'de> for DetailsDe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = DetailsDe;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("prompt token details")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<DetailsDe, A::Error> {
                let mut out = DetailsDe::default();
                let mut creation = None;
                while let Some(k) = m.next_key::<std::borrow::Cow<'de, str>>()? {
                    let slot = match &*k {
                        "cached_tokens" => &mut out.read,
                        "cache_write_tokens" => &mut out.write,
                        "cache_creation_tokens" => &mut creation,
                        _ => {
                            m.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    *slot = m.next_value::<Option<FigureDe>>()?.map(|f| f.0);
                }
                out.write = out.write.or(creation);
                Ok(out)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<DetailsDe, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(DetailsDe::default())
            }
            fn visit_str<E>(self, _: &str) -> Result<DetailsDe, E> {
                Ok(DetailsDe::default())
            }
            fn visit_bool<E>(self, _: bool) -> Result<DetailsDe, E> {
                Ok(DetailsDe::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<DetailsDe, E> {
                Ok(DetailsDe::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<DetailsDe, E> {
                Ok(DetailsDe::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<DetailsDe, E> {
                Ok(DetailsDe::default())
            }
            fn visit_unit<E>(self) -> Result<DetailsDe, E> {
                Ok(DetailsDe::default())
            }
        }
        d.deserialize_any(V)
    }
}

struct FigureDe(Figure);

impl<'de> Deserialize<'de> for FigureDe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FigureDe;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a token count")
            }
            fn visit_u64<E>(self, n: u64) -> Result<FigureDe, E> {
                Ok(FigureDe(figure_of_u64(n)))
            }
            fn visit_i64<E>(self, n: i64) -> Result<FigureDe, E> {
                Ok(FigureDe(match u64::try_from(n) {
                    Ok(u) => figure_of_u64(u),
                    Err(_) => Figure::Invalid,
                }))
            }
            fn visit_f64<E>(self, x: f64) -> Result<FigureDe, E> {
                Ok(FigureDe(figure_of_f64(x)))
            }
            fn visit_str<E>(self, _: &str) -> Result<FigureDe, E> {
                Ok(FigureDe(Figure::Invalid))
            }
            fn visit_bool<E>(self, _: bool) -> Result<FigureDe, E> {
                Ok(FigureDe(Figure::Invalid))
            }
            fn visit_unit<E>(self) -> Result<FigureDe, E> {
                Ok(FigureDe(Figure::Invalid))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<FigureDe, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(FigureDe(Figure::Invalid))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<FigureDe, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(FigureDe(Figure::Invalid))
            }
        }
        d.deserialize_any(V)
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

/// The characters of the completion text of a parsed answer or stream event.
pub fn completion_chars(v: &Value) -> u64 {
    let Some(choices) = v.get("choices").and_then(Value::as_array) else {
        return 0;
    };
    let chars = |x: Option<&Value>| x.and_then(Value::as_str).map_or(0, |s| s.chars().count());
    fn content<'a>(c: &'a Value, k: &str) -> Option<&'a Value> {
        c.get(k)?.get("content")
    }
    choices
        .iter()
        .map(|c| {
            (chars(content(c, "message")) + chars(content(c, "delta")) + chars(c.get("text")))
                as u64
        })
        .fold(0u64, u64::saturating_add)
}

/// Tokens for `chars` characters: one per 4, at least 1 for non-empty text.
pub fn tokens_of_chars(chars: u64) -> u64 {
    if chars == 0 {
        0
    } else {
        chars.div_ceil(4).max(1)
    }
}

#[cfg(test)]
mod tests;
