//! Tests of the prices a deployment gets at load: the file's `input_cost_per_token` /
//! `output_cost_per_token` each override the embedded table (`crate::prices`) separately, the
//! table fills the rest and `model_info`'s limits, and models priced by neither are noted once.
//! The table's own lookup is tested in `prices.rs`.

use super::*;

/// The deployments of `text` and the models noted as unpriced.
fn read(text: &str) -> (Vec<Deployment>, Vec<String>) {
    let env = Env::default();
    let mut cfg = Config::default();
    let mut r = yaml::Reader::new("c.yaml", &env);
    settings::apply(&mut cfg, text, &mut r).expect("ok");
    (cfg.deployments, r.unpriced)
}

fn table(model: &str) -> crate::prices::Price {
    crate::prices::lookup(model).expect(model)
}

#[test]
fn a_deployment_without_prices_takes_the_tables() {
    let (d, unpriced) = read(
        "model_list: [{model_name: a, litellm_params: {model: openai/gpt-4o-mini, api_key: k}}]",
    );
    let t = table("openai/gpt-4o-mini");
    assert_eq!(Some(d[0].input_cost_per_token), t.input_cost_per_token);
    assert_eq!(Some(d[0].output_cost_per_token), t.output_cost_per_token);
    assert_eq!(
        d[0].model_info["max_input_tokens"],
        t.max_input_tokens.unwrap()
    );
    assert_eq!(
        d[0].model_info["max_output_tokens"],
        t.max_output_tokens.unwrap()
    );
    assert_eq!(d[0].model_info["max_tokens"], t.max_output_tokens.unwrap());
    assert_eq!(
        d[0].model_info["cache_read_input_token_cost"],
        t.cache_read_input_token_cost.unwrap()
    );
    assert!(unpriced.is_empty(), "{unpriced:?}");
}

#[test]
fn the_files_prices_override_the_table_each_field_separately() {
    let (d, unpriced) = read(
        "model_list:\n\
         - {model_name: a, litellm_params: {model: openai/gpt-4o-mini, input_cost_per_token: 0.5}}\n\
         - {model_name: b, litellm_params: {model: openai/gpt-4o-mini, output_cost_per_token: 0}}\n\
         - {model_name: c, litellm_params: {model: openai/gpt-4o-mini, input_cost_per_token: 1, \
            output_cost_per_token: 2}, model_info: {max_tokens: 7}}\n",
    );
    let t = table("openai/gpt-4o-mini");
    let prices: Vec<_> = d
        .iter()
        .map(|d| (d.input_cost_per_token, d.output_cost_per_token))
        .collect();
    let (tin, tout) = (
        t.input_cost_per_token.unwrap(),
        t.output_cost_per_token.unwrap(),
    );
    assert_eq!(prices, [(0.5, tout), (tin, 0.0), (1.0, 2.0)]);
    assert_eq!(
        d[2].model_info["max_tokens"], 7,
        "the file's model_info wins"
    );
    assert!(unpriced.is_empty(), "{unpriced:?}");
}

#[test]
fn an_unpriced_model_is_noted_once_and_mock_never() {
    let (d, unpriced) = read(
        "model_list:\n\
         - {model_name: a, litellm_params: {model: openai/x}}\n\
         - {model_name: b, litellm_params: {model: openai/x}}\n\
         - {model_name: c, litellm_params: {model: openai/y, input_cost_per_token: 1}}\n\
         - {model_name: d, litellm_params: {model: openai/z, input_cost_per_token: 1, \
            output_cost_per_token: 0}}\n\
         - {model_name: e, litellm_params: {model: mock/gpt-4o-mini}}\n",
    );
    assert_eq!(unpriced, ["openai/x", "openai/y"]);
    assert_eq!(
        (d[0].input_cost_per_token, d[0].output_cost_per_token),
        (0.0, 0.0)
    );
    assert_eq!(
        (d[2].input_cost_per_token, d[2].output_cost_per_token),
        (1.0, 0.0)
    );
    assert_eq!(
        (d[4].input_cost_per_token, d[4].output_cost_per_token),
        (0.0, 0.0),
        "mock is answered by litegate itself: never priced from the table"
    );
    assert!(!d[0].model_info.contains_key("max_tokens"));
}

#[test]
fn model_info_base_model_picks_the_tables_row() {
    // An Azure deployment is named by its operator; `base_model` says which model it is.
    let (d, unpriced) = read(
        "model_list:\n\
         - {model_name: a, litellm_params: {model: azure/my-dep, api_base: 'https://x', \
            api_key: k}, model_info: {base_model: azure/gpt-4o-mini}}\n\
         - {model_name: b, litellm_params: {model: openai/my-name}, \
            model_info: {base_model: gpt-4o-mini}}\n\
         - {model_name: c, litellm_params: {model: azure/other, api_base: 'https://x', \
            api_key: k}}\n",
    );
    let az = table("azure/gpt-4o-mini");
    let oa = table("openai/gpt-4o-mini");
    assert_eq!(Some(d[0].input_cost_per_token), az.input_cost_per_token);
    assert_eq!(Some(d[0].output_cost_per_token), az.output_cost_per_token);
    assert_eq!(Some(d[1].input_cost_per_token), oa.input_cost_per_token);
    assert_eq!(d[0].model_info["base_model"], "azure/gpt-4o-mini");
    assert_eq!(unpriced, ["azure/other"]);
}
