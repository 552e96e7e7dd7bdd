//! Spend recording and budgets.

use super::*;
use litegate::db::sql::Arg;

// ---------------------------------------------------------------------------------------------
// Spend

/// An org with a team, user `alice` a member of both, and a team key of alice's.
fn org_team_alice(s: &Server, org: Value, team: Value, keyb: Value) -> (String, String, String) {
    let mut org = org;
    org["organization_alias"] = json!("acme");
    let org_id = s.admin("/organization/new", org)["organization_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut team = team;
    team["organization_id"] = json!(org_id);
    let team_id = s.admin("/team/new", team)["team_id"]
        .as_str()
        .unwrap()
        .to_string();
    seed_user(s, "alice", "internal_user");
    seed_org_member(s, &org_id, "alice", "internal_user");
    seed_team_member(s, &team_id, "alice", "user");
    let mut keyb = keyb;
    keyb["team_id"] = json!(team_id);
    keyb["user_id"] = json!("alice");
    (org_id, team_id, key(s, keyb))
}

#[test]
fn spend_at_every_level_and_in_the_spend_log() {
    let (_f, s) = setup();
    let (org, team, k) = org_team_alice(&s, json!({}), json!({}), json!({}));
    let mut ids = Vec::new();
    for _ in 0..2 {
        let r = chat(&s, &k, "json");
        assert_eq!(r.status, 200, "{}", r.text());
        ids.push(call_id(&r));
    }
    let token = litegate::auth::hash_key(&k);
    for sql in [
        format!("SELECT spend FROM api_keys WHERE token = '{token}'"),
        format!("SELECT spend FROM teams WHERE id = '{team}'"),
        format!("SELECT spend FROM organizations WHERE id = '{org}'"),
        "SELECT spend FROM users WHERE id = 'alice'".to_string(),
        format!("SELECT spend FROM team_members WHERE team_id = '{team}' AND user_id = 'alice'"),
        format!(
            "SELECT spend FROM organization_members WHERE organization_id = '{org}' \
             AND user_id = 'alice'"
        ),
    ] {
        let got = num(&s, &sql);
        assert!(near(got, 2.0 * CALL_COST), "{sql}: {got}");
    }
    let row = log_row(&s, &ids[0]);
    assert_eq!(row["api_key"], token.as_str());
    assert_eq!(row["team_id"], team.as_str());
    assert_eq!(row["organization_id"], org.as_str());
    assert_eq!(row["user"], "alice");
    assert_eq!(row["model"], "json");
    assert_eq!(row["call_type"], "acompletion");
    assert_eq!(
        (
            &row["prompt_tokens"],
            &row["completion_tokens"],
            &row["total_tokens"]
        ),
        (&json!(10), &json!(20), &json!(30))
    );
    assert_eq!(row["status"], "success");
    assert!(row["startTime"].as_str().unwrap() <= row["endTime"].as_str().unwrap());

    // Bob's call; each non-admin sees only their own keys' rows, the admin sees all.
    let bob = seed_user(&s, "bob", "internal_user");
    let r = chat(&s, &bob, "json");
    assert_eq!(r.status, 200);
    let bob_call = call_id(&r);
    let ids_seen = |caller: &str| -> Vec<String> {
        let r = s.get("/spend/logs", caller);
        assert_eq!(r.status, 200, "{}", r.text());
        sorted_field(&r.json(), "request_id")
    };
    let mut all = vec![ids[0].clone(), ids[1].clone(), bob_call.clone()];
    all.sort();
    assert_eq!(ids_seen(MASTER), all);
    let mut alices = ids.clone();
    alices.sort();
    assert_eq!(ids_seen(&k), alices);
    assert_eq!(ids_seen(&bob), vec![bob_call.clone()]);
    // A filter cannot widen a non-admin's view.
    let r = s.get(&format!("/spend/logs?request_id={bob_call}"), &k);
    assert_eq!(r.json(), json!([]));
}

#[test]
fn spend_survives_kill_9_right_after_the_response() {
    let (_f, mut s) = setup();
    let k = key(&s, json!({}));
    let r = chat(&s, &k, "json");
    assert_eq!(r.status, 200);
    let id = call_id(&r);
    s.stop(); // SIGKILL
    s.restart();
    let token = litegate::auth::hash_key(&k);
    assert!(near(
        num(
            &s,
            &format!("SELECT spend FROM api_keys WHERE token = '{token}'")
        ),
        CALL_COST
    ));
    assert_eq!(log_row(&s, &id)["status"], "success");

    // A stream: billed before the client sees `[DONE]`.
    let mut st = Stream::open(&s, &k, "/v1/chat/completions", stream_body("sse"));
    let id = st.header("x-litellm-call-id").to_string();
    assert_eq!(st.rest().last().unwrap(), "[DONE]");
    s.stop();
    s.restart();
    assert_eq!(log_row(&s, &id)["completion_tokens"], 20);
    assert!(near(
        num(
            &s,
            &format!("SELECT spend FROM api_keys WHERE token = '{token}'")
        ),
        2.0 * CALL_COST
    ));
}

// ---------------------------------------------------------------------------------------------
// Budgets

/// One call's cost exhausts the budget at `level`: the first call passes, the second is a 422
/// naming the level and changes nothing.
fn budget_case(level: &str) {
    let (f, s) = setup();
    let b = json!({"max_budget": CALL_COST});
    let none = json!({});
    let (org, team, mut k) = org_team_alice(
        &s,
        if level == "Organization" {
            b.clone()
        } else {
            none.clone()
        },
        if level == "Team" {
            b.clone()
        } else {
            none.clone()
        },
        if level == "Key" {
            b.clone()
        } else {
            none.clone()
        },
    );
    match level {
        "User" => {
            // User budgets govern personal keys.
            run_sql(
                &s,
                "UPDATE users SET max_budget = ?1 WHERE id = 'alice'",
                &[Arg::from(CALL_COST)],
            );
            k = format!("sk-test-alice-{}", "x".repeat(16));
        }
        "Team member" | "Organization member" => {
            s.admin(
                "/budget/new",
                json!({"budget_id": "member-budget", "max_budget": CALL_COST}),
            );
            let sql = if level == "Team member" {
                format!(
                    "UPDATE team_members SET budget_id = 'member-budget' WHERE team_id = '{team}'"
                )
            } else {
                format!(
                    "UPDATE organization_members SET budget_id = 'member-budget' \
                     WHERE organization_id = '{org}'"
                )
            };
            run_sql(&s, &sql, &[]);
        }
        _ => {}
    }
    let r = chat(&s, &k, "json");
    assert_eq!(r.status, 200, "{}", r.text());
    let before = snapshot(&s);
    let v = assert_error(&chat(&s, &k, "json"), 422);
    assert_eq!(v["error"]["type"], "budget_exceeded", "{v}");
    let m = v["error"]["message"].as_str().unwrap();
    assert!(m.contains(&format!("{level}=")), "{level}: {m}");
    assert!(
        m.contains("Current cost") && m.contains("Max budget"),
        "{m}"
    );
    assert_eq!(f.count(), 1);
    assert_eq!(snapshot(&s), before, "a refused call changed the database");
    assert_eq!(s.count("SELECT count(*) FROM spend_logs"), 1);
}

#[test]
fn budget_key() {
    budget_case("Key");
}
#[test]
fn budget_team() {
    budget_case("Team");
}
#[test]
fn budget_org() {
    budget_case("Organization");
}
#[test]
fn budget_user_personal_key() {
    budget_case("User");
}
#[test]
fn budget_team_member() {
    budget_case("Team member");
}
#[test]
fn budget_org_member() {
    budget_case("Organization member");
}

/// `n` parallel chat calls; returns how many succeeded. Anything but 200/422 fails.
fn burst(s: &Server, k: &str, n: usize, body: &Value) -> usize {
    let oks = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..n)
            .map(|_| sc.spawn(|| s.post("/v1/chat/completions", k, body.clone()).status))
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<u16>>()
    });
    assert!(oks.iter().all(|c| *c == 200 || *c == 422), "{oks:?}");
    oks.iter().filter(|c| **c == 200).count()
}

