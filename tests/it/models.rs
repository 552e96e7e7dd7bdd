//! Issue 15 item 3: models managed at runtime (`/model/new`, `/model/update`, `PATCH
//! /model/{id}/update`, `/model/delete`, `/model/info`, `/model_group/info`), through HTTP
//! against the real binary (both engines): a round trip, who may (a role matrix whose refusals
//! write nothing), the upstream secret in no answer, log or database byte, a stored model
//! callable at once (mock and relayed to the fake upstream), team-scoped models, restarts and
//! a wrong salt key, bad input.

use crate::common::*;
use crate::upstream::{Fake, UPSTREAM_KEY};
use serde_json::{json, Value};

/// The model ids (`model_info.id`) of `/model/info` as `key` sees it.
fn info_ids(s: &Server, key: &str) -> Vec<String> {
    let v = s.get("/model/info", key).json();
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["model_info"]["id"].as_str().unwrap().to_string())
        .collect()
}

/// The names `/v1/models` lists for `key`.
fn listed(s: &Server, key: &str) -> Vec<String> {
    fields_of(&s.get("/v1/models", key).json()["data"], "id")
}

fn groups(s: &Server, key: &str) -> Vec<String> {
    fields_of(
        &s.get("/model_group/info", key).json()["data"],
        "model_group",
    )
}

#[test]
fn issue_15_stored_model_round_trip() {
    let s = Server::start();
    let key = key_for(&s, json!({}));
    assert_error_says(&chat(&s, &key, "fresh"), 400, "Invalid model name");
    let v = s.admin(
        "/model/new",
        json!({"model_name": "fresh", "litellm_params": {"model": "mock/fresh", "rpm": 7},
               "model_info": {"id": "m-fresh", "note": "added at runtime"}}),
    );
    assert_eq!(v["model_id"], "m-fresh", "{v}");
    assert_eq!(v["model_name"], "fresh");
    assert_eq!(
        v["litellm_params"],
        json!({"model": "mock/fresh", "rpm": 7})
    );
    assert_eq!(v["created_by"], "default_user_id");
    // Callable at once, listed everywhere.
    let r = chat(&s, &key, "fresh");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["model"], "fresh");
    assert!(listed(&s, &key).contains(&"fresh".to_string()));
    assert!(groups(&s, &key).contains(&"fresh".to_string()));
    let info = s.get("/model/info?litellm_model_id=m-fresh", MASTER).json();
    assert_eq!(info["data"][0]["model_info"]["db_model"], true, "{info}");
    assert_eq!(info["data"][0]["model_info"]["note"], "added at runtime");
    assert_eq!(info["data"][0]["litellm_params"]["rpm"], 7);
    let config_a = s.get("/model/info?litellm_model_id=a-1", MASTER).json();
    assert!(
        config_a["data"][0]["model_info"]["db_model"].is_null(),
        "{config_a}"
    );
    assert_eq!(s.count("SELECT count(*) FROM proxy_models"), 1);

    // /model/update (LiteLLM's: model_info.id) and PATCH /model/{id}/update.
    let v = s.admin(
        "/model/update",
        json!({"model_info": {"id": "m-fresh"}, "litellm_params": {"rpm": 9}}),
    );
    assert_eq!(
        v["litellm_params"],
        json!({"model": "mock/fresh", "rpm": 9}),
        "{v}"
    );
    let r = s.send(
        "PATCH",
        "/model/m-fresh/update",
        MASTER,
        json!({"model_name": "renamed", "litellm_params": {"rpm": null}}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["litellm_params"], json!({"model": "mock/fresh"}));
    assert_error_says(&chat(&s, &key, "fresh"), 400, "Invalid model name");
    assert_eq!(chat(&s, &key, "renamed").status, 200);
    let g = s.get("/model_group/info?model_group=renamed", &key).json();
    assert_eq!(g["data"][0]["providers"], json!(["mock"]), "{g}");
    assert_eq!(g["data"].as_array().unwrap().len(), 1);

    // Delete: the next call is refused, the lists forget it.
    let v = s.admin("/model/delete", json!({"id": "m-fresh"}));
    assert_eq!(v["message"], "Model: m-fresh deleted successfully");
    assert_error_says(&chat(&s, &key, "renamed"), 400, "Invalid model name");
    assert!(!info_ids(&s, MASTER).contains(&"m-fresh".to_string()));
    assert!(!listed(&s, &key).contains(&"renamed".to_string()));
    assert_eq!(s.count("SELECT count(*) FROM proxy_models"), 0);
}

