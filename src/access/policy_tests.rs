//! The policy predicates as a table: caller × question → yes/no, on a small in-memory store.
//! (The HTTP role matrices in `tests/it` check the same rules end to end.)

use super::*;
use crate::auth::{self, hash_key};
use rusqlite::params;
use rusqlite::Connection;

const NOW: &str = "2026-01-01T00:00:00.000Z";

/// Org `o` with team `t`; team `free` without an org. Users: `oadmin` (org_admin of o),
/// `omember` (internal_user in o), `tadmin` / `tuser` (admin / user of t), `viewer` (a proxy
/// admin viewer), `iviewer` (an internal user viewer, admin of t), `out` (nothing). Keys:
/// `sk-tuser` (tuser's, in t), `sk-calls` (tadmin's, issued by someone else: calls-only).
fn store() -> Connection {
    let mut c = Connection::open_in_memory().expect("mem");
    crate::db::migrate::migrate(&mut c).expect("migrate");
    c.execute_batch(&format!(
        "INSERT INTO organizations (id, alias, created_at, updated_at) VALUES ('o', 'o', '{NOW}', '{NOW}');
         INSERT INTO teams (id, organization_id, created_at, updated_at) VALUES ('t', 'o', '{NOW}', '{NOW}');
         INSERT INTO teams (id, created_at, updated_at) VALUES ('free', '{NOW}', '{NOW}');"
    ))
    .expect("org, teams");
    for (u, role) in [
        ("oadmin", "internal_user"),
        ("omember", "internal_user"),
        ("tadmin", "internal_user"),
        ("tuser", "internal_user"),
        ("viewer", "proxy_admin_viewer"),
        ("iviewer", "internal_user_viewer"),
        ("out", "internal_user"),
    ] {
        c.execute(
            "INSERT INTO users (id, user_role, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
            params![u, role, NOW],
        )
        .expect("user");
    }
    for (u, role) in [("oadmin", "org_admin"), ("omember", "internal_user")] {
        c.execute(
            "INSERT INTO organization_members (organization_id, user_id, user_role, created_at,
                updated_at) VALUES ('o', ?1, ?2, ?3, ?3)",
            params![u, role, NOW],
        )
        .expect("org member");
    }
    for (u, role) in [("tadmin", "admin"), ("tuser", "user"), ("iviewer", "admin")] {
        c.execute(
            "INSERT INTO team_members (team_id, user_id, role, created_at, updated_at)
             VALUES ('t', ?1, ?2, ?3, ?3)",
            params![u, role, NOW],
        )
        .expect("team member");
    }
    for (raw, user, reach) in [
        ("sk-tuser", "tuser", "owner"),
        ("sk-calls", "tadmin", "calls"),
    ] {
        c.execute(
            "INSERT INTO api_keys (token, key_name, team_id, user_id, reach, created_at,
                updated_at) VALUES (?1, 'sk-...', 't', ?2, ?3, ?4, ?4)",
            params![hash_key(raw), user, reach, NOW],
        )
        .expect("key");
    }
    c
}

fn caller(c: &Connection, who: &str) -> Caller {
    match who {
        "master" => Caller::master(),
        k if k.starts_with("sk-") => auth::check_key(c, "no-master", k).expect("key caller"),
        u => {
            let role = db::users::get(c, u).expect("get").expect("user").user_role;
            Caller {
                role: Role::parse(&role).expect("role"),
                user_id: Some(u.to_string()),
                key: None,
                user_models: Some(vec![]),
            }
        }
    }
}

#[test]
fn who_may_read_and_administer() {
    let c = store();
    let t = db::teams::get(&c, "t").expect("get").expect("t");
    let free = db::teams::get(&c, "free").expect("get").expect("free");
    let key = db::keys::by_token(&c, &hash_key("sk-tuser"))
        .expect("get")
        .expect("key")
        .k;
    // Columns: read org o, admin of o, read t, admin of t, manages t, manages free,
    // manage tuser's key, see tuser's key.
    #[rustfmt::skip]
    let cases: &[(&str, [bool; 8])] = &[
        ("master",   [true,  true,  true,  true,  true,  true,  true,  true]),
        ("viewer",   [true,  false, true,  false, false, false, false, true]),
        ("oadmin",   [true,  true,  true,  true,  true,  false, true,  true]),
        ("omember",  [true,  false, false, false, false, false, false, false]),
        ("tadmin",   [false, false, true,  true,  false, false, true,  true]),
        ("tuser",    [false, false, true,  false, false, false, true,  true]),
        ("iviewer",  [false, false, true,  false, false, false, false, false]),
        ("out",      [false, false, false, false, false, false, false, false]),
        // tuser's own key acts as tuser.
        ("sk-tuser", [false, false, true,  false, false, false, true,  true]),
        // Issued by someone else: none of tadmin's memberships; sees only itself.
        ("sk-calls", [false, false, false, false, false, false, false, false]),
    ];
    for (who, want) in cases {
        let w = caller(&c, who);
        let got = [
            can_read_org(&c, &w, "o").expect("q"),
            is_org_admin(&c, &w, "o").expect("q"),
            can_read_team(&c, &w, &t).expect("q"),
            is_team_admin(&c, &w, &t).expect("q"),
            manages_team(&c, &w, &t).expect("q"),
            manages_team(&c, &w, &free).expect("q"),
            can_manage_key(&c, &w, &key).expect("q"),
            can_see_key(&c, &w, &key).expect("q"),
        ];
        assert_eq!(&got, want, "{who}");
    }
}

#[test]
fn role_gates() {
    let c = store();
    #[rustfmt::skip]
    let cases: &[(&str, bool, bool, bool, bool)] = &[
        // who, writer, proxy admin, budget reader, sees user "tuser"
        ("master",  true,  true,  true,  true),
        ("viewer",  false, false, true,  true),
        ("tuser",   true,  false, false, true),
        ("iviewer", false, false, false, false),
        ("out",     true,  false, false, false),
    ];
    for (who, writer, admin, budgets, sees) in cases {
        let w = caller(&c, who);
        assert_eq!(require_writer(&w).is_ok(), *writer, "{who}");
        assert_eq!(require_proxy_admin(&w).is_ok(), *admin, "{who}");
        assert_eq!(require_budget_reader(&w).is_ok(), *budgets, "{who}");
        assert_eq!(can_see_user(&w, "tuser"), *sees, "{who}");
    }
    let refused = require_writer(&caller(&c, "viewer")).expect_err("viewer");
    assert_eq!(
        refused.message(),
        "user role proxy_admin_viewer may not make changes"
    );
}
