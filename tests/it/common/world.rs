//! `World`: one started server (ephemeral port, temp database, master key) with named callers,
//! built by seeding orgs, teams, users and memberships straight into the database; and the
//! table runner (`Case`, `run_cases`) that sends one request per case, asserts its status and,
//! for every refusal, that the store is unchanged (as PocketBase's `ApiScenario`).
//!
//! Not here: the HTTP client, the process handling and the single-row seeders (`common.rs`);
//! what a test asserts beyond the status and "a refusal writes nothing" (the test files).

use super::*;
use std::collections::BTreeMap;

/// The caller name of the master key in a `World` and a `Case`.
pub const AS_MASTER: &str = "master";
/// The caller name of a request without credentials (expects 401).
pub const ANON: &str = "anon";

/// A started server and the raw keys of its named callers (a seeded user's key is named by the
/// user id; `AS_MASTER` is the master key), plus named ids made through the API.
pub struct World {
    pub s: Server,
    keys: BTreeMap<String, String>,
    ids: BTreeMap<String, String>,
}

impl std::ops::Deref for World {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.s
    }
}

/// `w["alice"]`: the raw key of the caller named `alice` (panics on an unknown name).
impl std::ops::Index<&str> for World {
    type Output = str;
    fn index(&self, who: &str) -> &str {
        self.key(who)
    }
}

impl Default for World {
    fn default() -> World {
        World::new()
    }
}

impl World {
    /// The real binary with `TEST_CONFIG`, and only the master key.
    pub fn new() -> World {
        World::on(Server::start())
    }

    /// A world around an already started server.
    pub fn on(s: Server) -> World {
        let mut keys = BTreeMap::new();
        keys.insert(AS_MASTER.to_string(), MASTER.to_string());
        World {
            s,
            keys,
            ids: BTreeMap::new(),
        }
    }

    /// Organizations `(id, models)`, seeded.
    pub fn orgs(self, orgs: &[(&str, &[&str])]) -> World {
        for (id, models) in orgs {
            seed_org(&self.s, id, models);
        }
        self
    }

    /// Teams `(id, org, models)`, seeded.
    pub fn teams(self, teams: &[(&str, Option<&str>, &[&str])]) -> World {
        for (id, org, models) in teams {
            seed_team(&self.s, id, *org, models);
        }
        self
    }

    /// Users `(id, global role)`, each with a personal key named by the user id.
    pub fn users(mut self, users: &[(&str, &str)]) -> World {
        for (id, role) in users {
            let key = seed_user(&self.s, id, role);
            self.keys.insert(id.to_string(), key);
        }
        self
    }

    /// Users with the global role `internal_user` (the common case), as `users`.
    pub fn internal_users(self, ids: &[&str]) -> World {
        let users: Vec<(&str, &str)> = ids.iter().map(|id| (*id, "internal_user")).collect();
        self.users(&users)
    }

    /// Organization memberships `(org, user, org role)`, seeded.
    pub fn org_members(self, members: &[(&str, &str, &str)]) -> World {
        for (org, user, role) in members {
            seed_org_member(&self.s, org, user, role);
        }
        self
    }

    /// Team memberships `(team, user, team role)`, seeded.
    pub fn team_members(self, members: &[(&str, &str, &str)]) -> World {
        for (team, user, role) in members {
            seed_team_member(&self.s, team, user, role);
        }
        self
    }

    /// Team keys `(name, team, user)`, seeded; each raw key is named `name`.
    pub fn team_keys(mut self, keys: &[(&str, &str, &str)]) -> World {
        for (name, team, user) in keys {
            let key = seed_team_key(&self.s, team, user, None);
            self.keys.insert(name.to_string(), key);
        }
        self
    }

    /// Names a raw key (one made through the API, say) so cases can use it.
    pub fn name_key(&mut self, name: &str, raw: &str) {
        self.keys.insert(name.to_string(), raw.to_string());
    }

    /// Names an id made through the API (an organization's generated id, say).
    pub fn name_id(&mut self, name: &str, id: &str) {
        self.ids.insert(name.to_string(), id.to_string());
    }

    /// The raw key of caller `who`.
    pub fn key(&self, who: &str) -> &str {
        self.keys
            .get(who)
            .unwrap_or_else(|| panic!("no caller named {who} in this world"))
    }

    /// The id named `name` by `name_id`.
    pub fn id(&self, name: &str) -> &str {
        self.ids
            .get(name)
            .unwrap_or_else(|| panic!("no id named {name} in this world"))
    }

    /// `/key/generate` as `who` with `body`, asserting 200; returns the raw key.
    pub fn gen_key(&self, who: &str, body: Value) -> String {
        let v = self.expect(who, "/key/generate", body, 200);
        v["key"].as_str().expect("a raw key").to_string()
    }