#[test]
fn issue_15_relayed_stored_model_keeps_its_secret() {
    let fake = Fake::start();
    let s = Server::start();
    let key = key_for(&s, json!({}));
    let v = s.admin(
        "/model/new",
        json!({"model_name": "relayed", "litellm_params": {"model": "openai/json",
               "api_base": fake.api_base(), "api_key": UPSTREAM_KEY,
               "aws_secret_access_key": "sk-never-shown-aws"}}),
    );
    let id = v["model_id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 36, "a uuid when none is given: {v}");
    let r = chat(&s, &key, "relayed");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        fake.last().header("authorization"),
        Some(&*format!("Bearer {UPSTREAM_KEY}"))
    );
    let updated = s.admin(
        "/model/update",
        json!({"model_info": {"id": id}, "litellm_params": {"rpm": 100}}),
    );
    assert_eq!(
        chat(&s, &key, "relayed").status,
        200,
        "the key survives an update"
    );
    let answers = [
        v,
        updated,
        s.get("/model/info", MASTER).json(),
        s.get("/v2/model/info", MASTER).json(),
        s.get("/model/info", &key).json(),
        s.get("/model_group/info", MASTER).json(),
        s.get("/v1/models", &key).json(),
    ];
    for a in &answers {
        let t = a.to_string();
        assert!(
            !t.contains(UPSTREAM_KEY) && !t.contains("sk-never-shown-aws"),
            "{t}"
        );
    }
    assert!(answers[0]["litellm_params"].get("api_key").is_none());
    assert_eq!(answers[1]["litellm_params"]["rpm"], 100);
    assert_eq!(answers[1]["litellm_params"]["api_base"], fake.api_base());
    assert!(!s.log().contains(UPSTREAM_KEY), "the log holds the secret");
    let bytes = db_bytes(&s);
    assert!(
        !contains(&bytes, UPSTREAM_KEY),
        "the secret is stored in plain text"
    );
    assert!(!contains(&bytes, "sk-never-shown-aws"));
    assert!(
        !contains(&bytes, "openai/json"),
        "every string value is encrypted"
    );
}

/// Team t1 (models A only) with admin `ta` and member `tu`; team t2 (open) with admin `tb`;
/// `plain` an internal user; `padmin` a proxy admin user.
fn world() -> World {
    World::new()
        .teams(&[("t1", None, &["A"]), ("t2", None, &[])])
        .users(&[
            ("ta", "internal_user"),
            ("tu", "internal_user"),
            ("tb", "internal_user"),
            ("plain", "internal_user"),
            ("padmin", "proxy_admin"),
        ])
        .team_members(&[
            ("t1", "ta", "admin"),
            ("t1", "tu", "user"),
            ("t2", "tb", "admin"),
        ])
        .team_keys(&[("k1", "t1", "tu"), ("k2", "t2", "tb")])
}

fn mock(name: &str) -> Value {
    json!({"model_name": name, "litellm_params": {"model": format!("mock/{name}")}})
}

fn team_mock(name: &str, team: &str, id: &str) -> Value {
    json!({"model_name": name, "litellm_params": {"model": "mock/x"},
           "model_info": {"team_id": team, "id": id}})
}

