//! Team endpoints (API.md §4 write-time checks, §5 roles, §6 Teams, §8 moving teams).

use crate::common::*;
use serde_json::{json, Value};

/// Two orgs, two teams and one caller per role:
/// org1 [A, B] with team t1 [A]; org2 [A, B, C] with team t2 [A].
fn world() -> World {
    World::new()
        .orgs(&[("org1", &["A", "B"]), ("org2", &["A", "B", "C"])])
        .teams(&[("t1", Some("org1"), &["A"]), ("t2", Some("org2"), &["A"])])
        .users(&[("pview", "proxy_admin_viewer")])
        .internal_users(&[
            "oadmin", "oadmin2", "omember", "tadmin", "tuser", "outsider",
        ])
        .users(&[("iviewer", "internal_user_viewer")])
        .org_members(&[
            ("org1", "oadmin", "org_admin"),
            ("org2", "oadmin2", "org_admin"),
            ("org1", "omember", "internal_user"),
        ])
        .team_members(&[
            ("t1", "tadmin", "admin"),
            ("t1", "tuser", "user"),
            ("t1", "iviewer", "user"),
        ])
}

fn team_models(s: &Server, team: &str) -> Vec<String> {
    let m: String = s.value("SELECT models FROM teams WHERE id = ?1", [team]);
    serde_json::from_str(&m).unwrap()
}

fn team_org(s: &Server, team: &str) -> Option<String> {
    s.value("SELECT organization_id FROM teams WHERE id = ?1", [team])
}

fn roles(v: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = v["members_with_roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["user_id"].as_str().unwrap().to_string(),
                m["role"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

mod delete_read;
mod members;
mod new_update;
