//! `map::plan` without a database: memberships reconciled from LiteLLM's copies, shared
//! budget rows split per holder, defaults and notes.

use super::*;
use serde_json::json;

fn table(rows: Value) -> Table {
    let rows: Vec<Rec> = rows
        .as_array()
        .map(|a| a.iter().filter_map(|r| r.as_object().cloned()).collect())
        .unwrap_or_default();
    let mut columns: Vec<String> = rows.iter().flat_map(|r| r.keys().cloned()).collect();
    columns.sort();
    columns.dedup();
    Table { columns, rows }
}

fn rows<'a>(p: &'a Plan, t: &str) -> Vec<&'a Out> {
    p.rows.iter().filter(|o| o.table == t).collect()
}

fn text(o: &Out, c: &str) -> String {
    o.get(c).and_then(V::as_text).unwrap_or("").to_string()
}

#[test]
fn members_come_from_every_copy_and_shared_budgets_split() {
    let src = Src {
        budgets: table(
            json!([{"budget_id": "b1", "max_budget": 5.0, "budget_duration": "7d",
            "budget_reset_at": "2027-01-01T00:00:00"}]),
        ),
        teams: table(
            json!([{"team_id": "t", "models": ["A"], "admins": ["u3"], "members": [],
            "members_with_roles": [{"user_id": "u1", "role": "admin"},
                                   {"user_id": null, "user_email": "U2@x.io", "role": "user"}],
            "team_member_permissions": [], "blocked": false}]),
        ),
        team_members: table(json!([
            {"team_id": "t", "user_id": "u1", "spend": 1.5, "budget_id": "b1"},
            {"team_id": "t", "user_id": "u2", "spend": 0.5, "budget_id": "b1"},
            {"team_id": "t", "user_id": "ghost", "spend": 0.0}])),
        users: table(json!([
            {"user_id": "u1", "user_role": "internal_user", "user_email": "u1@x.io"},
            {"user_id": "u2", "user_role": "internal_user", "user_email": "u2@x.io"},
            {"user_id": "u3", "user_role": "proxy_admin"},
            {"user_id": "u4", "user_role": "internal_user", "teams": ["t"]}])),
        ..Src::default()
    };
    let p = plan(&src);
    let members: Vec<String> = rows(&p, "team_members")
        .iter()
        .map(|o| format!("{} {}", text(o, "user_id"), text(o, "role")))
        .collect();
    assert_eq!(members, ["u1 admin", "u2 user", "u3 admin", "u4 user"]);
    let budgets = rows(&p, "budgets");
    assert_eq!(budgets.len(), 2, "one budget row per holder");
    assert!(budgets
        .iter()
        .all(|b| b.get("max_budget") == Some(&V::Real(5.0))));
    assert!(budgets
        .iter()
        .all(|b| text(b, "budget_reset_at") == "2027-01-01T00:00:00.000Z"));
    let u1 = rows(&p, "team_members")[0];
    assert_eq!(u1.get("spend"), Some(&V::Real(1.5)));
    assert_eq!(u1.get("budget_rank"), Some(&V::Int(IMPORTED_RANK)));
    assert!(text(u1, "budget_id").starts_with("b1~"));
    let team = rows(&p, "teams")[0];
    assert_eq!(
        text(team, "member_permissions"),
        r#"["/key/info","/key/health"]"#
    );
    assert_eq!(team.get("limits_rank"), Some(&V::Int(IMPORTED_RANK)));
    assert!(
        p.notes.iter().any(|n| n.contains("member ghost")),
        "{:?}",
        p.notes
    );
}

#[test]
fn a_budget_held_once_keeps_its_id_and_unknown_roles_become_the_least() {
    let src = Src {
        budgets: table(
            json!([{"budget_id": "b", "max_budget": 0.0, "budget_duration": "monthly"}]),
        ),
        orgs: table(
            json!([{"organization_id": "o", "organization_alias": "O", "budget_id": "b",
            "models": [], "spend": 2.5}]),
        ),
        users: table(json!([{"user_id": "u", "user_role": null},
                            {"user_id": "v", "user_role": "customer"}])),
        ..Src::default()
    };
    let p = plan(&src);
    let b = rows(&p, "budgets")[0];
    assert_eq!(text(b, "id"), "b");
    assert_eq!(
        b.get("max_budget"),
        Some(&V::Real(0.0)),
        "0 stays 0 (refuses all)"
    );
    assert_eq!(b.get("budget_duration"), Some(&V::Null));
    assert_eq!(
        rows(&p, "organizations")[0].get("spend"),
        Some(&V::Real(2.5))
    );
    for u in rows(&p, "users") {
        assert_eq!(text(u, "user_role"), "internal_user_viewer");
    }
    assert_eq!(p.notes.len(), 3, "{:?}", p.notes);
}