#[test]
fn issue_15_who_may_manage_models_and_bad_input() {
    let w = world();
    let unknown_provider =
        json!({"model_name": "x", "litellm_params": {"model": "nope/x", "api_key": "sk-1"}});
    let cases = [
        // Global models: proxy admins only.
        Case::post(ANON, "/model/new", mock("g"), 401),
        Case::post("plain", "/model/new", mock("g"), 403),
        Case::post("ta", "/model/new", mock("g"), 403),
        Case::post("k1", "/model/new", mock("g"), 403),
        // Team models: that team's admins.
        Case::post("tu", "/model/new", team_mock("m", "t1", "t1-m"), 403),
        Case::post("tb", "/model/new", team_mock("m", "t1", "t1-m"), 403),
        Case::post("plain", "/model/new", team_mock("m", "t1", "t1-m"), 403),
        Case::post("ta", "/model/new", team_mock("m", "t9", "t9-m"), 400).param("model_info.team_id"),
        // Bad input: 400 naming the field, nothing stored.
        Case::post(AS_MASTER, "/model/new", json!({"litellm_params": {"model": "mock/x"}}), 400)
            .param("model_name"),
        Case::post(AS_MASTER, "/model/new", json!({"model_name": "x"}), 400).param("litellm_params"),
        Case::post(AS_MASTER, "/model/new", unknown_provider, 400).param("litellm_params.model"),
        Case::post(AS_MASTER, "/model/new", json!({"model_name": "x", "litellm_params": {"model": "gpt"}}), 400)
            .param("litellm_params.model"),
        Case::post(AS_MASTER, "/model/new", json!({"model_name": "x", "litellm_params": "mock/x"}), 400)
            .param("litellm_params"),
        Case::post(AS_MASTER, "/model/new", json!({"model_name": "x", "litellm_params": {"model": "mock/x", "rpm": -1}}), 400)
            .param("litellm_params.rpm"),
        Case::post(AS_MASTER, "/model/new", json!({"model_name": "x", "litellm_params": {"model": "mock/x"}, "model_info": {"id": 5}}), 400)
            .param("model_info.id"),
        Case::post(AS_MASTER, "/model/new", json!({"model_name": "x", "litellm_params": {"model": "mock/x"}, "model_info": {"id": "a-1"}}), 409),
        Case::post("ta", "/model/new", json!({"model_name": "w*", "litellm_params": {"model": "mock/x"}, "model_info": {"team_id": "t1"}}), 400)
            .param("model_name"),
        Case::post("ta", "/model/new", json!({"model_name": "v", "litellm_params": {"model": "vertex_ai/gemini-pro", "vertex_credentials": "/etc/passwd"}, "model_info": {"team_id": "t1"}}), 400)
            .param("litellm_params.vertex_credentials"),
        // A team's model reads no environment (`os.environ/` is the operator's).
        Case::post("ta", "/model/new", json!({"model_name": "e", "litellm_params": {"model": "openai/x", "api_base": "http://127.0.0.1:9/v1", "api_key": "os.environ/TEST_MASTER_KEY"}, "model_info": {"team_id": "t1"}}), 400)
            .param("litellm_params.api_key"),
        // Config models are the file's; unknown ids are 404.
        Case::post(AS_MASTER, "/model/update", json!({"model_info": {"id": "a-1"}, "litellm_params": {"rpm": 1}}), 400),
        Case::post(AS_MASTER, "/model/update", json!({"model_info": {"id": "nope"}, "litellm_params": {"rpm": 1}}), 404),
        Case::post(AS_MASTER, "/model/update", json!({"litellm_params": {"rpm": 1}}), 400).param("model_info.id"),
        Case::post(AS_MASTER, "/model/delete", json!({"id": "a-1"}), 400).param("id"),
        Case::post(AS_MASTER, "/model/delete", json!({"id": "nope"}), 404),
        // The ones allowed.
        Case::post("padmin", "/model/new", json!({"model_name": "g", "litellm_params": {"model": "mock/g"}, "model_info": {"id": "g"}}), 200),
        Case::post("ta", "/model/new", team_mock("m", "t1", "t1-m"), 200),
        Case::post(AS_MASTER, "/model/new", team_mock("m2", "t2", "t2-m"), 200),
        // Another team's admin: the model is invisible to them (404), its own admin may.
        Case::post("tb", "/model/update", json!({"model_info": {"id": "t1-m"}, "litellm_params": {"rpm": 3}}), 404),
        Case::post("tb", "/model/delete", json!({"id": "t1-m"}), 404),
        Case::post("tu", "/model/delete", json!({"id": "t1-m"}), 403),
        Case::post("k1", "/model/delete", json!({"id": "t1-m"}), 403),
        Case::post("ta", "/model/update", json!({"model_info": {"id": "t1-m", "team_id": "t2"}}), 400)
            .param("model_info.team_id"),
        Case::post("ta", "/model/update", json!({"model_info": {"id": "t1-m"}, "litellm_params": {"rpm": 3}}), 200),
        Case::post("plain", "/model/delete", json!({"id": "t2-m"}), 404),
        Case::post("ta", "/model/delete", json!({"id": "g"}), 403),
        Case::post("ta", "/model/delete", json!({"id": "t1-m"}), 200),
    ];
    run_cases(&w, &cases);
    assert_eq!(w.count("SELECT count(*) FROM proxy_models"), 2);
}

