//! The tree-less event reader against the tree it replaced: generated events (lying usage,
//! duplicate keys, escapes, surrogates, numbers out of range, deep nesting, events that are not
//! objects, cut or corrupted bytes) read the same, and what one refuses the other refuses.

use super::*;
use crate::upstream::usage::completion_chars;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::Value;

/// What the relay read of an event's tree before (`UsageTally::see`, the `error` check).
fn old(data: &str) -> Option<Event> {
    let v: Value = serde_json::from_str(data).ok()?;
    let choices = v.get("choices").and_then(Value::as_array);
    Some(Event {
        usage: v
            .get("usage")
            .filter(|u| !u.is_null())
            .map(Reported::of_value),
        has_choices: choices.is_some_and(|c| !c.is_empty()),
        chars: completion_chars(&v),
        finished: choices.is_some_and(|cs| {
            cs.iter()
                .any(|c| c.get("finish_reason").is_some_and(|f| !f.is_null()))
        }),
        error: v.get("error").is_some(),
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(r#""id""#),
        Just(r#""usage""#),
        Just(r#""us\u0061ge""#),
        Just(r#""choices""#),
        Just(r#""error""#),
        Just(r#""delta""#),
        Just(r#""message""#),
        Just(r#""text""#),
        Just(r#""content""#),
        Just(r#""cont\u0065nt""#),
        Just(r#""finish_reason""#),
        Just(r#""prompt_tokens""#),
        Just(r#""completion_tokens""#),
        Just(r#""total_tokens""#),
        Just(r#""prompt_tokens_details""#),
        Just(r#""cached_tokens""#),
        Just(r#""cache_write_tokens""#),
        Just(r#""cache_creation_tokens""#),
        Just(r#""cache_read_input_tokens""#),
        Just(r#""cache_creation_input_tokens""#),
        Just(r#""k\u00e9""#),
    ]
    .prop_map(str::to_string)
}

/// A key a tree refuses (a lone surrogate), now and then.
fn any_key() -> impl Strategy<Value = String> {
    prop_oneof![30 => key(), 1 => Just(r#""\ud800""#.to_string())]
}

fn leaf() -> impl Strategy<Value = String> {
    // Mostly values a tree takes; now and then one it refuses (which refuses the event).
    let good = prop_oneof![
        Just("null".to_string()),
        Just("true".to_string()),
        Just("\"usage\": {\"prompt_tokens\": 1}".to_string()),
        Just(r#""h\u00e9llo \"q\" \n😀""#.to_string()),
        Just(r#""\ud83d\ude00 pair""#.to_string()),
        Just(r#""stop""#.to_string()),
        "[a-zé😀 \"{}:,\\\\]{0,8}".prop_map(|t| serde_json::to_string(&t).unwrap_or_default()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        (0u64..20_000_000).prop_map(|n| n.to_string()),
        Just("-0".to_string()),
        Just("-0.0".to_string()),
        Just("12.0".to_string()),
        Just("1.5".to_string()),
        Just("1e3".to_string()),
        Just("123456789012345678901234567890".to_string()),
        Just(format!("{}1{}", "[".repeat(126), "]".repeat(126))),
    ];
    let bad = prop_oneof![
        Just(r#""\ud800 lone""#.to_string()),
        Just(r#""\udc00""#.to_string()),
        Just("1e400".to_string()),
        Just("-1e400".to_string()),
        Just(format!("{}{}", "[".repeat(130), "]".repeat(130))),
    ];
    prop_oneof![30 => good, 1 => bad]
}

/// A value: leaves, arrays and objects of the keys above.
fn value() -> impl Strategy<Value = String> {
    leaf().prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec((any_key(), inner), 0..5).prop_map(|kv| {
                let kv: Vec<String> = kv.into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("{{{}}}", kv.join(","))
            }),
        ]
    })
}

/// An object of the given members (keys may repeat).
fn object(members: impl Strategy<Value = (String, String)>) -> impl Strategy<Value = String> {
    prop::collection::vec(members, 0..5).prop_map(|kv| {
        let kv: Vec<String> = kv.into_iter().map(|(k, v)| format!("{k}: {v}")).collect();
        format!("{{{}}}", kv.join(", "))
    })
}

/// Completion text: plain, escaped, unicode, surrogates.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zé😀 \"\\\\\n\t]{0,12}".prop_map(|t| serde_json::to_string(&t).unwrap_or_default()),
        Just(r#""h\u00e9llo \"q\" \n😀""#.to_string()),
        Just(r#""\ud83d\ude00 pair""#.to_string()),
        Just(r#""tab\there\/\b\f\r""#.to_string()),
    ]
}

/// A choice as upstreams write it, or not quite.
fn choice() -> impl Strategy<Value = String> {
    let text = || prop_oneof![3 => text(), 1 => value()];
    let content = object((
        prop_oneof![3 => Just(r#""content""#.to_string()), 1 => key()],
        text(),
    ));
    let member = prop_oneof![
        3 => (
            prop_oneof![Just(r#""delta""#), Just(r#""message""#)].prop_map(str::to_string),
            content
        ),
        1 => (Just(r#""text""#.to_string()), text()),
        2 => (
            Just(r#""finish_reason""#.to_string()),
            prop_oneof![Just("null".to_string()), Just(r#""stop""#.to_string()), value()]
        ),
        1 => (key(), value()),
    ];
    prop_oneof![4 => object(member), 1 => value()]
}

/// An event: an object of likely members (sometimes something else), in odd spacing,
/// sometimes cut short or with a byte changed.
pub(crate) fn event() -> impl Strategy<Value = String> {
    let usage = object((key(), value()));
    let choices = prop::collection::vec(choice(), 0..3).prop_map(|c| format!("[{}]", c.join(",")));
    let member = prop_oneof![
        1 => (Just(r#""usage""#.to_string()), usage),
        3 => (Just(r#""choices""#.to_string()), choices),
        1 => (Just(r#""error""#.to_string()), value()),
        1 => (key(), value()),
    ];
    let whole = prop_oneof![6 => object(member), 1 => value()];
    (whole, any::<u16>(), 0u8..8).prop_map(|(s, at, how)| {
        let mut b = s.into_bytes();
        let at = at as usize % (b.len() + 1);
        match how {
            0 => b.truncate(at),
            1 if at < b.len() => b[at] = b"{}[]\",:x\\0"[at % 10],
            2 => b.insert(at, b','),
            3 => b.extend_from_slice(b" \t"),
            _ => {}
        }
        String::from_utf8_lossy(&b).into_owned()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]
    /// Every event reads as its tree read: the same usage (figure by figure), choices, text,
    /// finish and error; refused exactly when the tree refused it.
    #[test]
    fn an_event_reads_as_its_tree(data in event()) {
        prop_assert_eq!(Event::read(&data).ok(), old(&data), "{}", data);
    }
}

/// The generated events are mostly JSON and often say something (the property is not vacuous).
#[test]
fn the_generated_events_say_things() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut json, mut usage, mut chars, mut finished, mut error) = (0, 0, 0, 0, 0);
    for _ in 0..3000 {
        let data = event()
            .new_tree(&mut runner)
            .map(|t| t.current())
            .unwrap_or_default();
        if let Some(e) = old(&data) {
            json += 1;
            usage += usize::from(e.usage.is_some());
            chars += usize::from(e.chars > 0);
            finished += usize::from(e.finished);
            error += usize::from(e.error);
        }
    }
    assert!(json > 800, "{json} JSON");
    assert!(
        usage > 100 && chars > 100 && finished > 50 && error > 100,
        "usage {usage}, text {chars}, finished {finished}, error {error} of {json}"
    );
}

/// Values a tree refuses (a number out of range, a lone surrogate, nesting past the limit)
/// are refused anywhere in an event, also where nothing is read.
#[test]
fn what_a_tree_refuses_is_refused() {
    for bad in [
        "1e400",
        r#""\ud800""#,
        &format!("{}{}", "[".repeat(130), "]".repeat(130)),
    ] {
        for data in [
            format!(r#"{{"x": {bad}}}"#),
            format!(r#"{{"usage": {{"x": {bad}}}}}"#),
            format!(r#"{{"usage": {{"prompt_tokens": [{bad}]}}}}"#),
            format!(r#"{{"choices": [{{"delta": {{"x": {bad}}}}}]}}"#),
            format!(r#"{{"choices": [{{"finish_reason": {bad}}}]}}"#),
            format!(r#"{{"error": {bad}}}"#),
            format!(r#"[{bad}]"#),
        ] {
            assert!(old(&data).is_none(), "{data}");
            assert!(Event::read(&data).is_err(), "{data}");
        }
    }
}

/// A usual chunk, the usage chunk, an error and duplicate keys.
#[test]
fn usual_events() {
    let e = Event::read(r#"{"id":"x","choices":[{"index":0,"delta":{"content":"h\u00e9\n"},"finish_reason":null}]}"#)
        .expect("json");
    assert_eq!(
        (e.has_choices, e.chars, e.finished, e.error),
        (true, 3, false, false)
    );
    let e = Event::read(r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#)
        .expect("json");
    assert!(!e.has_choices);
    assert_eq!(
        e.usage.and_then(|u| u.completion),
        Some(super::super::Figure::Count(2))
    );
    assert!(Event::read(r#"{"error":null}"#).expect("json").error);
    let e = Event::read(r#"{"usage":{"prompt_tokens":1},"usage":null,"choices":[{}],"choices":7}"#)
        .expect("json");
    assert_eq!(e, Event::default());
    assert!(Event::read("upstream says no").is_err());
}