/// The server's worker count (`--workers 16` in the harness): no more calls can be in flight.
const IN_FLIGHT_BOUND: usize = 16;

#[test]
fn concurrent_burst_against_an_exhausted_budget() {
    let (f, s) = setup();
    // One call's cost exhausts the budget; 20 at once.
    let k = key(&s, json!({"max_budget": CALL_COST}));
    let ok = burst(&s, &k, 20, &chat_body("lag"));
    let token = litegate::auth::hash_key(&k);
    let spent = num(
        &s,
        &format!("SELECT spend FROM api_keys WHERE token = '{token}'"),
    );
    eprintln!("burst of 20 against a one-call budget: {ok} admitted, spend {spent}");
    assert!(ok >= 1);
    assert_eq!(f.count(), ok);
    // The reservation of the first admitted call covers the budget: the others wait for it.
    // A call authenticated just before the first one settled may still pass: at most one more.
    assert!(
        ok <= 2,
        "{ok} calls admitted against a budget one call exhausts"
    );
    assert!(near(spent, ok as f64 * CALL_COST));

    // Issue 4: 50 parallel calls against budgets that allow 10, at key, team and org level.
    // `max_tokens` keeps the reservation estimate below the real cost (the worst case).
    let mut body = chat_body("lag");
    body["max_tokens"] = json!(20);
    let ten = 10.0 * CALL_COST;
    let k_key = key(&s, json!({"max_budget": ten}));
    let team = s.admin_id("/team/new", json!({"max_budget": ten}), "team_id");
    let k_team = key(&s, json!({"team_id": team}));
    let org = s.admin_id(
        "/organization/new",
        json!({"organization_alias": "o", "max_budget": ten}),
        "organization_id",
    );
    let team2 = s.admin_id("/team/new", json!({"organization_id": org}), "team_id");
    let k_org = key(&s, json!({"team_id": team2}));
    for (what, k, sql) in [
        (
            "key",
            &k_key,
            format!(
                "SELECT spend FROM api_keys WHERE token = '{}'",
                litegate::auth::hash_key(&k_key)
            ),
        ),
        (
            "team",
            &k_team,
            format!("SELECT spend FROM teams WHERE id = '{team}'"),
        ),
        (
            "org",
            &k_org,
            format!("SELECT spend FROM organizations WHERE id = '{org}'"),
        ),
    ] {
        let before = f.count();
        let spent_before = num(&s, &sql);
        let ok = burst(&s, k, 50, &body);
        let seen = f.count() - before;
        let spent = num(&s, &sql) - spent_before;
        eprintln!("{what}: 50 parallel calls, budget for 10: {ok} admitted, upstream saw {seen}, spend {spent:.3} of {ten}");
        assert_eq!(seen, ok);
        assert!(ok >= 10, "{what}: {ok}");
        assert!(ok <= 10 + IN_FLIGHT_BOUND, "{what}: {ok}");
        assert!(
            spent <= ten + IN_FLIGHT_BOUND as f64 * CALL_COST + 1e-9,
            "{what}: {spent}"
        );
    }
}

