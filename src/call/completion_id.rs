//! The id a caller receives for a completion (API.md §9): every chat and text completion
//! answered through the OpenAI-shaped routes — mock, relayed as the upstream sent it,
//! translated, answers and stream chunks alike — carries the call's request id as its top-level
//! `id`, the value of the `x-litellm-call-id` header and the spend-log row's `request_id`. So
//! `/spend/logs?request_id=<the completion's id>` finds the call, as with LiteLLM. An upstream's
//! own ids are not used: they need not be unique (the spend log's `request_id` is), and the
//! header is sent before a stream's first event.
//!
//! A relayed answer is not re-serialized: only the bytes of its top-level `"id"` string are
//! replaced (`stamp_bytes`), the rest goes out as the upstream wrote it. Owns only that; what
//! is relayed, and when, is `relay`'s.

use crate::upstream::usage::{Reported, ReportedDe};
use serde::de::IgnoredAny;
use serde_json::Value;

/// Sets `v`'s top-level `id` to `id` when `v` is an object that has one.
pub(super) fn stamp_value(v: &mut Value, id: &str) {
    if let Some(slot) = v.as_object_mut().and_then(|o| o.get_mut("id")) {
        *slot = Value::String(id.to_string());
    }
}

/// `json` (one JSON object's text) with every top-level `"id"` whose value is a string set to
/// `id`; `None` when there is none or each already is `id` (the bytes go out unchanged).
/// `id` is a request id (a UUID): nothing in it needs escaping.
pub(super) fn stamp_bytes(json: &[u8], id: &str) -> Option<Vec<u8>> {
    let spans = top_level_id_strings(json)?;
    let is_id =
        |&(a, b): &(usize, usize)| b - a == id.len() + 2 && &json[a + 1..b - 1] == id.as_bytes();
    if spans.iter().all(is_id) {
        return None;
    }
    let mut out = Vec::with_capacity(json.len() + id.len() + 2);
    write_spans(json, &spans, id, &mut out);
    Some(out)
}

/// The most top-level `id` strings [`scan_answer`] keeps track of (an answer has one).
const MAX_IDS: usize = 4;

/// A relayed JSON answer read in one pass ([`scan_answer`]): its `usage` and where its
/// top-level `id` strings are.
#[derive(Debug)]
pub(super) struct Scanned {
    /// The answer's `usage` (`None`: absent or `null`).
    pub usage: Option<Reported>,
    ids: [(usize, usize); MAX_IDS],
    n_ids: usize,
}

/// One pass over a whole answer instead of two (issue 17): the top-level object is walked
/// here, every value in it is checked by serde_json (as `UsageOnly`'s parse checks it), `usage`
/// is read by the same reader (`usage::ReportedDe`), and the spans of the top-level `id`
/// strings are kept for [`Scanned::stamp`]. `None` when this walk does not take `json` (not an
/// object, a key with an escape or a non-ASCII byte, `usage` twice, more than [`MAX_IDS`] ids,
/// any syntax error): the caller then reads it as before (`UsageOnly`, `stamp_bytes`), which
/// also words the error.
pub(super) fn scan_answer(json: &[u8]) -> Option<Scanned> {
    let mut out = Scanned {
        usage: None,
        ids: [(0, 0); MAX_IDS],
        n_ids: 0,
    };
    let mut usage_seen = false;
    let mut i = skip_ws(json, 0);
    if json.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(json, i + 1);
    if json.get(i) == Some(&b'}') {
        return (skip_ws(json, i + 1) == json.len()).then_some(out);
    }
    loop {
        if json.get(i) != Some(&b'"') {
            return None;
        }
        // A plain key: printable ASCII without escapes (anything else goes the old way).
        let key_len = json[i + 1..].iter().position(|&c| c == b'"')?;
        let key = &json[i + 1..i + 1 + key_len];
        if !key.iter().all(|&c| (0x20..0x7f).contains(&c) && c != b'\\') {
            return None;
        }
        i = skip_ws(json, i + key_len + 2);
        if json.get(i) != Some(&b':') {
            return None;
        }
        let start = skip_ws(json, i + 1);
        let tail = json.get(start..)?;
        let read = if key == b"usage" {
            if std::mem::replace(&mut usage_seen, true) {
                return None;
            }
            let mut values = serde_json::Deserializer::from_slice(tail).into_iter();
            let usage: Option<ReportedDe> = values.next()?.ok()?;
            out.usage = usage.map(|u| u.0);
            values.byte_offset()
        } else {
            // Checked and skipped as `UsageOnly`'s parse skips it (nothing built).
            let mut values = serde_json::Deserializer::from_slice(tail).into_iter();
            let _: IgnoredAny = values.next()?.ok()?;
            values.byte_offset()
        };
        let end = start + read;
        if key == b"id" && json[start] == b'"' {
            *out.ids.get_mut(out.n_ids)? = (start, end);
            out.n_ids += 1;
        }
        i = skip_ws(json, end);
        match json.get(i) {
            Some(b',') => i = skip_ws(json, i + 1),
            Some(b'}') => break,
            _ => return None,
        }
    }
    (skip_ws(json, i + 1) == json.len()).then_some(out)
}

