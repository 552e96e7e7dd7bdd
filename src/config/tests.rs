//! Tests of reading the config file: typed sections, `os.environ/`, every error's wording and
//! the unknown-key warnings. The command line and the merge with flags are tested in
//! `cli.rs` and `mod.rs`, the environment variables in `env.rs`.

use super::*;

fn no_env() -> Env {
    Env::default()
}

/// The file's settings over the defaults (and the master-key rules), with its warnings.
fn parse(text: &str, env: &Env) -> (Result<Config, ConfigError>, Vec<String>) {
    let mut cfg = Config::default();
    let mut r = yaml::Reader::new("c.yaml", env);
    let res = settings::apply(&mut cfg, text, &mut r)
        .and_then(|()| validate_master_key(&cfg))
        .map(|()| cfg);
    (res, r.warnings)
}

fn load_text(text: &str, env: &Env) -> Result<Config, ConfigError> {
    parse(text, env).0
}

fn err(text: &str) -> String {
    load_text(text, &no_env()).expect_err(text).0
}

#[test]
fn env_values_resolve() {
    let env = Env::from_vars([("K", "sk-from-env-0123456789")]);
    let cfg = load_text(
        "model_list:\n - model_name: a\n   litellm_params:\n     model: openai/gpt\n     api_key: os.environ/K\ngeneral_settings:\n  master_key: os.environ/K\n",
        &env,
    )
    .expect("ok");
    assert_eq!(cfg.master_key.as_deref(), Some("sk-from-env-0123456789"));
    assert_eq!(
        cfg.deployments[0].api_key.as_deref(),
        Some("sk-from-env-0123456789")
    );
}

#[test]
fn numbers_and_flags_may_come_from_the_environment() {
    let env = Env::from_vars([("RPM", "7"), ("COST", "0.5"), ("T", "3"), ("B", "TRUE")]);
    let cfg = load_text(
        "model_list:\n - model_name: a\n   litellm_params: {model: openai/x, rpm: os.environ/RPM, input_cost_per_token: os.environ/COST, timeout: os.environ/T}\n\
         general_settings: {metrics_require_auth: os.environ/B, database_connection_pool_limit: '4'}\n\
         router_settings: {stream_timeout: os.environ/T}\n",
        &env,
    )
    .expect("ok");
    let d = &cfg.deployments[0];
    assert_eq!(
        (
            d.rpm,
            d.input_cost_per_token,
            d.timeout_secs,
            d.stream_timeout_secs
        ),
        (Some(7), 0.5, 3.0, 3.0)
    );
    assert!(cfg.metrics_require_auth);
    assert_eq!(cfg.db_pool, 4);
}

#[test]
fn every_general_setting_is_read() {
    let cfg = load_text(
        "general_settings:\n  master_key: sk-0123456789abcdef\n  database_path: /var/x.db\n  \
         allow_weak_master_key: false\n  metrics_require_auth: true\n  backup_dir: /b\n  \
         max_request_size_mb: 1.5\n  max_upstream_response_size_mb: 2\n  \
         database_connection_pool_limit: 3\n  database_connection_timeout: 1.5\n",
        &no_env(),
    )
    .expect("ok");
    assert_eq!(cfg.master_key.as_deref(), Some("sk-0123456789abcdef"));
    assert_eq!(cfg.db_path, PathBuf::from("/var/x.db"));
    assert!(!cfg.allow_weak_master_key && cfg.metrics_require_auth);
    assert_eq!(cfg.backup_dir, Some(PathBuf::from("/b")));
    assert_eq!(cfg.max_body_bytes, 1_572_864);
    assert_eq!(cfg.max_upstream_body_bytes, 2 * 1024 * 1024);
    assert_eq!(cfg.db_pool, 3);
    assert_eq!(cfg.db_timeout, std::time::Duration::from_millis(1500));
}

