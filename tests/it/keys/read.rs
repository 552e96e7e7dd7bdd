//! /key/info and /key/list.

use super::*;

// ---------------------------------------------------------------------------------------------
// /key/info

#[test]
fn info_by_raw_key_or_token_never_shows_the_raw_key() {
    let w = world();
    let (raw, _) = gen(
        &w,
        MASTER,
        json!({"team_id": "t1", "user_id": "alice", "key_alias": "i", "max_budget": 3}),
    );
    for (caller, q) in [
        (MASTER, raw.clone()),
        (MASTER, hash_key(&raw)),
        (&w["alice"], raw.clone()),
        (&w["tadmin"], hash_key(&raw)),
        (&w["oadmin"], raw.clone()),
        (&w["pview"], raw.clone()),
    ] {
        let r = info(&w, caller, &q);
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(!r.text().contains(&raw), "{}", r.text());
        let v = r.json();
        assert_eq!(v["key"], hash_key(&raw));
        let i = &v["info"];
        assert_eq!(i["token"], hash_key(&raw));
        assert_eq!(i["key_alias"], "i");
        assert_eq!(i["team_id"], "t1");
        assert_eq!(i["user_id"], "alice");
        assert_eq!(i["max_budget"], 3.0);
        assert_eq!(i["effective_models"], json!(["A"]));
    }
    for caller in [&w["outsider"], &w["oadmin2"], &w["iviewer"]] {
        let v = assert_error(&info(&w, caller, &raw), 404);
        assert_eq!(v["error"]["type"], "not_found_error");
    }
    assert_error(&info(&w, MASTER, "sk-no-such-key-anywhere"), 404);
}

#[test]
fn info_without_key_is_the_callers_own_and_400_for_the_master_key() {
    let w = world();
    for q in ["/key/info", "/key/info?key="] {
        let r = w.get(q, &w["alice"]);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["info"]["token"], hash_key(&w["alice"]));
        assert_eq!(r.json()["info"]["user_id"], "alice");
        let v = assert_error(&w.get(q, MASTER), 400);
        assert_eq!(v["error"]["param"], "key");
    }
    // A team key without a user sees itself.
    let (svc, _) = gen(&w, MASTER, json!({"team_id": "t2"}));
    let r = w.get("/key/info", &svc);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["info"]["token"], hash_key(&svc));
}

#[test]
fn info_effective_models_equal_v1_models() {
    let w = world();
    w.exec("UPDATE users SET models = '[\"C\", \"D\"]' WHERE id = 'bob'");
    let cases: Vec<(String, Vec<&str>)> = vec![
        (key_for(&w, json!({})), vec!["A", "B", "C", "D"]),
        (key_for(&w, json!({"models": ["grp-ab"]})), vec!["A", "B"]),
        (
            key_for(&w, json!({"team_id": "t2", "models": ["all-team-models"]})),
            vec!["A", "B"],
        ),
        (key_for(&w, json!({"team_id": "t1"})), vec!["A"]),
        (
            key_for(
                &w,
                json!({"organization_id": "org1", "models": ["all-org-models"]}),
            ),
            vec!["A", "B"],
        ),
        (key_for(&w, json!({"user_id": "bob"})), vec!["C", "D"]),
        (
            key_for(&w, json!({"user_id": "bob", "models": ["D"]})),
            vec!["D"],
        ),
    ];
    for (raw, want) in cases {
        let listed = models_of(&w, &raw);
        assert_eq!(listed, want, "{}", col(&w, &raw, "models"));
        let r = info(&w, MASTER, &raw);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["info"]["effective_models"], json!(listed));
    }
}

// ---------------------------------------------------------------------------------------------
// /key/list

