//! Prices without configuring them (issue 13 item 3): a deployment of a known model with no
//! prices in the config is billed at the embedded table's prices, `/model/info` shows them with
//! the table's token limits, a config price overrides the table's, and a model priced by
//! neither is logged once at start.

use crate::common::*;
use crate::upstream::*;
use serde_json::{json, Value};

fn config(f: &Fake) -> String {
    let dep = |name: &str, model: &str, extra: &str| {
        format!(
            "  - model_name: {name}\n    litellm_params: {{ model: {model}, api_base: \"{}\", \
             api_key: {UPSTREAM_KEY}{extra} }}\n",
            f.api_base()
        )
    };
    let mut y = String::from("model_list:\n");
    y.push_str(&dep("mini", "openai/gpt-4o-mini", ""));
    y.push_str(&dep(
        "mini-in",
        "openai/gpt-4o-mini",
        ", input_cost_per_token: 0.001",
    ));
    y.push_str(&dep("unpriced", "openai/json", ""));
    y.push_str(&dep("unpriced-2", "openai/json", ""));
    y.push_str("general_settings:\n  master_key: os.environ/TEST_MASTER_KEY\n");
    y
}

fn spend_of(s: &Server, r: &Resp) -> f64 {
    spend_log_of(s, r)["spend"].as_f64().expect("spend")
}

fn near(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 + 1e-9 * b.abs()
}

fn chat(s: &Server, key: &str, model: &str) -> Resp {
    let r = s.post(
        "/v1/chat/completions",
        key,
        json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(r.status, 200, "{model}: {}", r.text());
    r
}

fn info_of(s: &Server, model: &str) -> Value {
    let r = s.get(&format!("/model/info?model={model}"), MASTER);
    assert_eq!(r.status, 200, "{}", r.text());
    let data = r.json()["data"].clone();
    assert_eq!(data.as_array().map(Vec::len), Some(1), "{data}");
    data[0].clone()
}

#[test]
fn a_known_model_without_prices_is_billed_and_shown_at_the_tables_prices() {
    let t = litegate::prices::lookup("openai/gpt-4o-mini").expect("gpt-4o-mini is in the table");
    let (tin, tout) = (
        t.input_cost_per_token.expect("input price"),
        t.output_cost_per_token.expect("output price"),
    );
    assert!(tin > 0.0 && tout > 0.0);
    let f = Fake::start();
    let s = Server::start_with(&config(&f), &[]);
    let k = key_for(&s, json!({}));

    // The fake answers 10 prompt and 20 completion tokens.
    let r = chat(&s, &k, "mini");
    assert_eq!(f.last().body["model"], "gpt-4o-mini");
    let want = 10.0 * tin + 20.0 * tout;
    let got = spend_of(&s, &r);
    assert!(near(got, want), "{got} != {want}");
    // The config's input price overrides the table's; the output price is still the table's.
    let r = chat(&s, &k, "mini-in");
    let want = 10.0 * 0.001 + 20.0 * tout;
    let got = spend_of(&s, &r);
    assert!(near(got, want), "{got} != {want}");
    // Neither: 0.
    let r = chat(&s, &k, "unpriced");
    assert_eq!(spend_of(&s, &r), 0.0);

    let d = info_of(&s, "mini");
    let mi = &d["model_info"];
    assert_eq!(mi["input_cost_per_token"], tin, "{d}");
    assert_eq!(mi["output_cost_per_token"], tout, "{d}");
    assert_eq!(d["litellm_params"]["input_cost_per_token"], tin, "{d}");
    assert_eq!(d["litellm_params"]["output_cost_per_token"], tout, "{d}");
    assert_eq!(
        mi["max_input_tokens"],
        t.max_input_tokens.expect("limit"),
        "{d}"
    );
    assert_eq!(
        mi["max_output_tokens"],
        t.max_output_tokens.expect("limit"),
        "{d}"
    );
    assert_eq!(mi["max_tokens"], t.max_output_tokens.expect("limit"), "{d}");
    let d = info_of(&s, "mini-in");
    assert_eq!(d["model_info"]["input_cost_per_token"], 0.001, "{d}");
    assert_eq!(d["model_info"]["output_cost_per_token"], tout, "{d}");
    let d = info_of(&s, "unpriced");
    assert_eq!(d["model_info"]["input_cost_per_token"], 0.0, "{d}");
    assert!(d["model_info"].get("max_tokens").is_none(), "{d}");

    // The unpriced model is named once in the log (two deployments of it); the priced never.
    let log = s.log();
    let line = "model 'openai/json' has no input_cost_per_token";
    assert_eq!(log.matches(line).count(), 1, "{log}");
    assert!(!log.contains("model 'openai/gpt-4o-mini' has no"), "{log}");
    assert!(!log.contains(UPSTREAM_KEY));
}