#[test]
fn issue_15_team_models_are_their_teams_only() {
    let w = world();
    let v = w.call(
        "ta",
        "POST",
        "/model/new",
        team_mock("mine", "t1", "t1-mine"),
        200,
    );
    let stored = v["model_name"].as_str().unwrap().to_string();
    assert!(
        stored.starts_with("model_name_t1_"),
        "LiteLLM's unique name: {v}"
    );
    assert_eq!(v["model_info"]["team_public_model_name"], "mine");
    // The team's restricted list got the public name (LiteLLM's team_model_add).
    let team = w.get("/team/info?team_id=t1", MASTER).json();
    assert_eq!(team["team_info"]["models"], json!(["A", "mine"]), "{team}");

    // Its team's keys see and call it by its public name.
    let r = chat(&w, &w["k1"], "mine");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(listed(&w, &w["k1"]).contains(&"mine".to_string()));
    assert!(groups(&w, &w["k1"]).contains(&"mine".to_string()));
    let mut ids = info_ids(&w, &w["k1"]);
    ids.sort();
    assert_eq!(ids, ["a-1", "t1-mine"]);
    // Another team (open list), a personal key: invisible, not callable.
    for k in ["k2", "plain"] {
        assert_error_says(&chat(&w, &w[k], "mine"), 400, "Invalid model name");
        assert_error_says(&chat(&w, &w[k], &stored), 400, "Invalid model name");
        assert!(!listed(&w, &w[k])
            .iter()
            .any(|m| m == "mine" || *m == stored));
        assert!(!info_ids(&w, &w[k]).contains(&"t1-mine".to_string()));
        assert!(!groups(&w, &w[k])
            .iter()
            .any(|m| m == "mine" || *m == stored));
    }
    // A restricted team without it: the team's model-access refusal.
    w.admin("/team/new", json!({"team_id": "t3", "models": ["A"]}));
    let k3 = key_for(&w, json!({"team_id": "t3"}));
    let e = assert_error(&chat(&w, &k3, "mine"), 403);
    assert_eq!(e["error"]["type"], "team_model_access_denied");
    // Admins see it under its stored name, and call it by that name.
    assert!(info_ids(&w, MASTER).contains(&"t1-mine".to_string()));
    assert!(info_ids(&w, &w["padmin"]).contains(&"t1-mine".to_string()));
    assert_eq!(chat(&w, MASTER, &stored).status, 200);

    // Its public name shadows a global model of that name for its team only.
    w.admin(
        "/model/new",
        json!({"model_name": "shared", "litellm_params": {"model": "mock/global"}}),
    );
    w.call(
        "ta",
        "POST",
        "/model/new",
        team_mock("shared", "t1", "t1-shared"),
        200,
    );
    assert_eq!(chat(&w, &w["k1"], "shared").json()["model"], "shared");
    let k1_info = w.get("/model/info?model=shared", &w["k1"]).json();
    assert_eq!(
        k1_info["data"][0]["model_info"]["id"], "t1-shared",
        "{k1_info}"
    );
    let k2_info = w.get("/model/info?model=shared", &w["k2"]).json();
    assert!(k2_info["data"][0]["model_info"]["id"].as_str().unwrap() != "t1-shared");

    // Deleted: its name leaves the team's list, the next call is refused.
    w.call("ta", "POST", "/model/delete", json!({"id": "t1-mine"}), 200);
    let team = w.get("/team/info?team_id=t1", MASTER).json();
    assert_eq!(
        team["team_info"]["models"],
        json!(["A", "shared"]),
        "{team}"
    );
    assert_error(&chat(&w, &w["k1"], "mine"), 403);
    // Deleting the team deletes its models.
    w.admin("/team/delete", json!({"team_ids": ["t1"]}));
    assert_eq!(
        w.count("SELECT count(*) FROM proxy_models WHERE model_id = 't1-shared'"),
        0
    );
    assert!(!info_ids(&w, MASTER).contains(&"t1-shared".to_string()));
}