impl Scanned {
    /// Sets every top-level `id` string of the answer `json` (the bytes scanned) to `id`, in
    /// place: no copy of the answer (a span of another length moves only what follows it).
    /// `id` is a request id (a UUID): nothing in it needs escaping.
    pub(super) fn stamp(&self, json: &mut Vec<u8>, id: &str) {
        let new = id.len() + 2;
        for &(a, b) in self.ids[..self.n_ids].iter().rev() {
            let (old, len) = (b - a, json.len());
            if new > old {
                json.resize(len + new - old, 0);
                json.copy_within(b..len, a + new);
            } else if new < old {
                json.copy_within(b..len, a + new);
                json.truncate(len - (old - new));
            }
            json[a] = b'"';
            json[a + 1..a + new - 1].copy_from_slice(id.as_bytes());
            json[a + new - 1] = b'"';
        }
    }
}

/// Appends `json` to `out` as [`stamp_bytes`] would return it (every top-level `"id"` string
/// set to `id`; unchanged when there is none), without a vector of its own: a stream's event
/// goes straight into the relay's output buffer.
pub(super) fn stamp_into(json: &[u8], id: &str, out: &mut Vec<u8>) {
    let before = out.len();
    let mut at = 0;
    let walked = walk_top_level_ids(json, |a, b| {
        out.extend_from_slice(&json[at..a]);
        out.push(b'"');
        out.extend_from_slice(id.as_bytes());
        out.push(b'"');
        at = b;
    });
    if walked {
        out.extend_from_slice(&json[at..]);
    } else {
        out.truncate(before);
        out.extend_from_slice(json);
    }
}

/// Appends `json` to `out` with each of `spans` (quotes included, in order: the top-level
/// `"id"` strings an event's read found, `usage::event::IdSpans`) set to `id`: what
/// [`stamp_into`] writes, without walking `json` a second time. Spans that do not lie in order
/// in `json` (never, as the read keeps them) go the walking way.
pub(super) fn stamp_spans_into(json: &[u8], spans: &[(usize, usize)], id: &str, out: &mut Vec<u8>) {
    let in_order = spans.iter().try_fold(0, |at, &(a, b)| {
        (at <= a && a < b && b <= json.len()).then_some(b)
    });
    if in_order.is_none() {
        return stamp_into(json, id, out);
    }
    write_spans(json, spans, id, out);
}

/// Appends `json` to `out` with each of `spans` (in order, within `json`) replaced by `id` in
/// quotes: the one writer behind [`stamp_bytes`] and [`stamp_spans_into`].
fn write_spans(json: &[u8], spans: &[(usize, usize)], id: &str, out: &mut Vec<u8>) {
    let mut at = 0;
    for &(a, b) in spans {
        out.extend_from_slice(&json[at..a]);
        out.push(b'"');
        out.extend_from_slice(id.as_bytes());
        out.push(b'"');
        at = b;
    }
    out.extend_from_slice(&json[at..]);
}

