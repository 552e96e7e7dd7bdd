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
// Parsing without a tree: answers (`de`) and stream events (`event`)

mod de;
pub mod event;
pub use de::{Checked, ChoiceChars, ChoicesOnly, ReportedDe, ReportedWith, UsageOnly};

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
