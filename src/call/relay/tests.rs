//! The relay's own pieces: the drain, the tally, and the tree-less reading of each event held
//! to the tree it replaced (the same tally, the same usage chunk dropped, the same events
//! scrubbed, so the same bytes out).

use super::*;
use serde_json::json;

/// What follows a stream is read to its end, but never more than `MAX_STREAM_DRAIN`.
#[test]
fn the_drain_reads_to_the_end_within_its_cap() {
    let mut small = std::io::Cursor::new(vec![7u8; 1000]);
    drain(&mut small);
    assert_eq!(small.position(), 1000);
    let mut big = std::io::Cursor::new(vec![7u8; 1 << 20]);
    drain(&mut big);
    assert_eq!(big.position(), MAX_STREAM_DRAIN);
}

#[test]
fn the_tally_counts_text_finish_and_usage() {
    let mut t = UsageTally::default();
    let delta = json!({"choices": [{"index": 0, "delta": {"content": "abcdefgh"},
                                    "finish_reason": null}]});
    assert!(!t.see(&delta));
    assert!(!t.finished && t.reported.is_none());
    assert_eq!(t.produced_chars, 8);
    let end = json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
    assert!(!t.see(&end));
    assert!(t.finished);
    // The usage chunk asked for on the caller's behalf: usage, no choices.
    let usage = json!({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}});
    assert!(t.see(&usage));
    assert!(t.reported.is_some());
    // Usage riding on a chunk with choices is not "usage only".
    let mut t = UsageTally::default();
    let both = json!({"choices": [{"index": 0, "delta": {"content": "x"}}],
                      "usage": {"prompt_tokens": 1}});
    assert!(!t.see(&both));
    assert!(t.reported.is_some() && !t.finished);
}

/// How an event was counted and relayed before it was read without a tree.
fn old_classify(data: &str, tally: &mut UsageTally, caller_wants_usage: bool) -> Relayed {
    match serde_json::from_str::<Value>(data) {
        Ok(v) => {
            let usage_only = tally.see(&v);
            if usage_only && !caller_wants_usage {
                Relayed::Dropped
            } else if v.get("error").is_some() {
                Relayed::Scrubbed
            } else {
                Relayed::Stamped
            }
        }
        Err(_) => Relayed::Scrubbed,
    }
}

mod props {
    use super::*;
    use crate::upstream::usage::event::tests::event;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1500))]
        /// A stream of generated events (lying usage, duplicate keys, escapes, events that are
        /// not JSON or not objects, cut bytes) is counted and relayed as before, event by
        /// event: the same decision (dropped, scrubbed, stamped: the bytes out follow from it
        /// and the data), and the same tally (usage reported, text counted, finished).
        #[test]
        fn a_stream_is_counted_and_relayed_as_before(
            events in prop::collection::vec(event(), 0..8),
            wants in any::<bool>(),
        ) {
            let (mut old, mut new) = (UsageTally::default(), UsageTally::default());
            for data in &events {
                let was = old_classify(data, &mut old, wants);
                prop_assert_eq!(classify(data, &mut new, wants).0, was, "{}", data);
                prop_assert_eq!(&new, &old, "{}", data);
            }
        }
    }
}

/// Stamping from the spans an event's read kept writes what walking the event wrote
/// (`completion_id::stamp_into`), byte for byte.
mod stamp {
    use super::*;
    use crate::call::completion_id::stamp_into;
    use crate::upstream::usage::event::tests::event;
    use crate::upstream::usage::event::Event;
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;

