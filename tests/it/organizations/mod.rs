//! The organization API (API.md §6 Organizations, roles §5, decisions §8): every endpoint,
//! success and failure, the role matrix, the delete cascade and bad input. Each test asserts the
//! status, the body and the database effect; a refused call must leave the database unchanged.

use crate::common::*;
use serde_json::{json, Value};

fn new_org(s: &Server, alias: &str) -> String {
    let v = s.admin("/organization/new", json!({"organization_alias": alias}));
    v["organization_id"].as_str().unwrap().to_string()
}

/// Test setup only: a key with the given team/org/user; returns the raw key.
fn seed_key(
    s: &Server,
    tag: &str,
    team_id: Option<&str>,
    org_id: Option<&str>,
    user_id: Option<&str>,
) -> String {
    let key = format!("sk-seeded-{tag}-{}", "y".repeat(16));
    seed_key_row(s, &key, team_id, user_id, org_id);
    key
}

fn assert_param(r: &Resp, status: u16, param: &str) {
    let v = assert_error(r, status);
    assert_eq!(v["error"]["param"], param, "{v}");
}

/// Two organizations and a caller for every row of the role matrix: `X` [A, B] with
/// max_budget 10 and `Y`, made through the API (`w.id("X")`); `pa` a global proxy_admin (a
/// user's key, not the master key), `pav` a proxy_admin_viewer; `oax`/`oay` org_admin of X / of
/// Y (global internal_user); `iux` a member of X with org role internal_user; `iu` an
/// internal_user with no membership; `iuvx` a global internal_user_viewer holding org_admin in
/// X: a viewer never writes.
fn world() -> World {
    let s = Server::start();
    let x = s.admin_id(
        "/organization/new",
        json!({"organization_alias": "X", "models": ["A", "B"], "max_budget": 10}),
        "organization_id",
    );
    let y = new_org(&s, "Y");
    let mut w = World::on(s)
        .users(&[("pa", "proxy_admin"), ("pav", "proxy_admin_viewer")])
        .internal_users(&["oax"])
        .org_members(&[(&x, "oax", "org_admin")])
        .internal_users(&["oay"])
        .org_members(&[(&y, "oay", "org_admin")])
        .internal_users(&["iux"])
        .org_members(&[(&x, "iux", "internal_user")])
        .internal_users(&["iu"])
        .users(&[("iuvx", "internal_user_viewer")])
        .org_members(&[(&x, "iuvx", "org_admin")]);
    w.name_id("X", &x);
    w.name_id("Y", &y);
    w
}

mod delete;
mod members;
mod new;
mod read;
mod update;