/// The byte spans (quotes included) of the string values of the top-level key `id`; `None`
/// when `json` is not an object this scanner can walk or has no such value.
fn top_level_id_strings(json: &[u8]) -> Option<Vec<(usize, usize)>> {
    let mut spans = Vec::new();
    let walked = walk_top_level_ids(json, |a, b| spans.push((a, b)));
    (walked && !spans.is_empty()).then_some(spans)
}

/// Calls `found` with the span (quotes included) of each string value of the top-level key
/// `id`, in order; false when `json` is not an object this scanner can walk (the spans
/// reported so far are then to be ignored).
fn walk_top_level_ids(json: &[u8], mut found: impl FnMut(usize, usize)) -> bool {
    let mut i = skip_ws(json, 0);
    if json.get(i) != Some(&b'{') {
        return false;
    }
    i = skip_ws(json, i + 1);
    if json.get(i) == Some(&b'}') {
        return true;
    }
    loop {
        if json.get(i) != Some(&b'"') {
            return false;
        }
        let Some(key_end) = string_end(json, i) else {
            return false;
        };
        let is_id = &json[i..key_end] == b"\"id\"";
        i = skip_ws(json, key_end);
        if json.get(i) != Some(&b':') {
            return false;
        }
        let start = skip_ws(json, i + 1);
        let Some(end) = value_end(json, start) else {
            return false;
        };
        if is_id && json.get(start) == Some(&b'"') {
            found(start, end);
        }
        i = skip_ws(json, end);
        match json.get(i) {
            Some(b',') => i = skip_ws(json, i + 1),
            Some(b'}') => return true,
            _ => return false,
        }
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b
        .get(i)
        .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
    {
        i += 1;
    }
    i
}

/// The index after the string that opens at `i` (a `"`).
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
    None
}

