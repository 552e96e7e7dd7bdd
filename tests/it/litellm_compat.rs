//! Issue 15 item 5: the API details LiteLLM's own clients rely on (API.md §9), each through
//! HTTP against the real binary: `token_id` on `/key/generate`, `/team/update`'s answer,
//! LiteLLM's wording for model-access refusals and blocked teams, a team key reading its team,
//! `/user/new` with `team_id` and as an upsert, key budgets above the team's, spend-log
//! `request_id` and `metadata.user_api_key_*`, and Azure-style inbound paths.

use crate::common::*;
use litegate::auth::hash_key;
use serde_json::json;

#[test]
fn issue_15_key_generate_answers_token_id() {
    let s = Server::start();
    let v = s.admin("/key/generate", json!({"key_alias": "tid"}));
    let raw = v["key"].as_str().unwrap();
    // LiteLLM's clients read `token_id`: the stored token (sha256 of the raw key).
    assert_eq!(v["token_id"], hash_key(raw), "{v}");
    assert_eq!(v["token"], v["token_id"], "{v}");
    // Regenerate answers the same way for the new key (LiteLLM's regenerate does too).
    let r = s.admin("/key/regenerate", json!({"key": raw}));
    let new_raw = r["key"].as_str().unwrap();
    assert_ne!(new_raw, raw);
    assert_eq!(r["token_id"], hash_key(new_raw), "{r}");
    assert_eq!(r["token"], r["token_id"], "{r}");
}

#[test]
fn issue_15_team_update_answers_team_id_and_data() {
    let s = Server::start();
    let t = s.admin_id(
        "/team/new",
        json!({"team_alias": "before", "models": ["A"]}),
        "team_id",
    );
    let v = s.admin(
        "/team/update",
        json!({"team_id": t, "team_alias": "after", "max_budget": 5.0}),
    );
    // LiteLLM's shape: the id, and the updated team under `data`.
    assert_eq!(v["team_id"], t, "{v}");
    assert_eq!(v["data"]["team_id"], t, "{v}");
    assert_eq!(v["data"]["team_alias"], "after", "{v}");
    assert_eq!(v["data"]["max_budget"], 5.0, "{v}");
    assert_eq!(v["data"]["models"], json!(["A"]), "{v}");
    assert!(v["data"]["members_with_roles"].is_array(), "{v}");
    // The fields litegate answered at the top level before stay there.
    assert_eq!(v["team_alias"], "after", "{v}");
    assert_eq!(v["max_budget"], 5.0, "{v}");
    // /team/new still answers the team itself (API.md §9).
    let n = s.admin("/team/new", json!({"team_alias": "n"}));
    assert!(n["team_id"].is_string() && n.get("data").is_none(), "{n}");
}

#[test]
fn issue_15_model_access_refusals_use_litellm_wording() {
    let s = Server::start();
    let org = s.admin_id(
        "/organization/new",
        json!({"organization_alias": "o", "models": ["A", "B"]}),
        "organization_id",
    );
    let team = s.admin_id(
        "/team/new",
        json!({"organization_id": org, "models": ["A", "B"]}),
        "team_id",
    );
    let key = key_for(&s, json!({"team_id": team, "models": ["A"]}));
    let denied = |model: &str, kind: &str, text: &str| {
        let v = assert_error(&chat(&s, &key, model), 403);
        assert_eq!(v["error"]["type"], kind, "{v}");
        assert_eq!(v["error"]["param"], "model", "{v}");
        assert_eq!(v["error"]["message"], text, "{v}");
    };
    denied(
        "B",
        "key_model_access_denied",
        "key not allowed to access model. This key can only access models=['A']. \
         Tried to access B",
    );
    // The team's own key (no model list of its own) is refused by the team, the team's by
    // the org: each level names itself as LiteLLM does (`team`, `org`).
    s.admin("/team/update", json!({"team_id": team, "models": ["A"]}));
    let team_key = key_for(&s, json!({"team_id": team}));
    let v = assert_error(&chat(&s, &team_key, "B"), 403);
    assert_eq!(v["error"]["type"], "team_model_access_denied", "{v}");
    assert_eq!(
        v["error"]["message"],
        "team not allowed to access model. This team can only access models=['A']. \
         Tried to access B"
    );
    let own = key_for(&s, json!({"organization_id": org}));
    let v = assert_error(&chat(&s, &own, "C"), 403);
    assert_eq!(v["error"]["type"], "org_model_access_denied", "{v}");
    assert_eq!(
        v["error"]["message"],
        "org not allowed to access model. This org can only access models=['A', 'B']. \
         Tried to access C"
    );
    assert_eq!(chat(&s, &key, "A").status, 200);
}