#[test]
fn budget_duration_resets_spend() {
    let f = Fake::start();
    let s = Server::start_with_env(
        &config(&f, ""),
        &[],
        &[("LITEGATE_BUDGET_RESET_SECS", "0.2")],
    );
    let k = key(
        &s,
        json!({"max_budget": CALL_COST, "budget_duration": "1h"}),
    );
    let token = litegate::auth::hash_key(&k);
    assert_eq!(chat(&s, &k, "json").status, 200);
    assert_error(&chat(&s, &k, "json"), 422);
    // Not due yet: nothing resets.
    let spend = format!("SELECT spend FROM api_keys WHERE token = '{token}'");
    assert!(near(num(&s, &spend), CALL_COST));
    run_sql(
        &s,
        "UPDATE api_keys SET budget_reset_at = '2020-01-01T00:00:00.000Z' WHERE token = ?1",
        &[Arg::from(&token)],
    );
    until("the key's spend is reset", 10, || num(&s, &spend) == 0.0);
    let next: String = s.value(
        "SELECT budget_reset_at FROM api_keys WHERE token = ?1",
        [&token],
    );
    let in_ms = litegate::util::ms_from_iso(&next).unwrap() - litegate::util::now_ms();
    assert!((3_500_000..=3_600_000).contains(&in_ms), "{next}");
    assert_eq!(chat(&s, &k, "json").status, 200);

    // A team's budget the same way.
    let team = s.admin_id(
        "/team/new",
        json!({"max_budget": CALL_COST, "budget_duration": "1d"}),
        "team_id",
    );
    let tk = key(&s, json!({"team_id": team}));
    assert_eq!(chat(&s, &tk, "json").status, 200);
    let v = assert_error(&chat(&s, &tk, "json"), 422);
    assert!(v["error"]["message"].as_str().unwrap().contains("Team="));
    run_sql(
        &s,
        "UPDATE teams SET budget_reset_at = '2020-01-01T00:00:00.000Z' WHERE id = ?1",
        &[Arg::from(&team)],
    );
    let tspend = format!("SELECT spend FROM teams WHERE id = '{team}'");
    until("the team's spend is reset", 10, || num(&s, &tspend) == 0.0);
    assert_eq!(chat(&s, &tk, "json").status, 200);

    // An organization's, through its budget row.
    let org = s.admin_id(
        "/organization/new",
        json!({"organization_alias": "o", "max_budget": CALL_COST, "budget_duration": "1d"}),
        "organization_id",
    );
    let ot = s.admin_id("/team/new", json!({"organization_id": org}), "team_id");
    let ok = key(&s, json!({"team_id": ot}));
    assert_eq!(chat(&s, &ok, "json").status, 200);
    let v = assert_error(&chat(&s, &ok, "json"), 422);
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Organization="));
    run_sql(
        &s,
        "UPDATE budgets SET budget_reset_at = '2020-01-01T00:00:00.000Z'
             WHERE id = (SELECT budget_id FROM organizations WHERE id = ?1)",
        &[Arg::from(&org)],
    );
    let ospend = format!("SELECT spend FROM organizations WHERE id = '{org}'");
    until("the org's spend is reset", 10, || num(&s, &ospend) == 0.0);
    assert_eq!(chat(&s, &ok, "json").status, 200);
}