    /// `/key/generate` as `who` with `body`, asserting 200; returns the raw key and its token.
    pub fn gen_key_token(&self, who: &str, body: Value) -> (String, String) {
        let v = self.expect(who, "/key/generate", body, 200);
        let text = |f: &str| v[f].as_str().expect("key and token").to_string();
        (text("key"), text("token"))
    }

    /// Sends `method path body` as `who` and asserts the status; a refusal must leave every
    /// table as it was. Returns the JSON answer.
    pub fn call(&self, who: &str, method: &str, path: &str, body: Value, status: u16) -> Value {
        check(
            &self.s,
            Some(self.key(who)),
            method,
            path,
            Some(&body),
            status,
            path,
        )
    }

    /// POSTs as `who` and asserts the status; a refusal must leave every table as it was.
    /// Returns the JSON answer.
    pub fn expect(&self, who: &str, path: &str, body: Value, status: u16) -> Value {
        expect(&self.s, self.key(who), path, body, status)
    }
}

/// POSTs as `key` and asserts the status; a refusal must leave every table as it was (the
/// refusal also carries the error envelope). Returns the JSON answer.
pub fn expect(s: &Server, key: &str, path: &str, body: Value, status: u16) -> Value {
    check(s, Some(key), "POST", path, Some(&body), status, path)
}

/// One row of a role-matrix table: `who` sends `method path body` and expects `status`.
#[derive(Clone, Debug)]
pub struct Case {
    /// The caller's name in the `World` (`ANON` for none), unless `raw` names the key itself.
    pub who: &'static str,
    /// A raw key to send instead of `who`'s (one a test made through the API).
    pub raw: Option<String>,
    pub method: &'static str,
    pub path: String,
    pub body: Option<Value>,
    pub status: u16,
    /// For a refusal: the `error.param` it must name.
    pub param: Option<&'static str>,
}

impl Case {
    /// A case with a JSON body.
    pub fn new(
        who: &'static str,
        method: &'static str,
        path: &str,
        body: Value,
        status: u16,
    ) -> Case {
        Case {
            who,
            raw: None,
            method,
            path: path.to_string(),
            body: Some(body),
            status,
            param: None,
        }
    }

    /// A POST case sent with the raw key `raw`.
    pub fn post_key(raw: &str, path: &str, body: Value, status: u16) -> Case {
        Case {
            raw: Some(raw.to_string()),
            ..Case::post("raw key", path, body, status)
        }
    }

    /// The same case, whose refusal must name `param` in `error.param`.
    pub fn param(self, param: &'static str) -> Case {
        Case {
            param: Some(param),
            ..self
        }
    }

    /// A POST case.
    pub fn post(who: &'static str, path: &str, body: Value, status: u16) -> Case {
        Case::new(who, "POST", path, body, status)
    }

    /// A bodiless GET case.
    pub fn get(who: &'static str, path: &str, status: u16) -> Case {
        Case {
            who,
            raw: None,
            method: "GET",
            path: path.to_string(),
            body: None,
            status,
            param: None,
        }
    }
}

/// Runs every case in order against `w`: asserts each status; for a refusal (any status from
/// 400), asserts the error envelope and that every table is as it was before the call. Returns
/// the JSON answers, one per case.
pub fn run_cases(w: &World, cases: &[Case]) -> Vec<Value> {
    cases
        .iter()
        .map(|c| {
            let key = match &c.raw {
                Some(raw) => Some(raw.as_str()),
                None => (c.who != ANON).then(|| w.key(c.who)),
            };
            let label = format!("{} {} {}", c.who, c.method, c.path);
            let v = check(
                &w.s,
                key,
                c.method,
                &c.path,
                c.body.as_ref(),
                c.status,
                &label,
            );
            if let Some(p) = c.param {
                assert_eq!(v["error"]["param"], p, "{label}: {v}");
            }
            v
        })
        .collect()
}

/// Sends one request and asserts its status; a refusal must carry the error envelope and leave
/// every table unchanged.
fn check(
    s: &Server,
    key: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&Value>,
    status: u16,
    label: &str,
) -> Value {
    let before = (status >= 400).then(|| snapshot(s));
    let text = body.map(|b| b.to_string());
    let r = s.request(method, path, key, text.as_ref().map(|t| t.as_bytes()), &[]);
    let shown = text.as_deref().unwrap_or("");
    match before {
        None => {
            assert_eq!(r.status, status, "{label} {shown} -> {}", r.text());
            r.json()
        }
        Some(before) => {
            assert_eq!(r.status, status, "{label} {shown} -> {}", r.text());
            let v = assert_error(&r, status);
            assert_eq!(
                snapshot(s),
                before,
                "refused {label} {shown} changed the database"
            );
            v
        }
    }
}