#[test]
fn issue_15_restart_keeps_stored_models_and_a_wrong_salt_key_makes_them_unusable() {
    let fake = Fake::start();
    let mut s = Server::start_with_env(TEST_CONFIG, &[], &[("LITELLM_SALT_KEY", "salt-one")]);
    let key = key_for(&s, json!({}));
    s.admin(
        "/model/new",
        json!({"model_name": "kept", "litellm_params": {"model": "openai/json",
               "api_base": fake.api_base(), "api_key": UPSTREAM_KEY},
               "model_info": {"id": "kept-1"}}),
    );
    s.restart();
    assert_eq!(chat(&s, &key, "kept").status, 200, "kept across a restart");
    assert_eq!(fake.count(), 1);

    // Another salt key: the start goes on, the model is listed but refused with why.
    for (k, v) in s.env.iter_mut() {
        if k == "LITELLM_SALT_KEY" {
            *v = "salt-two".into();
        }
    }
    s.restart();
    let r = chat(&s, &key, "kept");
    let e = assert_error_says(&r, 503, "cannot be decrypted");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("LITELLM_SALT_KEY"),
        "{e}"
    );
    assert_eq!(fake.count(), 1, "nothing went upstream");
    assert_eq!(chat(&s, &key, "A").status, 200, "the others work");
    let info = s.get("/model/info?litellm_model_id=kept-1", MASTER).json();
    assert!(
        info["data"][0]["model_info"]["litegate_unusable"].is_string(),
        "{info}"
    );
    assert!(s.log().contains("stored model kept-1 (kept) is unusable"));
    // An update must give the lost values again; then it works (under the new key).
    let r = s.post(
        "/model/update",
        MASTER,
        json!({"model_info": {"id": "kept-1"}, "litellm_params": {"rpm": 5}}),
    );
    assert_error_says(&r, 400, "cannot be decrypted");
    s.admin(
        "/model/update",
        json!({"model_info": {"id": "kept-1"}, "litellm_params": {"model": "openai/json",
               "api_base": fake.api_base(), "api_key": UPSTREAM_KEY}}),
    );
    assert_eq!(chat(&s, &key, "kept").status, 200);
    assert_eq!(fake.count(), 2);
}

#[test]
fn issue_15_without_a_salt_or_master_key_nothing_is_stored() {
    // No master key configured: litegate generates one and keeps only its hash.
    let s = Server::start_with("model_list: []\n", &[]);
    let master = s
        .stdout_lines
        .iter()
        .find_map(|l| l.strip_prefix("litegate: master key: "))
        .expect("the generated key is printed")
        .to_string();
    let r = s.post("/model/new", &master, mock("x"));
    assert_error_says(&r, 400, "LITELLM_SALT_KEY");
    assert_eq!(s.count("SELECT count(*) FROM proxy_models"), 0);
}