#[test]
fn a_deployment_is_read_whole() {
    let cfg = load_text(
        "model_list:\n - model_name: m\n   litellm_params:\n     model: azure/gpt\n     base_url: http://u\n     \
         api_key: k\n     rpm: 5\n     tpm: '6'\n     input_cost_per_token: 1e-6\n     \
         output_cost_per_token: 0.00002\n     timeout: 9\n     stream_timeout: 8.5\n   \
         model_info: {id: dep-1, access_groups: [g, 2], mode: chat, max_tokens: 10}\n",
        &no_env(),
    )
    .expect("ok");
    let d = &cfg.deployments[0];
    assert_eq!(d.model_name, "m");
    assert_eq!(d.provider(), "azure");
    assert_eq!(d.api_base.as_deref(), Some("http://u"));
    assert_eq!(d.api_key.as_deref(), Some("k"));
    assert_eq!((d.rpm, d.tpm), (Some(5), Some(6)));
    assert_eq!(
        (d.input_cost_per_token, d.output_cost_per_token),
        (1e-6, 0.00002)
    );
    assert_eq!((d.timeout_secs, d.stream_timeout_secs), (9.0, 8.5));
    assert_eq!(d.id, "dep-1");
    assert_eq!(d.access_groups, vec!["g".to_string(), "2".to_string()]);
    assert_eq!(d.model_info["mode"], "chat");
    assert_eq!(d.model_info["max_tokens"], 10);
    assert_eq!(
        d.model_info.len(),
        2,
        "id and access_groups are not repeated"
    );
}

#[test]
fn ids_default_and_must_be_unique() {
    let cfg = load_text(
        "model_list:\n - {model_name: a, litellm_params: {model: mock/a}}\n - {model_name: a, litellm_params: {model: mock/a}}\n",
        &no_env(),
    )
    .expect("ok");
    let ids: Vec<_> = cfg.deployments.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["a-0", "a-1"]);
    assert_eq!(
        err("model_list:\n - {model_name: a, litellm_params: {model: mock/a}, model_info: {id: x}}\n - {model_name: b, litellm_params: {model: mock/b}, model_info: {id: x}}\n"),
        "c.yaml: model_list: model_info.id 'x' is used twice"
    );
}

#[test]
fn errors_name_file_and_field() {
    let e = err("model_list:\n - model_name: a\n   litellm_params:\n     model: gpt\n");
    assert!(e.contains("c.yaml") && e.contains("model_list[0].litellm_params.model"));
    let e = err("model_list:\n - model_name: a\n   litellm_params:\n     model: openai/x\n     input_cost_per_token: -1\n");
    assert!(e.contains("input_cost_per_token"), "{e}");
    let e = err("general_settings:\n  master_key: os.environ/NOPE\n");
    assert!(e.contains("NOPE"), "{e}");
    let e = err("general_settings:\n  master_key: abc\n");
    assert!(e.contains("sk-"), "{e}");
    let e = err("general_settings:\n  master_key: sk-1234\n");
    assert!(e.contains("publicly known"), "{e}");
    assert!(load_text(
        "general_settings:\n  master_key: sk-1234\n  allow_weak_master_key: true\n",
        &no_env()
    )
    .is_ok());
    let e = err("model_list: [1, 2");
    assert!(e.contains("not valid YAML"), "{e}");
}