    /// An `id` member as upstreams write it, or not: plain, empty, non-ASCII, escaped (in the
    /// value or the key), not a string, with odd spacing, an `"id"` inside a string.
    fn id_member() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => "[a-zA-Z0-9-]{0,40}".prop_map(|i| format!(r#""id":"{i}""#)),
            1 => Just(r#""id" : "chatcmpl-é😀""#.to_string()),
            1 => Just(r#""id":"""#.to_string()),
            1 => Just(r#""id":"a\"b""#.to_string()),
            1 => Just(r#""id":"\u0041""#.to_string()),
            1 => Just(r#""i\u0064":"x""#.to_string()),
            1 => Just(r#""id":7"#.to_string()),
            1 => Just(r#""id":null"#.to_string()),
            1 => Just(r#""id":{"id":"in"}"#.to_string()),
            1 => Just(r#""id":["id","x"]"#.to_string()),
            1 => Just(r#""x":"\"id\":\"y\"""#.to_string()),
            1 => Just(r#""choices":[{"id":"c","delta":{"content":"\"id\":\"z\""}}]"#.to_string()),
            1 => Just(r#""object":"chat.completion.chunk""#.to_string()),
        ]
    }

    /// An event with ids (none, one, several: up to eight), sometimes cut or corrupted.
    fn id_event() -> impl Strategy<Value = String> {
        let ws = prop_oneof![Just(""), Just(" "), Just("\n\t "), Just("\r\n")];
        (
            prop::collection::vec((id_member(), ws), 0..9),
            any::<u16>(),
            0u8..8,
        )
            .prop_map(|(members, at, how)| {
                let body: Vec<String> = members
                    .into_iter()
                    .map(|(m, w)| format!("{w}{m}{w}"))
                    .collect();
                let mut b = format!("{{{}}}", body.join(",")).into_bytes();
                let at = at as usize % (b.len() + 1);
                match how {
                    0 => b.truncate(at),
                    1 if at < b.len() => b[at] = b"{}[]\",:x\\0"[at % 10],
                    2 => b.insert(at, b','),
                    _ => {}
                }
                String::from_utf8_lossy(&b).into_owned()
            })
    }

    /// What the relay wrote for a stamped event before: the event walked a second time.
    fn walked(data: &str, id: &str) -> Vec<u8> {
        let mut out = b"data: ".to_vec();
        stamp_into(data.as_bytes(), id, &mut out);
        out
    }

    fn spanned(data: &str, id: &str) -> Option<Vec<u8>> {
        let (_, ids) = Event::read_with_ids(data).ok()?;
        let mut out = b"data: ".to_vec();
        stamp_event(data, &ids, id, &mut out);
        Some(out)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        /// Every event the relay stamps (one it reads) comes out as walking it stamped it.
        #[test]
        fn stamping_from_spans_is_stamping(data in prop_oneof![id_event(), event()],
                                           id in "[a-f0-9-]{0,40}") {
            if let Some(out) = spanned(&data, &id) {
                prop_assert_eq!(out, walked(&data, &id), "{}", data);
            }
        }
    }

    /// Usual events, and events the spans do not cover (the walk is used), stamp as before.
    #[test]
    fn usual_and_odd_events_stamp_as_before() {
        for data in [
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"hi"}}]}"#,
            r#"{"id":"a","id":"bb","id":"ccc","id":"d","id":"e","x":1}"#,
            r#"{"id":"a\"b","choices":[]}"#,
            r#"{"i\u0064":"x","id":"y"}"#,
            r#"{"id":7,"x":{"id":"in"}}"#,
            r#"  {"id":"é😀"}  "#,
            "[1]",
        ] {
            assert_eq!(
                spanned(data, "req-1"),
                Some(walked(data, "req-1")),
                "{data}"
            );
        }
        let (_, ids) = Event::read_with_ids(r#"{"id":"x","choices":[]}"#).expect("json");
        assert_eq!(ids.get(), Some(&[(6usize, 9usize)][..]));
        let (_, ids) = Event::read_with_ids(r#"{"id":"a\"b"}"#).expect("json");
        assert_eq!(ids.get(), None);
    }

    /// The generated events are mostly stamped from spans (the property is not vacuous).
    #[test]
    fn most_generated_ids_are_stamped_from_spans() {
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let (mut read, mut spans) = (0, 0);
        for _ in 0..2000 {
            let data = id_event()
                .new_tree(&mut runner)
                .map(|t| t.current())
                .unwrap_or_default();
            if let Ok((_, ids)) = Event::read_with_ids(&data) {
                read += 1;
                spans += usize::from(ids.get().is_some_and(|s| !s.is_empty()));
            }
        }
        assert!(read > 500 && spans * 3 > read, "{spans} of {read}");
    }
}