#[test]
fn issue_15_blocked_team_key_gets_401_in_litellm_words() {
    let s = Server::start();
    let team = s.admin_id("/team/new", json!({"team_alias": "t"}), "team_id");
    let key = key_for(&s, json!({"team_id": team}));
    assert_eq!(chat(&s, &key, "A").status, 200);
    s.admin("/team/block", json!({"team_id": team}));
    let want = format!(
        "Authentication Error, Team={team} is blocked. Update via `/team/unblock` if you're an admin."
    );
    for r in [chat(&s, &key, "A"), s.get("/v1/models", &key)] {
        let v = assert_error(&r, 401);
        assert_eq!(v["error"]["type"], "auth_error", "{v}");
        assert_eq!(v["error"]["message"], want, "{v}");
    }
    s.admin("/team/unblock", json!({"team_id": team}));
    assert_eq!(chat(&s, &key, "A").status, 200);
    // A blocked key: 401 with LiteLLM's words too.
    s.admin("/key/block", json!({"key": key}));
    let v = assert_error(&chat(&s, &key, "A"), 401);
    assert_eq!(
        v["error"]["message"],
        "Authentication Error, Key is blocked. Update via `/key/unblock` if you're an admin."
    );
}

#[test]
fn issue_15_team_key_reads_its_own_team_info() {
    let s = Server::start();
    let t1 = s.admin_id("/team/new", json!({"team_alias": "one"}), "team_id");
    let t2 = s.admin_id("/team/new", json!({"team_alias": "two"}), "team_id");
    let key = key_for(&s, json!({"team_id": t1}));
    let other = key_for(&s, json!({"team_id": t1}));
    let r = s.get(&format!("/team/info?team_id={t1}"), &key);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["team_id"], t1);
    assert_eq!(v["team_info"]["team_alias"], "one");
    // Both keys listed; only its own token shown, never a raw key.
    let keys = v["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{v}");
    for k in keys {
        let own = k["key_name"] == litegate::auth::key_name(&key);
        let want = if own {
            json!(hash_key(&key))
        } else {
            json!(null)
        };
        assert_eq!(k["token"], want, "{v}");
    }
    assert!(!r.text().contains(&key) && !r.text().contains(&other));
    // Not another team's.
    assert_error(&s.get(&format!("/team/info?team_id={t2}"), &key), 404);
}

#[test]
fn issue_15_user_new_honours_team_id_and_upserts() {
    let s = Server::start();
    let org = s.admin_id(
        "/organization/new",
        json!({"organization_alias": "o", "models": ["A", "B"]}),
        "organization_id",
    );
    let team = s.admin_id(
        "/team/new",
        json!({"organization_id": org, "models": ["A"]}),
        "team_id",
    );
    let v = s.admin(
        "/user/new",
        json!({"user_id": "u1", "user_email": "u1@example.com", "team_id": team, "max_budget": 3.0}),
    );
    let k1 = v["key"].as_str().unwrap().to_string();
    assert_eq!(v["teams"], json!([team]), "{v}");
    // The user is a `user` member of the team.
    let info = s.get(&format!("/team/info?team_id={team}"), MASTER).json();
    let m = &info["team_info"]["members_with_roles"];
    assert_eq!(m.as_array().map(Vec::len), Some(1), "{info}");
    assert_eq!(m[0]["user_id"], "u1", "{info}");
    assert_eq!(m[0]["role"], "user", "{info}");
    // The auto-created key belongs to that team (and its org): the team's models govern it.
    let ki = s.get("/key/info", &k1).json();
    assert_eq!(ki["info"]["team_id"], team, "{ki}");
    assert_eq!(ki["info"]["organization_id"], org, "{ki}");
    assert_eq!(ki["info"]["user_id"], "u1", "{ki}");
    assert_eq!(chat(&s, &k1, "A").status, 200);
    assert_eq!(chat(&s, &k1, "B").status, 403);

    // Again with the same user_id: an upsert. Given fields change, the others stay; the
    // membership is kept (not duplicated); a new key is issued, the old one still works.
    let v = s.admin(
        "/user/new",
        json!({"user_id": "u1", "team_id": team, "user_role": "internal_user_viewer", "metadata": {"a": 1}}),
    );
    assert_eq!(v["user_id"], "u1");
    assert_eq!(v["user_email"], "u1@example.com", "{v}");
    assert_eq!(v["user_role"], "internal_user_viewer", "{v}");
    assert_eq!(v["max_budget"], 3.0, "{v}");
    assert_eq!(v["metadata"], json!({"a": 1}), "{v}");
    let k2 = v["key"].as_str().unwrap();
    assert_ne!(k2, k1);
    assert_eq!(s.count("SELECT count(*) FROM users WHERE id = 'u1'"), 1);
    assert_eq!(
        s.count("SELECT count(*) FROM team_members WHERE user_id = 'u1'"),
        1
    );
    assert_eq!(
        s.count("SELECT count(*) FROM api_keys WHERE user_id = 'u1'"),
        2
    );
    assert_eq!(chat(&s, &k1, "A").status, 200);
    // An email already held by a different user is still 409, and changes nothing.
    s.admin(
        "/user/new",
        json!({"user_id": "u2", "user_email": "u2@example.com"}),
    );
    let r = s.post(
        "/user/new",
        MASTER,
        json!({"user_id": "u1", "user_email": "U2@example.com"}),
    );
    assert_error(&r, 409);
    let u = s.get("/user/info?user_id=u1", MASTER).json();
    assert_eq!(u["user_info"]["user_email"], "u1@example.com", "{u}");
    assert_eq!(
        s.count("SELECT count(*) FROM api_keys WHERE user_id = 'u1'"),
        2
    );
    // An unknown team_id: 400 naming it, no user made.
    let r = s.post(
        "/user/new",
        MASTER,
        json!({"user_id": "u3", "team_id": "ghost"}),
    );
    assert_eq!(assert_error(&r, 400)["error"]["param"], "team_id");
    assert_eq!(s.count("SELECT count(*) FROM users WHERE id = 'u3'"), 0);
}