/// The exact wording of every error the file can cause (unchanged from the hand-walked
/// reader this replaced).
#[test]
#[rustfmt::skip]
fn every_error_is_worded_as_before() {
    let cases: &[(&str, &str)] = &[
        ("[1]", "c.yaml: the top level must be a mapping"),
        ("x", "c.yaml: the top level must be a mapping"),
        ("? [a]\n: 1\n", "c.yaml: top level key: expected a string"),
        ("model_list: {a: 1}", "c.yaml: model_list: expected a list"),
        ("model_list: [1]", "c.yaml: model_list[0]: expected a mapping"),
        ("model_list: [~]", "c.yaml: model_list[0]: expected a mapping"),
        ("model_list: [{}]", "c.yaml: model_list[0].model_name: required"),
        ("model_list: [{model_name: ' '}]", "c.yaml: model_list[0].model_name: required"),
        ("model_list: [{model_name: [a]}]", "c.yaml: model_list[0].model_name: expected a string"),
        ("model_list: [{model_name: os.environ/X, litellm_params: {model: mock/a}, model_info: {id: y}}]", ""),
        ("model_list: [{model_name: a}]", "c.yaml: model_list[0].litellm_params: required mapping with `model`"),
        ("model_list: [{model_name: a, litellm_params: [x]}]", "c.yaml: model_list[0].litellm_params: required mapping with `model`"),
        ("model_list: [{model_name: a, litellm_params: {}}]", "c.yaml: model_list[0].litellm_params.model: expected 'provider/name', got ''"),
        ("model_list: [{model_name: a, litellm_params: {model: /x}}]", "c.yaml: model_list[0].litellm_params.model: expected 'provider/name', got '/x'"),
        ("model_list: [{model_name: a, litellm_params: {model: [x]}}]", "c.yaml: model_list[0].litellm_params.model: expected a string"),
        ("model_list: [{model_name: a, litellm_params: {model: openai/x, rpm: -1}}]", "c.yaml: model_list[0].litellm_params.rpm: expected a non-negative integer"),
        ("model_list: [{model_name: a, litellm_params: {model: openai/x, tpm: 1.5}}]", "c.yaml: model_list[0].litellm_params.tpm: expected a non-negative integer"),
        ("model_list: [{model_name: a, litellm_params: {model: openai/x, output_cost_per_token: x}}]", "c.yaml: model_list[0].litellm_params.output_cost_per_token: expected a non-negative number"),
        ("model_list: [{model_name: a, litellm_params: {model: openai/x, input_cost_per_token: .inf}}]", "c.yaml: model_list[0].litellm_params.input_cost_per_token: expected a non-negative number"),
        ("model_list: [{model_name: a, litellm_params: {model: openai/x, timeout: 0}}]", "c.yaml: model_list[0].litellm_params.timeout: must be positive"),
        ("model_list: [{model_name: a, litellm_params: {model: openai/x, stream_timeout: -2}}]", "c.yaml: model_list[0].litellm_params.stream_timeout: expected a non-negative number"),
        ("model_list: [{model_name: a, litellm_params: {model: openai/x, api_key: os.environ/NOPE}}]", "c.yaml: model_list[0].litellm_params.api_key: environment variable NOPE is not set"),
        ("model_list: [{model_name: a, litellm_params: {model: openai/x, other: os.environ/NOPE}}]", "c.yaml: model_list[0].litellm_params.other: environment variable NOPE is not set"),
        ("model_list: [{model_name: a, litellm_params: {model: openai/x, [k]: 1}}]", "c.yaml: model_list[0]: expected a string"),
        ("model_list: [{model_name: a, litellm_params: {model: openai/x}, model_info: 3}]", "c.yaml: model_list[0].model_info: expected a mapping"),
        ("model_list: [{model_name: a, litellm_params: {model: openai/x}, model_info: {access_groups: g}}]", "c.yaml: model_list[0].model_info.access_groups: expected a list of names"),
        ("model_list: [{model_name: a, litellm_params: {model: openai/x}, model_info: {access_groups: [[g]]}}]", "c.yaml: model_list[0].model_info.access_groups: expected a string"),
        ("model_list: [{model_name: a, litellm_params: {model: openai/x}, model_info: {id: {}}}]", "c.yaml: model_list[0].model_info.id: expected a string"),
        ("model_list: [{model_name: a, litellm_params: {model: openai/x}, ~: 1}]", "c.yaml: model_list[0]: expected a string"),
        ("general_settings: 3", "c.yaml: general_settings: expected a mapping"),
        ("general_settings: {[a]: 1}", "c.yaml: general_settings key: expected a string"),
        ("general_settings: {master_key: ~}", "c.yaml: general_settings.master_key: expected a string"),
        ("general_settings: {allow_weak_master_key: yes}", "c.yaml: general_settings.allow_weak_master_key: expected true or false"),
        ("general_settings: {metrics_require_auth: 1}", "c.yaml: general_settings.metrics_require_auth: expected true or false"),
        ("general_settings: {max_request_size_mb: 0}", "c.yaml: general_settings.max_request_size_mb: must be positive"),
        ("general_settings: {max_upstream_response_size_mb: -1}", "c.yaml: general_settings.max_upstream_response_size_mb: expected a non-negative number"),
        ("general_settings: {database_connection_pool_limit: 65}", "c.yaml: general_settings.database_connection_pool_limit: must be between 1 and 64"),
        ("general_settings: {database_connection_pool_limit: 0}", "c.yaml: general_settings.database_connection_pool_limit: must be between 1 and 64"),
        ("general_settings: {database_connection_timeout: 601}", "c.yaml: general_settings.database_connection_timeout: must be between 0.1 and 600 (seconds)"),
        ("general_settings: {database_url: os.environ/NOPE}", "c.yaml: general_settings.database_url: environment variable NOPE is not set"),
        ("litellm_settings: {request_timeout: 0}", "c.yaml: litellm_settings.request_timeout: must be positive"),
        ("litellm_settings: {[a]: 1}", "c.yaml: litellm_settings: expected a string"),
        ("router_settings: {timeout: os.environ/NOPE}", "c.yaml: router_settings.timeout: environment variable NOPE is not set"),
        ("router_settings: {model_group_alias: [a]}", "c.yaml: router_settings.model_group_alias: expected a mapping of alias: model_name"),
        ("router_settings: {model_group_alias: ~}", "c.yaml: router_settings.model_group_alias: expected a mapping of alias: model_name"),
        ("litellm_settings: {model_alias_map: {a: {hidden: true}}}", "c.yaml: litellm_settings.model_alias_map.a: needs a model"),
        ("litellm_settings: {model_alias_map: {a: [b]}}", "c.yaml: litellm_settings.model_alias_map: expected a string"),
        ("litellm_settings: {model_alias_map: {[a]: b}}", "c.yaml: litellm_settings.model_alias_map: expected a string"),
        ("litellm_settings: {default_internal_user_params: 3}", "c.yaml: litellm_settings.default_internal_user_params: expected a mapping"),
        ("litellm_settings: {max_end_user_budget: -1}", "c.yaml: litellm_settings.max_end_user_budget: expected a non-negative number"),
        ("litellm_settings: {max_end_user_budget: x}", "c.yaml: litellm_settings.max_end_user_budget: expected a non-negative number"),
        // New: LiteLLM (PyYAML's safe_load) refuses such a file too.
        ("a: !custom x", "c.yaml: a: the YAML tag !custom is not supported"),
        ("model_list: [{model_name: a, model_info: {b: [1, !t x]}}]", "c.yaml: model_list[0].model_info.b[1]: the YAML tag !t is not supported"),
        ("!t {}", "c.yaml: (top level): the YAML tag !t is not supported"),
    ];
    for (text, want) in cases {
        let got = load_text(text, &no_env()).err().map(|e| e.0).unwrap_or_default();
        assert_eq!(&got, want, "{text}");
    }
}

