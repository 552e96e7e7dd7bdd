//! Model access along organization → team → key (API.md §4), through the real server.

use crate::common::*;
use serde_json::json;

pub fn models_of(s: &Server, key: &str) -> Vec<String> {
    let r = s.get("/v1/models", key);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "list");
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(m["object"], "model");
            m["id"].as_str().unwrap().to_string()
        })
        .collect()
}

fn assert_denied(r: &Resp, kind: &str) {
    let v = assert_error(r, 403);
    assert_eq!(v["error"]["type"], kind, "{v}");
    assert_eq!(v["error"]["param"], "model", "{v}");
}

/// The PR's own story (issue 3): all-org-models follows the org's current models.
#[test]
fn all_org_models_follows_the_org_on_the_next_request() {
    let s = Server::start();
    let org = s.admin(
        "/organization/new",
        json!({"organization_alias": "acme", "models": ["A", "B"]}),
    );
    let org_id = org["organization_id"].as_str().unwrap();
    let team = s.admin(
        "/team/new",
        json!({"team_alias": "t", "organization_id": org_id}),
    );
    let team_id = team["team_id"].as_str().unwrap();
    let key = key_for(
        &s,
        json!({"team_id": team_id, "models": ["all-org-models"]}),
    );
    assert_eq!(models_of(&s, &key), vec!["A", "B"]);
    assert_eq!(chat(&s, &key, "A").status, 200);
    assert_denied(&chat(&s, &key, "C"), "org_model_access_denied");
    let r = s.send(
        "PATCH",
        "/organization/update",
        MASTER,
        json!({"organization_id": org_id, "models": ["A", "C"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // The very next request of the same key.
    assert_eq!(chat(&s, &key, "C").status, 200);
    assert_denied(&chat(&s, &key, "B"), "org_model_access_denied");
    assert_eq!(models_of(&s, &key), vec!["A", "C"]);
}

#[test]
fn empty_team_in_restricted_org_cannot_exceed_org() {
    let s = Server::start();
    seed_org(&s, "o1", &["A"]);
    seed_team(&s, "t1", Some("o1"), &[]);
    let key = key_for(&s, json!({"team_id": "t1"}));
    assert_eq!(models_of(&s, &key), vec!["A"]);
    assert_eq!(chat(&s, &key, "A").status, 200);
    assert_denied(&chat(&s, &key, "B"), "org_model_access_denied");
}

#[test]
fn key_whose_team_leaves_its_org_may_call_nothing() {
    let s = Server::start();
    seed_org(&s, "o1", &["A", "B"]);
    seed_team(&s, "t1", Some("o1"), &[]);
    let key = key_for(&s, json!({"team_id": "t1", "models": ["all-org-models"]}));
    assert_eq!(chat(&s, &key, "A").status, 200);
    s.exec("UPDATE teams SET organization_id = NULL WHERE id = 't1'");
    assert!(models_of(&s, &key).is_empty());
    assert_denied(&chat(&s, &key, "A"), "key_model_access_denied");
    assert_denied(&chat(&s, &key, "C"), "key_model_access_denied");
}

#[test]
fn deleted_team_key_gets_401() {
    let s = Server::start();
    seed_team(&s, "t1", None, &[]);
    let key = key_for(&s, json!({"team_id": "t1"}));
    assert_eq!(chat(&s, &key, "A").status, 200);
    s.exec("DELETE FROM teams WHERE id = 't1'");
    assert_error(&chat(&s, &key, "A"), 401);
    assert_error(&s.get("/v1/models", &key), 401);
}

#[test]
fn blocked_team_and_blocked_key_deny() {
    let s = Server::start();
    seed_team(&s, "t1", None, &[]);
    let key = key_for(&s, json!({"team_id": "t1"}));
    s.exec("UPDATE teams SET blocked = 1 WHERE id = 't1'");
    // 401 as LiteLLM (API.md §9; 403 before issue 15).
    assert_error(&chat(&s, &key, "A"), 401);
    s.exec("UPDATE teams SET blocked = 0 WHERE id = 't1'");
    assert_eq!(chat(&s, &key, "A").status, 200);
    let r = s.post("/key/block", MASTER, json!({"key": key}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_error(&chat(&s, &key, "A"), 401);
    let r = s.post("/key/unblock", MASTER, json!({"key": key}));
    assert_eq!(r.status, 200);
    assert_eq!(chat(&s, &key, "A").status, 200);
}

#[test]
fn all_org_models_is_refused_without_an_org_or_when_the_team_lacks_org_models() {
    let s = Server::start();
    seed_team(&s, "no-org", None, &[]);
    let v = expect(
        &s,
        MASTER,
        "/key/generate",
        json!({"team_id": "no-org", "models": ["all-org-models"]}),
        400,
    );
    assert_eq!(v["error"]["param"], "models");
    expect(
        &s,
        MASTER,
        "/key/generate",
        json!({"models": ["all-org-models"]}),
        400,
    );
    seed_org(&s, "o1", &["A", "B"]);
    seed_team(&s, "narrow", Some("o1"), &["A"]);
    let r = s.post(
        "/key/generate",
        MASTER,
        json!({"team_id": "narrow", "models": ["all-org-models"]}),
    );
    assert_error_says(&r, 400, "B");
    // A team that can call all of the org's models may offer it.
    seed_team(&s, "wide", Some("o1"), &["A", "B", "C"]);
    let key = key_for(&s, json!({"team_id": "wide", "models": ["all-org-models"]}));
    assert_eq!(models_of(&s, &key), vec!["A", "B"]);
    // A key without a team, in an org of its own.
    let key = key_for(
        &s,
        json!({"organization_id": "o1", "models": ["all-org-models"]}),
    );
    assert_eq!(models_of(&s, &key), vec!["A", "B"]);
    assert_eq!(
        s.count("SELECT count(*) FROM api_keys"),
        2,
        "refused keys were not written"
    );
}

#[test]
fn all_team_models_needs_a_team_and_follows_it() {
    let s = Server::start();
    expect(
        &s,
        MASTER,
        "/key/generate",
        json!({"models": ["all-team-models"]}),
        400,
    );
    seed_team(&s, "t1", None, &["A", "C"]);
    let key = key_for(&s, json!({"team_id": "t1", "models": ["all-team-models"]}));
    assert_eq!(models_of(&s, &key), vec!["A", "C"]);
    s.exec("UPDATE teams SET models = '[\"B\"]' WHERE id = 't1'");
    assert_eq!(models_of(&s, &key), vec!["B"]);
    assert_denied(&chat(&s, &key, "A"), "team_model_access_denied");
}

#[test]
fn key_models_must_fit_the_team() {
    let s = Server::start();
    seed_org(&s, "o1", &["A", "B"]);
    seed_team(&s, "t1", Some("o1"), &["A"]);
    let r = s.post(
        "/key/generate",
        MASTER,
        json!({"team_id": "t1", "models": ["A", "B"]}),
    );
    assert_error_says(&r, 400, "B");
    expect(
        &s,
        MASTER,
        "/key/generate",
        json!({"team_id": "t1", "models": ["all-proxy-models"]}),
        400,
    );
    expect(
        &s,
        MASTER,
        "/key/generate",
        json!({"team_id": "t1", "models": ["grp-ab"]}),
        400,
    );
    assert_eq!(s.count("SELECT count(*) FROM api_keys"), 0);
    // Later shrink of the team governs at request time.
    let key = key_for(&s, json!({"team_id": "t1", "models": ["A"]}));
    s.exec("UPDATE teams SET models = '[\"B\"]' WHERE id = 't1'");
    assert_denied(&chat(&s, &key, "A"), "team_model_access_denied");
    assert!(models_of(&s, &key).is_empty());
}

#[test]
fn personal_keys_answer_to_the_user_and_the_keys_org() {
    let s = Server::start();
    let ukey = seed_user(&s, "u1", "internal_user");
    s.exec("UPDATE users SET models = '[\"A\",\"D\"]' WHERE id = 'u1'");
    assert_eq!(models_of(&s, &ukey), vec!["A", "D"]);
    expect(
        &s,
        MASTER,
        "/key/generate",
        json!({"user_id": "u1", "models": ["B"]}),
        400,
    );
    seed_org(&s, "o1", &["A"]);
    seed_org_member(&s, "o1", "u1", "internal_user");
    let key = key_for(&s, json!({"user_id": "u1", "organization_id": "o1"}));
    assert_eq!(models_of(&s, &key), vec!["A"]);
    assert_denied(&chat(&s, &key, "D"), "org_model_access_denied");
}

#[test]
fn access_groups_and_wildcards() {
    let s = Server::start_with(
        &format!("{TEST_CONFIG}  \n",).replace(
            "general_settings:",
            "  - model_name: openai/*\n    litellm_params: { model: mock/any }\ngeneral_settings:",
        ),
        &[],
    );
    let key = key_for(&s, json!({"models": ["grp-ab"]}));
    assert_eq!(models_of(&s, &key), vec!["A", "B"]);
    assert_eq!(chat(&s, &key, "B").status, 200);
    assert_denied(&chat(&s, &key, "C"), "key_model_access_denied");
    let key = key_for(&s, json!({"models": ["openai/gpt-4o"]}));
    assert_eq!(models_of(&s, &key), vec!["openai/gpt-4o"]);
    assert_eq!(chat(&s, &key, "openai/gpt-4o").status, 200);
    assert_denied(&chat(&s, &key, "openai/gpt-5"), "key_model_access_denied");
    let key = key_for(&s, json!({"models": ["openai/*"]}));
    assert_eq!(models_of(&s, &key), vec!["openai/*"]);
    assert_eq!(chat(&s, &key, "openai/anything").status, 200);
    assert_denied(&chat(&s, &key, "A"), "key_model_access_denied");
}

#[test]
fn v1_models_lists_no_sentinels_and_model_info_hides_secrets() {
    let s = Server::start();
    let key = key_for(&s, json!({"models": ["all-proxy-models"]}));
    assert_eq!(models_of(&s, &key), vec!["A", "B", "C", "D"]);
    let r = s.get("/models", &key);
    assert_eq!(r.status, 200);
    for path in ["/model/info", "/v1/model/info", "/v2/model/info"] {
        let r = s.get(path, &key);
        assert_eq!(r.status, 200, "{path}");
        assert!(
            !r.text().contains("sk-upstream-secret"),
            "{path} leaked: {}",
            r.text()
        );
        assert_eq!(r.json()["data"].as_array().unwrap().len(), 4, "{path}");
    }
    let key = key_for(&s, json!({"models": ["C"]}));
    for path in ["/model/info", "/v1/model/info", "/v2/model/info"] {
        let v = s.get(path, &key).json();
        let names = fields_of(&v["data"], "model_name");
        assert_eq!(names, vec!["C"], "{path}");
    }
}

#[test]
fn unknown_model_is_400_and_missing_model_is_400() {
    let s = Server::start();
    let key = key_for(&s, json!({}));
    let v = assert_error(&chat(&s, &key, "nope"), 400);
    assert_eq!(v["error"]["param"], "model");
    expect(
        &s,
        &key,
        "/v1/chat/completions",
        json!({"messages": []}),
        400,
    );
}

#[test]
fn expired_key_is_401_expired() {
    let s = Server::start();
    let key = key_for(&s, json!({"duration": "1h"}));
    assert_eq!(chat(&s, &key, "A").status, 200);
    s.exec("UPDATE api_keys SET expires = '2020-01-01T00:00:00.000Z'");
    let v = assert_error(&chat(&s, &key, "A"), 401);
    assert_eq!(v["error"]["type"], "expired_key");
}

#[test]
fn mock_calls_completions_embeddings_and_stream() {
    let s = Server::start();
    let key = key_for(&s, json!({}));
    let r = s.post(
        "/v1/chat/completions",
        &key,
        json!({"model": "A", "messages": [{"role": "user", "content": "hello"}], "mock_response": "pong"}),
    );
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["choices"][0]["message"]["content"], "pong");
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    let r = s.post("/completions", &key, json!({"model": "A", "prompt": "x"}));
    assert_eq!(r.status, 200);
    assert!(r.json()["choices"][0]["text"].is_string());
    let r = s.post(
        "/v1/embeddings",
        &key,
        json!({"model": "A", "input": ["a", "b"]}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 2);
    let r = s.post(
        "/v1/chat/completions",
        &key,
        json!({"model": "A", "messages": [{"role": "user", "content": "hi"}], "stream": true}),
    );
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .contains("text/event-stream"));
    let t = r.text();
    assert!(
        t.contains("chat.completion.chunk") && t.trim_end().ends_with("data: [DONE]"),
        "{t}"
    );
}

#[test]
fn key_aliases_apply_before_the_access_check() {
    let s = Server::start();
    let key = key_for(
        &s,
        json!({"models": ["A"], "aliases": {"fast": "A", "sneaky": "C"}}),
    );
    let r = chat(&s, &key, "fast");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["model"], "A");
    assert_denied(&chat(&s, &key, "sneaky"), "key_model_access_denied");
}

#[test]
fn config_aliases_apply_and_the_check_is_on_the_target() {
    let cfg =
        format!("{TEST_CONFIG}router_settings:\n  model_group_alias: {{fast: A, sneaky: C}}\n");
    let s = Server::start_with(&cfg, &[]);
    let key = key_for(&s, json!({"models": ["A"]}));
    let r = chat(&s, &key, "fast");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["model"], "A");
    assert_denied(&chat(&s, &key, "sneaky"), "key_model_access_denied");
}