#[test]
fn list_pages_through_every_key() {
    let s = Server::start();
    let mut raws: Vec<String> = (0..7).map(|_| key_for(&s, json!({}))).collect();
    raws.push(seed_user(&s, "alice", "internal_user"));
    let all = sorted_tokens(&raws.iter().map(String::as_str).collect::<Vec<_>>());
    let mut seen = Vec::new();
    for page in 1..=3 {
        let v = list(&s, MASTER, &format!("?page={page}&size=3"));
        assert_eq!(v["total_count"], 8);
        assert_eq!(v["total_pages"], 3);
        assert_eq!(v["current_page"], page);
        let t = tokens(&v);
        assert_eq!(t.len(), if page < 3 { 3 } else { 2 }, "{v}");
        seen.extend(t);
    }
    seen.sort();
    assert_eq!(seen, all, "every key once");
    let v = list(&s, MASTER, "?page=4&size=3");
    assert_eq!(v["keys"], json!([]));
    // Defaults.
    let v = list(&s, MASTER, "");
    assert_eq!(v["current_page"], 1);
    assert_eq!(v["total_pages"], 1);
    assert_eq!(tokens(&v), all);
    // Full objects carry tokens, never raw keys.
    let r = s.get("/key/list?return_full_object=true&size=100", MASTER);
    assert_eq!(r.status, 200);
    for raw in &raws {
        assert!(!r.text().contains(raw.as_str()));
    }
    let v = r.json();
    let keys = v["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 8);
    let mut full: Vec<String> = keys
        .iter()
        .map(|k| {
            assert!(k["key_name"].as_str().unwrap().starts_with("sk-..."), "{k}");
            assert!(k.get("key").is_none(), "{k}");
            k["token"].as_str().unwrap().to_string()
        })
        .collect();
    full.sort();
    assert_eq!(full, all);
}

#[test]
fn list_filters_and_scopes_to_the_caller() {
    let w = world();
    let (a_team, _) = gen(
        &w,
        &w["alice"],
        json!({"team_id": "t1", "key_alias": "a-team"}),
    );
    let (a_personal, _) = gen(&w, &w["alice"], json!({}));
    let (t_key, _) = gen(&w, &w["tadmin"], json!({"team_id": "t1"}));
    let (svc_t1, _) = gen(&w, MASTER, json!({"team_id": "t1"}));
    let (bob_t2, _) = gen(&w, MASTER, json!({"team_id": "t2", "user_id": "bob"}));
    let q = "?size=100";
    // Filters, as an admin.
    assert_eq!(
        tokens(&list(&w, MASTER, "?team_id=t1&size=100")),
        sorted_tokens(&[&a_team, &t_key, &svc_t1])
    );
    assert_eq!(
        tokens(&list(&w, MASTER, "?user_id=alice&size=100")),
        sorted_tokens(&[&w["alice"], &a_team, &a_personal])
    );
    assert_eq!(
        tokens(&list(&w, MASTER, "?team_id=t1&user_id=alice")),
        sorted_tokens(&[&a_team])
    );
    assert_eq!(
        tokens(&list(&w, MASTER, "?organization_id=org2")),
        sorted_tokens(&[&bob_t2])
    );
    assert_eq!(
        tokens(&list(&w, MASTER, "?key_alias=a-team")),
        sorted_tokens(&[&a_team])
    );
    // An internal user sees only their own keys...
    let v = list(&w, &w["alice"], q);
    assert_eq!(
        tokens(&v),
        sorted_tokens(&[&w["alice"], &a_team, &a_personal])
    );
    assert_eq!(v["total_count"], 3);
    assert_eq!(
        tokens(&list(&w, &w["alice"], "?user_id=bob")),
        Vec::<String>::new()
    );
    assert_eq!(
        tokens(&list(&w, &w["outsider"], q)),
        sorted_tokens(&[&w["outsider"]])
    );
    // ...plus the keys of teams they administer (not members' personal keys).
    assert_eq!(
        tokens(&list(&w, &w["tadmin"], q)),
        sorted_tokens(&[&w["tadmin"], &a_team, &t_key, &svc_t1])
    );
    assert_eq!(
        tokens(&list(&w, &w["oadmin"], q)),
        sorted_tokens(&[&w["oadmin"], &a_team, &t_key, &svc_t1])
    );
    // A proxy admin viewer sees all.
    let v = list(&w, &w["pview"], q);
    assert_eq!(v["total_count"], key_count(&w));
    assert_eq!(tokens(&v).len() as i64, key_count(&w));
}

#[test]
fn list_rejects_bad_paging() {
    let s = Server::start();
    for q in [
        "size=0",
        "size=1000",
        "size=x",
        "page=0",
        "page=-1",
        "page=x",
    ] {
        let r = s.get(&format!("/key/list?{q}"), MASTER);
        let v = assert_error(&r, 400);
        assert_eq!(v["error"]["type"], "invalid_request_error", "{q}");
    }
    assert_eq!(list(&s, MASTER, "?size=100")["total_count"], 0);
}