#[test]
fn sections_of_other_shapes_are_ignored_where_they_were() {
    for text in [
        "",
        "~",
        "model_list:",
        "general_settings:",
        "litellm_settings: 3",
        "router_settings: [a]",
        "environment_variables: {A: b}",
        "model_list: [{model_name: a, litellm_params: {model: openai/x}, model_info: ~}]",
    ] {
        assert!(load_text(text, &no_env()).is_ok(), "{text}");
    }
}

#[test]
fn unknown_keys_are_ignored() {
    let cfg = load_text(
        "foo: 1\nlitellm_settings:\n  drop_params: true\nmodel_list:\n - model_name: a\n   litellm_params:\n     model: openai/x\n     weird: 2\n   model_info:\n     access_groups: [g1]\n     mode: chat\n",
        &no_env(),
    )
    .expect("ok");
    assert_eq!(cfg.deployments[0].access_groups, vec!["g1".to_string()]);
    assert_eq!(cfg.deployments[0].model_info["mode"], "chat");
}

#[test]
fn unknown_keys_are_warned_about_by_name() {
    let (cfg, warnings) = parse(
        "foo: 1\n7: x\nenvironment_variables: {A: b}\n\
         litellm_settings: {drop_params: true, num_retries: 3}\n\
         router_settings: {routing_strategy: simple-shuffle}\n\
         general_settings: {store_model_in_db: true}\n\
         model_list:\n - model_name: a\n   extra: 1\n   litellm_params: {model: openai/x, weird: 2}\n",
        &no_env(),
    );
    cfg.expect("ok");
    let mut warnings = warnings;
    warnings.sort();
    assert_eq!(
        warnings,
        [
            "c.yaml: (top level).7 is not used by litegate; ignored",
            "c.yaml: (top level).foo is not used by litegate; ignored",
            "c.yaml: general_settings.store_model_in_db is not used by litegate; ignored",
            "c.yaml: model_list[0].extra is not used by litegate; ignored",
            "c.yaml: model_list[0].litellm_params.weird is not used by litegate; ignored",
        ]
    );
    let (_, none) = parse(EMBEDDED_DEFAULT, &no_env());
    assert!(none.is_empty(), "{none:?}");
    // A provider litegate has no adapter for is no longer "treated as OpenAI-compatible"
    // (its key would go to api.openai.com): it stops the start, naming the field.
    let e = load_text(
        "model_list:\n - model_name: a\n   litellm_params: {model: sagemaker/x, api_key: k}\n",
        &no_env(),
    )
    .expect_err("refused");
    assert!(
        e.0.starts_with(
            "c.yaml: model_list[0].litellm_params.model: provider 'sagemaker' is not supported; \
             supported providers: mock, openai, "
        ),
        "{e}"
    );
}