#[test]
fn issue_15_key_budget_may_exceed_its_teams_and_the_team_budget_still_governs() {
    let s = Server::start();
    let team = s.admin_id(
        "/team/new",
        json!({"team_alias": "small", "max_budget": 0.001}),
        "team_id",
    );
    // Above the team's budget: accepted (it was a 400 before issue 15), on generate and update.
    let v = s.admin(
        "/key/generate",
        json!({"team_id": team, "max_budget": 100.0}),
    );
    assert_eq!(v["max_budget"], 100.0, "{v}");
    let key = v["key"].as_str().unwrap().to_string();
    let u = s.admin("/key/update", json!({"key": key, "max_budget": 50.0}));
    assert_eq!(u["max_budget"], 50.0, "{u}");
    // At request time the team's budget refuses, though the key's is far from spent.
    let mut refused = None;
    for _ in 0..5 {
        let r = chat(&s, &key, "A");
        if r.status != 200 {
            refused = Some(r);
            break;
        }
    }
    let r = refused.expect("the team's budget never refused");
    let v = assert_error_says(&r, 422, "Team");
    assert_eq!(v["error"]["type"], "budget_exceeded", "{v}");
    let ki = s.get("/key/info", &key).json();
    assert!(ki["info"]["spend"].as_f64().unwrap() < 50.0, "{ki}");
}