/// The index after the value that starts at `i`.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
            {
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stamped(s: &str) -> Option<String> {
        stamp_bytes(s.as_bytes(), "req-1").map(|b| String::from_utf8(b).unwrap_or_default())
    }

    #[test]
    fn the_top_level_id_is_replaced_and_nothing_else() {
        let s = r#"{"id":"chatcmpl-x","object":"chat.completion","choices":[{"message":{"id":"inner","content":"say \"id\": {]"}}],"usage":{"prompt_tokens":1}}"#;
        let out = stamped(s).unwrap_or_default();
        let v: Value = serde_json::from_str(&out).unwrap_or_default();
        assert_eq!(v["id"], "req-1");
        assert_eq!(v["choices"][0]["message"]["id"], "inner");
        assert_eq!(v["choices"][0]["message"]["content"], "say \"id\": {]");
        assert_eq!(out, s.replacen("chatcmpl-x", "req-1", 1));
        // Whitespace, the id last, escapes in other strings.
        let s =
            "{ \"a\\\"\" : [1, {\"id\": 2}] ,\n \"n\": -1.5e3, \"t\": true, \"id\" : \"x\\\"y\" }";
        let v: Value = serde_json::from_str(&stamped(s).unwrap_or_default()).unwrap_or_default();
        assert_eq!(v["id"], "req-1");
        assert_eq!(v["a\""], json!([1, {"id": 2}]));
        assert_eq!(v["n"], -1500.0);
        // Each top-level id is stamped, also when one already is the id; a near miss is not it.
        assert_eq!(
            stamped(r#"{"id":"req-1","id":"req-10","x":{"id":"y"}}"#).as_deref(),
            Some(r#"{"id":"req-1","id":"req-1","x":{"id":"y"}}"#)
        );
        assert_eq!(
            stamped(r#"{"id":"req-"}"#).as_deref(),
            Some(r#"{"id":"req-1"}"#)
        );
    }

    #[test]
    fn nothing_to_stamp_leaves_the_bytes_alone() {
        for s in [
            r#"{"object":"list","data":[{"id":"x"}]}"#,
            r#"{"id":"req-1","object":"x"}"#,
            r#"{"id":"req-1","id" : "req-1"}"#,
            r#"{"id":7}"#,
            r#"{}"#,
            r#"[{"id":"x"}]"#,
            r#"{"id":"x""#,
            "not json",
            "",
        ] {
            assert_eq!(stamped(s), None, "{s}");
        }
    }

    /// `stamp_into` appends what `stamp_bytes` returns (or the bytes unchanged).
    #[test]
    fn stamping_into_a_buffer_is_stamping() {
        for s in [
            r#"{"id":"chatcmpl-x","choices":[{"delta":{"id":"in"}}],"id":"y"}"#,
            r#"{"id":"req-1"}"#,
            r#"{"id":7,"x":"\"id\":\"z\""}"#,
            r#"{"id":"x""#,
            r#"{"id":"x",}"#,
            r#"[{"id":"x"}]"#,
            "not json",
            "",
        ] {
            let mut out = b"data: ".to_vec();
            stamp_into(s.as_bytes(), "req-1", &mut out);
            let mut want = b"data: ".to_vec();
            want.extend(stamp_bytes(s.as_bytes(), "req-1").unwrap_or_else(|| s.into()));
            assert_eq!(out, want, "{s}");
        }
    }

    /// An OpenAI answer as upstreams write it is read by the one-pass scan, usage and id.
    #[test]
    fn a_usual_answer_is_scanned_in_one_pass() {
        let s = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"bench","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! \"usage\": {}"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":14,"total_tokens":26}}"#;
        let scanned = scan_answer(s.as_bytes()).expect("scanned");
        let u = scanned.usage.expect("usage");
        assert_eq!(u.prompt, Some(crate::upstream::usage::Figure::Count(12)));
        assert_eq!(
            u.completion,
            Some(crate::upstream::usage::Figure::Count(14))
        );
        let mut b = s.as_bytes().to_vec();
        scanned.stamp(&mut b, "req-1");
        assert_eq!(b, s.replacen("chatcmpl-bench", "req-1", 1).into_bytes());
        // An id of the same length is overwritten where it is.
        let mut b = s.as_bytes().to_vec();
        scanned.stamp(&mut b, "req-1234567890");
        assert_eq!(
            b,
            s.replacen("chatcmpl-bench", "req-1234567890", 1)
                .into_bytes()
        );
    }

    #[test]
    fn values_are_stamped_only_where_an_id_is() {
        let mut v = json!({"id": "u", "x": 1});
        stamp_value(&mut v, "req-1");
        assert_eq!(v, json!({"id": "req-1", "x": 1}));
        let mut v = json!({"object": "list"});
        stamp_value(&mut v, "req-1");
        assert_eq!(v, json!({"object": "list"}));
    }

    mod prop {
        use super::super::*;
        use crate::upstream::usage::UsageOnly;
        use proptest::prelude::*;
        use proptest::strategy::ValueTree;

        /// A JSON value as an upstream (lying or not) may write it.
        fn value() -> impl Strategy<Value = String> {
            let leaf = prop_oneof![
                Just("null".to_string()),
                Just("true".to_string()),
                Just("\"usage\": {\"prompt_tokens\": 1}".to_string()),
                Just(r#""id\"x\u00e9\n""#.to_string()),
                "[a-z \"{}:,]{0,8}".prop_map(|t| serde_json::to_string(&t).unwrap_or_default()),
                any::<i64>().prop_map(|n| n.to_string()),
                any::<u64>().prop_map(|n| n.to_string()),
                Just("-0.0".to_string()),
                Just("12.0".to_string()),
                Just("1e400".to_string()),
                Just("123456789012345678901234567890".to_string()),
                (0u64..20_000_000).prop_map(|n| n.to_string()),
            ];
            leaf.prop_recursive(3, 24, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4)
                        .prop_map(|v| format!("[{}]", v.join(","))),
                    prop::collection::vec((key(), inner), 0..4).prop_map(|kv| {
                        let kv: Vec<String> =
                            kv.into_iter().map(|(k, v)| format!("{k}: {v}")).collect();
                        format!("{{{}}}", kv.join(", "))
                    }),
                ]
            })
        }

        fn key() -> impl Strategy<Value = String> {
            prop_oneof![
                Just(r#""id""#.to_string()),
                Just(r#""usage""#.to_string()),
                Just(r#""prompt_tokens""#.to_string()),
                Just(r#""completion_tokens""#.to_string()),
                Just(r#""total_tokens""#.to_string()),
                Just(r#""prompt_tokens_details""#.to_string()),
                Just(r#""cached_tokens""#.to_string()),
                Just(r#""cache_read_input_tokens""#.to_string()),
                Just(r#""i\u0064""#.to_string()),
                Just(r#""us\u0061ge""#.to_string()),
                Just(r#""usagé""#.to_string()),
                Just(r#""choices""#.to_string()),
                Just(r#""model""#.to_string()),
            ]
        }

        /// An answer: a top-level object of such keys and values (usage objects likely),
        /// in odd spacing, sometimes cut short or with a byte changed.
        fn answer() -> impl Strategy<Value = Vec<u8>> {
            let usage = prop::collection::vec((key(), value()), 0..5).prop_map(|kv| {
                let kv: Vec<String> = kv.into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("{{{}}}", kv.join(","))
            });
            let member = prop_oneof![
                (key(), value()),
                usage.prop_map(|u| (r#""usage""#.to_string(), u)),
                "[a-z-]{0,40}".prop_map(|i| (r#""id""#.to_string(), format!("\"{i}\""))),
            ];
            let ws = prop_oneof![Just(""), Just(" "), Just("\n\t "), Just("\r\n")];
            (
                prop::collection::vec((member, ws.clone()), 0..6),
                ws,
                any::<u16>(),
                0u8..8,
            )
                .prop_map(|(members, ws, at, how)| {
                    let body: Vec<String> = members
                        .into_iter()
                        .map(|((k, v), w)| format!("{w}{k}{w}:{w}{v}{w}"))
                        .collect();
                    let mut b = format!("{ws}{{{}}}{ws}", body.join(",")).into_bytes();
                    let at = at as usize % (b.len() + 1);
                    match how {
                        0 => b.truncate(at),
                        1 if at < b.len() => b[at] = b"{}[]\",:x\\0"[at % 10],
                        2 => b.insert(at, b','),
                        _ => {}
                    }
                    b
                })
        }

        /// The reading of an answer before the one-pass scan: `UsageOnly`, then `stamp_bytes`.
        fn old(b: &[u8], id: &str) -> Option<(Option<Reported>, Vec<u8>)> {
            let u = serde_json::from_slice::<UsageOnly>(b).ok()?;
            let stamped = stamp_bytes(b, id).unwrap_or_else(|| b.to_vec());
            Some((u.usage.map(|r| r.0), stamped))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(4000))]
            /// Where the scan takes an answer, it reads what the old reader read (the same
            /// usage, figure by figure, lying or not) and stamps the same bytes; where it does
            /// not, the old reader is used, so every answer is read as before.
            #[test]
            fn the_scan_reads_answers_as_the_old_reader(b in answer(),
                                                        id in "[a-f0-9-]{1,40}") {
                if let Some(s) = scan_answer(&b) {
                    let Some((usage, stamped)) = old(&b, &id) else {
                        panic!("the scan took what the old reader refused: {}",
                               String::from_utf8_lossy(&b));
                    };
                    prop_assert_eq!(s.usage, usage, "{}", String::from_utf8_lossy(&b));
                    let mut mine = b.clone();
                    s.stamp(&mut mine, &id);
                    prop_assert_eq!(mine, stamped);
                }
            }
        }

        /// The scan takes most well-formed answers (the property above is not vacuous).
        #[test]
        fn the_scan_takes_most_well_formed_answers() {
            let mut runner = proptest::test_runner::TestRunner::deterministic();
            let (mut valid, mut taken) = (0, 0);
            for _ in 0..2000 {
                let b = answer()
                    .new_tree(&mut runner)
                    .map(|t| t.current())
                    .unwrap_or_default();
                if old(&b, "r").is_some() {
                    valid += 1;
                    taken += usize::from(scan_answer(&b).is_some());
                }
            }
            assert!(valid > 500 && taken * 2 > valid, "{taken} of {valid}");
        }
    }
}