#[test]
fn gemini_keys_default_from_the_environment_in_litellms_order() {
    let y = "model_list:\n - {model_name: g, litellm_params: {model: gemini/gemini-2.5-flash}}\n";
    let bearer = |env: Env| {
        load_text(y, &env).expect("ok").deployments[0]
            .route
            .auth
            .clone()
            .map(|(_, v)| v)
    };
    assert_eq!(
        bearer(Env::from_vars([("GEMINI_API_KEY", "g-key")])).as_deref(),
        Some("Bearer g-key")
    );
    // LiteLLM reads GOOGLE_API_KEY first.
    assert_eq!(
        bearer(Env::from_vars([
            ("GEMINI_API_KEY", "g-key"),
            ("GOOGLE_API_KEY", "goog")
        ]))
        .as_deref(),
        Some("Bearer goog")
    );
    assert_eq!(bearer(no_env()), None);
    let cfg = load_text(y, &no_env()).expect("ok");
    assert_eq!(
        cfg.deployments[0].route.url("embeddings"),
        "https://generativelanguage.googleapis.com/v1beta/openai/embeddings"
    );
}

#[test]
fn provider_keys_and_azure_versions_default_from_the_environment() {
    let env = Env::from_vars([
        ("OPENAI_API_KEY", "sk-env-openai"),
        ("AZURE_API_KEY", "az-env"),
        ("AZURE_API_VERSION", "2024-02-01"),
    ]);
    let cfg = load_text(
        "model_list:\n - {model_name: a, litellm_params: {model: openai/gpt-4o}}\n \
         - {model_name: b, litellm_params: {model: openai/gpt-4o, api_key: own}}\n \
         - {model_name: c, litellm_params: {model: azure/dep, api_base: 'https://x/'}}\n \
         - {model_name: d, litellm_params: {model: azure/dep, api_base: 'https://x', api_version: v1}}\n \
         - {model_name: e, litellm_params: {model: groq/llama}}\n",
        &env,
    )
    .expect("ok");
    let d = &cfg.deployments;
    assert_eq!(d[0].api_key.as_deref(), Some("sk-env-openai"));
    assert_eq!(
        d[0].route.auth,
        Some(("authorization", "Bearer sk-env-openai".to_string()))
    );
    assert_eq!(
        d[0].route.url("chat/completions"),
        "https://api.openai.com/v1/chat/completions"
    );
    assert_eq!(
        d[1].route.auth,
        Some(("authorization", "Bearer own".to_string()))
    );
    assert_eq!(d[2].route.auth, Some(("api-key", "az-env".to_string())));
    assert_eq!(
        d[2].route.url("embeddings"),
        "https://x/openai/deployments/dep/embeddings?api-version=2024-02-01"
    );
    assert_eq!(
        d[3].route.url("chat/completions"),
        "https://x/openai/deployments/dep/chat/completions?api-version=v1"
    );
    // api_version means nothing to OpenAI-format providers: unused, as before; an Azure
    // wildcard cannot name a deployment in the URL.
    let (_, w) = parse(
        "model_list: [{model_name: a, litellm_params: {model: openai/x, api_version: v}}]",
        &no_env(),
    );
    assert_eq!(
        w,
        ["c.yaml: model_list[0].litellm_params.api_version is not used by litegate; ignored"]
    );
    let e = load_text(
        "model_list: [{model_name: a, litellm_params: {model: azure/*, api_base: http://x}}]",
        &no_env(),
    )
    .expect_err("refused");
    assert!(
        e.0.starts_with("c.yaml: model_list[0].litellm_params.model: an azure"),
        "{e}"
    );
    // No GROQ_API_KEY: no key at all, never another provider's.
    assert_eq!(d[4].route.auth, None);
    assert_eq!(
        d[4].route.url("completions"),
        "https://api.groq.com/openai/v1/completions"
    );
}