/// The `data:` payloads of an SSE answer, `[DONE]` excluded, as JSON.
fn stream_events(r: &Resp) -> Vec<serde_json::Value> {
    r.text()
        .split("\n\n")
        .filter_map(|e| e.trim().strip_prefix("data:").map(str::trim))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

/// A call's id as the caller sees it equals its `x-litellm-call-id` and its spend-log row's
/// `request_id`; returns the row.
fn row_of_completion(s: &Server, r: &Resp, completion_id: &str) -> serde_json::Value {
    assert_eq!(r.header("x-litellm-call-id"), Some(completion_id));
    let rows = s
        .get(&format!("/spend/logs?request_id={completion_id}"), MASTER)
        .json();
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{rows}");
    assert_eq!(rows[0]["request_id"], completion_id);
    rows[0].clone()
}

#[test]
fn issue_15_spend_log_request_id_is_the_completion_id_with_user_api_key_metadata() {
    let f = crate::upstream::Fake::start();
    let s = Server::start_with(&crate::upstream::config(&f, ""), &[]);
    let org = s.admin_id(
        "/organization/new",
        json!({"organization_alias": "acme"}),
        "organization_id",
    );
    let team = s.admin_id(
        "/team/new",
        json!({"organization_id": org, "team_alias": "research"}),
        "team_id",
    );
    s.admin(
        "/user/new",
        json!({"user_id": "ana", "auto_create_key": false}),
    );
    s.admin(
        "/team/member_add",
        json!({"team_id": team, "member": {"user_id": "ana", "role": "user"}}),
    );
    let key = key_for(
        &s,
        json!({"team_id": team, "user_id": "ana", "key_alias": "ana-ci"}),
    );
    let want_meta = |row: &serde_json::Value, end_user: serde_json::Value| {
        let m = &row["metadata"];
        assert_eq!(m["user_api_key"], hash_key(&key), "{row}");
        assert_eq!(m["user_api_key_alias"], "ana-ci", "{row}");
        assert_eq!(m["user_api_key_team_id"], team, "{row}");
        assert_eq!(m["user_api_key_team_alias"], "research", "{row}");
        assert_eq!(m["user_api_key_org_id"], org, "{row}");
        assert_eq!(m["user_api_key_user_id"], "ana", "{row}");
        assert_eq!(m["user_api_key_end_user_id"], end_user, "{row}");
        let column = end_user.as_str().unwrap_or_default().to_string();
        assert_eq!(row["end_user"], column, "{row}");
    };
    // The upstream answers with its own id ("chatcmpl-fake", the same every time): the caller
    // gets the request id instead, and the row is found by it.
    let mut body = chat_body("json");
    body["user"] = json!("customer-7");
    let r = s.post("/v1/chat/completions", &key, body);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let id = v["id"].as_str().unwrap().to_string();
    assert_ne!(id, "chatcmpl-fake");
    assert_eq!(
        v["object"], "chat.completion",
        "the rest is the upstream's: {v}"
    );
    let row = row_of_completion(&s, &r, &id);
    want_meta(&row, json!("customer-7"));
    // A second call gets its own id (the upstream's repeats).
    let r2 = chat(&s, &key, "json");
    let id2 = r2.json()["id"].as_str().unwrap().to_string();
    assert_ne!(id2, id);
    want_meta(&row_of_completion(&s, &r2, &id2), json!(null));
    // A stream: every chunk carries the same id.
    let r = s.post(
        "/v1/chat/completions",
        &key,
        json!({"model": "sse", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let evs = stream_events(&r);
    assert!(!evs.is_empty());
    let sid = evs[0]["id"].as_str().unwrap().to_string();
    assert!(evs.iter().all(|e| e["id"] == sid.as_str()), "{}", r.text());
    want_meta(&row_of_completion(&s, &r, &sid), json!(null));
    // Text completions likewise (the mock provider: the next test).
    let r = s.post(
        "/v1/completions",
        &key,
        json!({"model": "json", "prompt": "hi"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let cid = r.json()["id"].as_str().unwrap().to_string();
    row_of_completion(&s, &r, &cid);
}

#[test]
fn issue_15_mock_completion_id_is_the_request_id() {
    let s = Server::start();
    let key = key_for(&s, json!({"key_alias": "k"}));
    let r = chat(&s, &key, "A");
    let id = r.json()["id"].as_str().unwrap().to_string();
    let row = row_of_completion(&s, &r, &id);
    assert_eq!(row["metadata"]["user_api_key_alias"], "k");
    assert_eq!(row["metadata"]["user_api_key_team_id"], json!(null));
    let r = s.post(
        "/v1/chat/completions",
        &key,
        json!({"model": "A", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
    );
    let evs = stream_events(&r);
    let sid = evs[0]["id"].as_str().unwrap().to_string();
    assert!(evs.iter().all(|e| e["id"] == sid.as_str()));
    row_of_completion(&s, &r, &sid);
}

#[test]
fn issue_15_azure_style_inbound_paths() {
    let s = Server::start();
    let key = key_for(&s, json!({"models": ["A", "B"]}));
    let azure = |path: &str, body: serde_json::Value, header: &str, k: &str| {
        s.request(
            "POST",
            &format!("{path}?api-version=2024-10-21"),
            None,
            Some(body.to_string().as_bytes()),
            &[(header, k)],
        )
    };
    // The Azure SDK sends its key in `api-key` and no model in the body: the path names it.
    let r = azure(
        "/openai/deployments/A/chat/completions",
        json!({"messages": [{"role": "user", "content": "hi"}]}),
        "api-key",
        &key,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "chat.completion", "{v}");
    let row = row_of_completion(&s, &r, v["id"].as_str().unwrap());
    assert_eq!(row["model"], "A", "{row}");
    // The path wins over the body's model (LiteLLM's order); access is checked on it.
    let r = azure(
        "/openai/deployments/B/chat/completions",
        json!({"model": "C", "messages": [{"role": "user", "content": "hi"}]}),
        "api-key",
        &key,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let row = row_of_completion(&s, &r, r.json()["id"].as_str().unwrap());
    assert_eq!(row["model"], "B", "{row}");
    let r = azure(
        "/openai/deployments/C/chat/completions",
        json!({"model": "A", "messages": [{"role": "user", "content": "hi"}]}),
        "api-key",
        &key,
    );
    assert_eq!(
        assert_error(&r, 403)["error"]["type"],
        "key_model_access_denied"
    );
    // Completions and embeddings; a Bearer key works too.
    let r = azure(
        "/openai/deployments/A/completions",
        json!({"prompt": "hi"}),
        "authorization",
        &format!("Bearer {key}"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["object"], "text_completion");
    let r = azure(
        "/openai/deployments/A/embeddings",
        json!({"input": ["a", "b"]}),
        "api-key",
        &key,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"].as_array().map(Vec::len), Some(2));
    // Streams.
    let r = azure(
        "/openai/deployments/A/chat/completions",
        json!({"stream": true, "messages": [{"role": "user", "content": "hi"}]}),
        "api-key",
        &key,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().ends_with("data: [DONE]\n\n"), "{}", r.text());
    // No key, a wrong key: 401; an unknown deployment: the usual refusal.
    let r = azure(
        "/openai/deployments/A/chat/completions",
        json!({"messages": [{"role": "user", "content": "hi"}]}),
        "api-key",
        "sk-wrong-key-0000000000000000",
    );
    assert_error(&r, 401);
    let r = s.request(
        "POST",
        "/openai/deployments/A/chat/completions",
        None,
        Some(br#"{"messages": [{"role": "user", "content": "hi"}]}"#),
        &[],
    );
    assert_error(&r, 401);
    let r = azure(
        "/openai/deployments/nope/chat/completions",
        json!({"messages": [{"role": "user", "content": "hi"}]}),
        "api-key",
        &key,
    );
    assert!(r.status == 400 || r.status == 403, "{}", r.text());
}

/// LiteLLM's `/engines/{model}/…` paths (the model from the path, as the Azure ones).
#[test]
fn issue_15_engines_paths() {
    let s = Server::start();
    let key = key_for(&s, json!({"models": ["A"]}));
    let post = |path: &str, body: serde_json::Value| s.post(path, &key, body);
    let r = post(
        "/engines/A/chat/completions",
        json!({"model": "B", "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let row = row_of_completion(&s, &r, r.json()["id"].as_str().unwrap());
    assert_eq!(row["model"], "A", "the path wins: {row}");
    let r = post("/engines/A/completions", json!({"prompt": "hi"}));
    assert_eq!(r.json()["object"], "text_completion", "{}", r.text());
    let r = post("/engines/A/embeddings", json!({"input": "hi"}));
    assert_eq!(r.json()["data"].as_array().map(Vec::len), Some(1));
    let r = post(
        "/engines/B/chat/completions",
        json!({"messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(
        assert_error(&r, 403)["error"]["type"],
        "key_model_access_denied"
    );
}

/// `POST /key/health` answers LiteLLM's shape for any authenticated key, a calls-only one too
/// (a team's default member permissions name it); no key → 401.
#[test]
fn issue_15_key_health() {
    let w = World::new()
        .teams(&[("t1", None, &["A"])])
        .internal_users(&["bob"])
        .team_members(&[("t1", "bob", "user")]);
    let own = w.key("bob").to_string();
    let issued = w.gen_key(AS_MASTER, json!({"user_id": "bob", "team_id": "t1"}));
    for key in [own.as_str(), issued.as_str(), MASTER] {
        let r = w.s.post("/key/health", key, json!({}));
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            r.json(),
            json!({"key": "healthy", "logging_callbacks": null})
        );
    }
    let r = w.s.request("POST", "/key/health", None, Some(b"{}"), &[]);
    assert_error(&r, 401);
}

/// LiteLLM routes litegate does not serve get a 404 naming what is not supported (before any
/// key is read); unknown paths keep the plain 404.
#[test]
fn issue_15_unsupported_litellm_routes_are_named() {
    let s = Server::start();
    for (method, path, words) in [
        ("POST", "/v1/images/generations", "image generation"),
        ("POST", "/v1/audio/transcriptions", "audio"),
        ("POST", "/v1/responses", "Responses API"),
        ("POST", "/v1/rerank", "rerank"),
        ("GET", "/v1/files", "files"),
        ("POST", "/key/bulk_update", "bulk key updates"),
        ("GET", "/global/spend/report", "global spend"),
        ("GET", "/health", "model health checks"),
    ] {
        let r = s.request(method, path, None, Some(b"{}"), &[]);
        let v = assert_error(&r, 404);
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert!(
            msg.contains(words) && msg.contains("not support"),
            "{path}: {msg}"
        );
    }
    let r = s.request("GET", "/no/such/thing", None, None, &[]);
    let v = assert_error(&r, 404);
    assert_eq!(v["error"]["message"], "Route not found: /no/such/thing");
}
