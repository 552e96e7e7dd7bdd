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
    let mut at = 0;
    for (a, b) in spans {
        out.extend_from_slice(&json[at..a]);
        out.push(b'"');
        out.extend_from_slice(id.as_bytes());
        out.push(b'"');
        at = b;
    }
    out.extend_from_slice(&json[at..]);
    Some(out)
}

/// The byte spans (quotes included) of the string values of the top-level key `id`; `None`
/// when `json` is not an object this scanner can walk or has no such value.
fn top_level_id_strings(json: &[u8]) -> Option<Vec<(usize, usize)>> {
    let mut spans = Vec::new();
    let mut i = skip_ws(json, 0);
    if json.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(json, i + 1);
    if json.get(i) == Some(&b'}') {
        return None;
    }
    loop {
        if json.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(json, i)?;
        let is_id = &json[i..key_end] == b"\"id\"";
        i = skip_ws(json, key_end);
        if json.get(i) != Some(&b':') {
            return None;
        }
        let start = skip_ws(json, i + 1);
        let end = value_end(json, start)?;
        if is_id && json.get(start) == Some(&b'"') {
            spans.push((start, end));
        }
        i = skip_ws(json, end);
        match json.get(i) {
            Some(b',') => i = skip_ws(json, i + 1),
            Some(b'}') => break,
            _ => return None,
        }
    }
    (!spans.is_empty()).then_some(spans)
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

    #[test]
    fn values_are_stamped_only_where_an_id_is() {
        let mut v = json!({"id": "u", "x": 1});
        stamp_value(&mut v, "req-1");
        assert_eq!(v, json!({"id": "req-1", "x": 1}));
        let mut v = json!({"object": "list"});
        stamp_value(&mut v, "req-1");
        assert_eq!(v, json!({"object": "list"}));
    }
}