#[test]
fn a_key_from_the_environment_sent_to_a_custom_api_base_is_warned_about() {
    let env = Env::from_vars([("OPENAI_API_KEY", "sk-env-openai")]);
    let (_, w) = parse(
        "model_list:\n - {model_name: a, litellm_params: {model: openai/x, api_base: 'http://in.example/v1'}}\n \
         - {model_name: b, litellm_params: {model: openai/x}}\n \
         - {model_name: c, litellm_params: {model: openai/x, api_base: 'http://in.example/v1', api_key: own}}\n",
        &env,
    );
    // Only the custom host that gets the environment's key; the key itself is never printed.
    assert_eq!(
        w,
        [
            "c.yaml: model_list[0].litellm_params.model: no api_key; OPENAI_API_KEY from the \
          environment is sent to its api_base http://in.example/v1"
        ]
    );
}

#[test]
fn timeouts_default_in_litellm_order() {
    let list = "model_list:\n - {model_name: a, litellm_params: {model: openai/x}}\n \
                - {model_name: b, litellm_params: {model: openai/x, timeout: 5}}\n \
                - {model_name: c, litellm_params: {model: openai/x, stream_timeout: 7}}\n";
    let t = |extra: &str| {
        let cfg = load_text(&format!("{list}{extra}"), &no_env()).expect("ok");
        cfg.deployments
            .iter()
            .map(|d| (d.timeout_secs, d.stream_timeout_secs))
            .collect::<Vec<_>>()
    };
    assert_eq!(t(""), vec![(600.0, 600.0), (5.0, 5.0), (600.0, 7.0)]);
    assert_eq!(
        t("litellm_settings:\n  request_timeout: 30\n"),
        vec![(30.0, 30.0), (5.0, 5.0), (30.0, 7.0)]
    );
    assert_eq!(
        t("litellm_settings: {request_timeout: 30}\nrouter_settings: {timeout: 20, stream_timeout: 9}\n"),
        vec![(20.0, 9.0), (5.0, 9.0), (20.0, 7.0)]
    );
    assert!(load_text("litellm_settings: {request_timeout: -1}\n", &no_env()).is_err());
}

#[test]
fn config_aliases() {
    let cfg = load_text(
        "router_settings:\n  model_group_alias: {fast: A, big: {model: B, hidden: true}}\nlitellm_settings:\n  model_alias_map: {old: C}\n",
        &no_env(),
    )
    .expect("ok");
    assert_eq!(cfg.aliases.get("fast").map(String::as_str), Some("A"));
    assert_eq!(cfg.aliases.get("big").map(String::as_str), Some("B"));
    assert_eq!(cfg.aliases.get("old").map(String::as_str), Some("C"));
    assert!(load_text("router_settings:\n  model_group_alias: [a]\n", &no_env()).is_err());
}

