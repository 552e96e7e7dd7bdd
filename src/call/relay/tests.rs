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
                prop_assert_eq!(classify(data, &mut new, wants), was, "{}", data);
                prop_assert_eq!(&new, &old, "{}", data);
            }
        }
    }
}