#[test]
fn either_alias_name_works_in_either_section_and_a_conflict_is_warned_about() {
    let (cfg, warnings) = parse(
        "litellm_settings: {model_group_alias: {a: X, c: Z}}\nrouter_settings: {model_alias_map: {b: Y, c: W}}\n",
        &no_env(),
    );
    let cfg = cfg.expect("ok");
    assert_eq!(cfg.aliases.len(), 3);
    assert_eq!(cfg.aliases["a"], "X");
    assert_eq!(cfg.aliases["b"], "Y");
    assert_eq!(cfg.aliases["c"], "W", "router_settings is read last");
    assert_eq!(
        warnings,
        ["c.yaml: router_settings.model_alias_map.c: alias defined twice; using 'W'"]
    );
}

#[test]
fn api_base_wins_over_base_url_with_a_warning() {
    let (cfg, warnings) = parse(
        "model_list: [{model_name: a, litellm_params: {model: openai/x, base_url: http://b, api_base: http://a}}]",
        &no_env(),
    );
    assert_eq!(
        cfg.expect("ok").deployments[0].api_base.as_deref(),
        Some("http://a")
    );
    assert_eq!(
        warnings,
        ["c.yaml: model_list[0].litellm_params: both api_base and base_url are set; using api_base"]
    );
}

#[test]
fn user_defaults_are_read() {
    let cfg = load_text(
        "litellm_settings:\n  default_internal_user_params: {max_budget: 5}\n",
        &no_env(),
    )
    .expect("ok");
    assert_ne!(cfg.user_defaults, Config::default().user_defaults);
}

#[test]
fn end_user_defaults_are_read() {
    let cfg = load_text(
        "litellm_settings:\n  max_end_user_budget: 2.5\n  max_end_user_budget_id: tier\n",
        &no_env(),
    )
    .expect("ok");
    assert_eq!(cfg.end_users.max_budget, Some(2.5));
    assert_eq!(cfg.end_users.budget_id.as_deref(), Some("tier"));
    assert_eq!(
        Config::default().end_users,
        crate::config::EndUserDefaults::default()
    );
}

#[test]
fn duplicate_keys_are_invalid_yaml() {
    let e = err("general_settings: {}\ngeneral_settings: {}\n");
    assert!(e.starts_with("c.yaml: not valid YAML:"), "{e}");
}

/// Issue 16 item 2: strict budgets and budget alerts; the webhook URL (a secret) shows its
/// host only.
#[test]
fn budget_enforcement_and_alerting() {
    let env = Env::from_vars([(
        "SLACK_WEBHOOK_URL",
        "https://hooks.slack.com/services/T/B/s3cret",
    )]);
    let cfg = load_text(
        "general_settings:\n  budget_enforcement: strict\n  alerting_webhook_url: \
         os.environ/SLACK_WEBHOOK_URL\n  budget_alert_thresholds: [1.0, 0.5, 0.8, 0.5]\n",
        &env,
    )
    .expect("loads");
    assert!(cfg.strict_budgets);
    assert_eq!(cfg.alerting.thresholds, vec![0.5, 0.8, 1.0]);
    let url = cfg.alerting.webhook.clone().expect("a webhook");
    assert_eq!(url.safe(), "https://hooks.slack.com");
    assert!(!format!("{url:?}").contains("s3cret"));
    assert!(!format!("{:?}", cfg.alerting).contains("s3cret"));
    // Defaults: LiteLLM's behaviour, LiteLLM's alert points, no webhook.
    let d = Config::default();
    assert!(!d.strict_budgets);
    assert_eq!(d.alerting.thresholds, vec![0.85, 0.95, 1.0]);
    assert!(d.alerting.webhook.is_none());
    for (text, field) in [
        (
            "general_settings:\n  budget_enforcement: hard\n",
            "budget_enforcement",
        ),
        (
            "general_settings:\n  alerting_webhook_url: ftp://x\n",
            "alerting_webhook_url",
        ),
        (
            "general_settings:\n  budget_alert_thresholds: [0.5, 1.5]\n",
            "budget_alert_thresholds",
        ),
        (
            "general_settings:\n  budget_alert_thresholds: [0]\n",
            "budget_alert_thresholds",
        ),
        (
            "general_settings:\n  budget_alert_thresholds: 0.5\n",
            "budget_alert_thresholds",
        ),
    ] {
        let e = err(text);
        assert!(e.contains(field), "{text}: {e}");
    }
}
