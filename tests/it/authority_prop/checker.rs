//! The checker: the authority invariant, read from the database and probed through the server.

use super::*;

// ---------------------------------------------------------------------------------------------
// The checker

/// What the database says now, read with plain SQL (the server's rules are what is tested).
pub(super) struct State {
    pub(super) roles: BTreeMap<String, String>,
    pub(super) user_models: BTreeMap<String, Vec<String>>,
    pub(super) emails: BTreeMap<String, String>,
    /// team -> (org, models)
    pub(super) teams: BTreeMap<String, (Option<String>, Vec<String>)>,
    pub(super) orgs: BTreeMap<String, Vec<String>>,
    /// (team, user) -> role
    pub(super) team_members: BTreeMap<(String, String), String>,
    /// (org, user) -> role
    pub(super) org_members: BTreeMap<(String, String), String>,
}

pub(super) fn list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

pub(super) fn state(s: &Server) -> State {
    let pairs = |sql: &str| -> Vec<(String, String, Option<String>)> { s.rows(sql, []) };
    let mut roles = BTreeMap::new();
    let mut user_models = BTreeMap::new();
    let mut emails = BTreeMap::new();
    for (id, role, models) in pairs("SELECT id, user_role, models FROM users") {
        roles.insert(id.clone(), role);
        user_models.insert(id.clone(), list(&models.unwrap_or_default()));
    }
    for (id, email, _) in pairs("SELECT id, coalesce(email, ''), NULL FROM users") {
        emails.insert(id, email);
    }
    let teams = pairs("SELECT id, models, organization_id FROM teams")
        .into_iter()
        .map(|(id, m, org)| (id, (org, list(&m))))
        .collect();
    let orgs = pairs("SELECT id, models, NULL FROM organizations")
        .into_iter()
        .map(|(id, m, _)| (id, list(&m)))
        .collect();
    let team_members = pairs("SELECT team_id, user_id, role FROM team_members")
        .into_iter()
        .map(|(t, u, r)| ((t, u), r.unwrap_or_default()))
        .collect();
    let org_members = pairs("SELECT organization_id, user_id, user_role FROM organization_members")
        .into_iter()
        .map(|(o, u, r)| ((o, u), r.unwrap_or_default()))
        .collect();
    State {
        roles,
        user_models,
        emails,
        teams,
        orgs,
        team_members,
        org_members,
    }
}

/// The configured models a stored list allows (only plain names and the special names the
/// operations use can appear; an empty list is unrestricted).
pub(super) fn allows(list: &[String]) -> BTreeSet<String> {
    let all: BTreeSet<String> = MODELS.iter().map(|m| m.to_string()).collect();
    if list.is_empty() || list.iter().any(|m| m == "all-proxy-models" || m == "*") {
        return all;
    }
    list.iter().filter(|m| all.contains(*m)).cloned().collect()
}

impl State {
    pub(super) fn is_viewer(&self, u: &str) -> bool {
        self.roles
            .get(u)
            .is_some_and(|r| r.ends_with("_viewer") || r == "proxy_admin_viewer")
    }
    pub(super) fn org_admin(&self, u: &str, org: &str) -> bool {
        !self.is_viewer(u)
            && self
                .org_members
                .get(&(org.to_string(), u.to_string()))
                .map(String::as_str)
                == Some("org_admin")
    }
    pub(super) fn team_admin(&self, u: &str, team: &str) -> bool {
        if self.is_viewer(u) {
            return false;
        }
        let member_admin = self
            .team_members
            .get(&(team.to_string(), u.to_string()))
            .map(String::as_str)
            == Some("admin");
        let above = self
            .teams
            .get(team)
            .and_then(|(org, _)| org.as_deref())
            .is_some_and(|o| self.org_admin(u, o));
        member_admin || above
    }
    /// What a team may call: its list within its org's.
    pub(super) fn team_models(&self, team: &str) -> BTreeSet<String> {
        let Some((org, models)) = self.teams.get(team) else {
            return BTreeSet::new();
        };
        let mut set = allows(models);
        if let Some(o) = org {
            let org_set = self.orgs.get(o).map(|m| allows(m)).unwrap_or_default();
            set.retain(|m| org_set.contains(m));
        }
        set
    }
    /// Every model the user can reach by its own rights now: personally, through its teams,
    /// and through the orgs it administers (it may make teams there and join them).
    pub(super) fn reach(&self, u: &str) -> BTreeSet<String> {
        let personal = self.user_models.get(u).cloned().unwrap_or_default();
        let mut set = if personal.iter().any(|m| m == "no-default-models") {
            BTreeSet::new()
        } else {
            allows(&personal)
        };
        for (t, m) in self.team_members.keys() {
            if m == u {
                set.extend(self.team_models(t));
            }
        }
        for o in self.orgs.keys() {
            if self.org_admin(u, o) {
                set.extend(allows(&self.orgs[o]));
            }
        }
        set
    }
}

/// May `actor` read the key with this token (`/key/info`): its own, or one of a team it
/// administers now. (Viewers administer nothing: `State::team_admin`.)
pub(super) fn sees_key(
    st: &State,
    keys: &BTreeMap<String, (Option<String>, Option<String>)>,
    actor: &str,
    token: &str,
) -> bool {
    match keys.get(token) {
        Some((user, team)) => {
            user.as_deref() == Some(actor)
                || team.as_deref().is_some_and(|t| st.team_admin(actor, t))
        }
        None => false,
    }
}

pub(super) fn cookie_request(
    s: &Server,
    method: &str,
    path: &str,
    cookie: &str,
    body: Value,
) -> Resp {
    let b = body.to_string();
    s.request(
        method,
        path,
        None,
        Some(b.as_bytes()),
        &[("Cookie", cookie), ("X-Litegate-UI", "1")],
    )
}

/// Everything that violates the invariant now; empty when it holds.
pub(super) fn violations(w: &Stage) -> Vec<String> {
    let s = &w.s;
    let st = state(s);
    let mut bad = Vec::new();
    let mut v = |msg: String| bad.push(msg);

    // 1. Global roles: unchanged for the users set up; nobody new is an admin.
    for (u, role) in [
        ("oa", "internal_user"),
        ("ta", "internal_user"),
        ("mu", "internal_user"),
        ("vw", "internal_user_viewer"),
        ("pa", "proxy_admin"),
        ("pv", "proxy_admin_viewer"),
        ("out", "internal_user"),
        ("s1", "internal_user"),
    ] {
        if st.roles.get(u).map(String::as_str) != Some(role) {
            v(format!("global role of {u} is now {:?}", st.roles.get(u)));
        }
        let email = st.emails.get(u).map(|e| e.to_lowercase());
        if email.as_deref() != Some(format!("{u}@example.com").as_str()) {
            v(format!("email of {u} is now {email:?}"));
        }
    }
    for (u, role) in &st.roles {
        if role.starts_with("proxy_admin") && u != "pa" && u != "pv" && u != "default_user_id" {
            v(format!("new user {u} has role {role}"));
        }
    }
    // 2. Where no actor has authority, nothing changed: O2's org admins, T3's members.
    for ((o, u), r) in &st.org_members {
        if o == "O2" {
            v(format!("{u} became {r} of O2"));
        }
    }
    for (t, u) in st.team_members.keys() {
        if t == "T3" && u != "ta" && u != "s1" {
            v(format!("{u} joined T3"));
        }
        if t == "T3" && st.team_members[&(t.clone(), u.clone())] == "admin" {
            v(format!("{u} became admin of T3"));
        }
    }
    for (t, (org, _)) in &st.teams {
        let want = match t.as_str() {
            "T3" => Some("O2"),
            _ => Some("O1"),
        };
        if org.as_deref() != want {
            v(format!("team {t} is now in {org:?}"));
        }
    }
    // 3. Limits the proxy admin set were not loosened.
    let one = |sql: &str| -> Option<Vec<Option<String>>> { s.text_rows(sql).into_iter().next() };
    let num = |x: &Option<String>| x.as_deref().and_then(|s| s.parse::<f64>().ok());
    let at_most = |x: &Option<String>, max: f64| num(x).is_some_and(|n| n <= max);
    for (o, models) in [("O1", vec!["A", "B"]), ("O2", vec!["C"])] {
        let want: Vec<String> = models.iter().map(|m| m.to_string()).collect();
        if st.orgs.get(o).map(|m| allows(m)) != Some(allows(&want)) {
            v(format!("models of {o} changed: {:?}", st.orgs.get(o)));
        }
    }
    if let Some(r) = one(
        "SELECT b.max_budget FROM organizations o JOIN budgets b ON b.id = o.budget_id
         WHERE o.id = 'O1'",
    ) {
        if !at_most(&r[0], 100.0) {
            v(format!("O1's budget is now {:?}", r[0]));
        }
    } else {
        v("O1 lost its budget".into());
    }
    for (t, models) in [
        ("T1", vec!["A"]),
        ("T2", vec!["A", "B"]),
        ("T3", vec!["C"]),
        ("TB", vec!["B"]),
    ] {
        let want = allows(&models.iter().map(|m| m.to_string()).collect::<Vec<_>>());
        if st.teams.contains_key(t) && !st.team_models(t).is_subset(&want) {
            v(format!("{t} may now call {:?}", st.team_models(t)));
        }
    }
    if let Some(r) = one("SELECT max_budget, tpm_limit, rpm_limit FROM teams WHERE id = 'T1'") {
        if !(at_most(&r[0], 10.0) && at_most(&r[1], 1000.0) && at_most(&r[2], 100.0)) {
            v(format!("T1's limits loosened: {r:?}"));
        }
    }
    if let Some(r) = one("SELECT blocked FROM teams WHERE id = 'TB'") {
        if r[0].as_deref() != Some("1") {
            v("TB was unblocked".into());
        }
    }
    if let Some(r) = one(
        "SELECT b.max_budget FROM team_members m LEFT JOIN budgets b ON b.id = m.budget_id
         WHERE m.team_id = 'T2' AND m.user_id = 'mu'",
    ) {
        if !at_most(&r[0], 1.0) {
            v(format!("mu's budget in T2 is now {:?}", r[0]));
        }
    }
    for u in ["oa", "mu"] {
        let sql = format!(
            "SELECT b.max_budget FROM organization_members m LEFT JOIN budgets b
             ON b.id = m.budget_id WHERE m.organization_id = 'O1' AND m.user_id = '{u}'"
        );
        if let Some(r) = one(&sql) {
            if !at_most(&r[0], 5.0) {
                v(format!("{u}'s budget in O1 is now {:?}", r[0]));
            }
        }
    }
    if let Some(r) = one("SELECT max_budget FROM users WHERE id = 'mu'") {
        if !at_most(&r[0], 2.0) {
            v(format!("mu's own budget is now {:?}", r[0]));
        }
    }
    if let Some(r) =
        one("SELECT max_budget, expires, tpm_limit FROM api_keys WHERE key_alias = 'lim-mu'")
    {
        let expires_ok = r[1]
            .as_deref()
            .is_some_and(|e| e <= w.limits.lim_key_expires.as_str());
        if !(at_most(&r[0], 1.0) && expires_ok && at_most(&r[2], 50.0)) {
            v(format!("lim-mu's limits loosened: {r:?}"));
        }
    }
    if let Some(r) = one("SELECT blocked FROM api_keys WHERE key_alias = 'blk-ta'") {
        if r[0].as_deref() != Some("1") {
            v("blk-ta was unblocked".into());
        }
    }

    // 4. Every credential an actor holds acts within the actor's own authority now.
    let keys_now: BTreeMap<String, (Option<String>, Option<String>)> = {
        let rows: Vec<(String, Option<String>, Option<String>)> =
            s.rows("SELECT token, user_id, team_id FROM api_keys", []);
        rows.into_iter()
            .map(|(t, u, team)| (t, (u, team)))
            .collect()
    };
    let mut probe = 0;
    for (actor, keys) in &w.held {
        let reach = st.reach(actor);
        for raw in keys {
            let who = format!("{actor}'s key {}", litegate::auth::key_name(raw));
            let info = s.get("/key/info", raw);
            if info.status == 401 {
                continue; // no longer a credential (deleted, blocked, expired, regenerated)
            }
            if s.get("/user/list", raw).status == 200 {
                v(format!("{who} lists users (proxy reader)"));
            }
            for (path, body) in [
                ("/organization/new", json!({"organization_alias": "probe"})),
                (
                    "/user/new",
                    json!({"user_id": "probe-user", "auto_create_key": false}),
                ),
                ("/team/new", json!({"team_alias": "probe-no-org"})),
            ] {
                if s.post(path, raw, body).status == 200 {
                    v(format!("{who} did {path} (proxy admin)"));
                }
            }
            for o in ORGS {
                probe += 1;
                let r = s.send(
                    "PATCH",
                    "/organization/update",
                    raw,
                    json!({"organization_id": o, "metadata": {"probe": probe}}),
                );
                if r.status == 200 && !st.org_admin(actor, o) {
                    v(format!("{who} acts as org admin of {o}"));
                }
            }
            for t in st.teams.keys() {
                let r = s.post(
                    "/team/member_update",
                    raw,
                    json!({"team_id": t, "user_id": "s1", "role": "user"}),
                );
                if r.status == 200 && !st.team_admin(actor, t) {
                    v(format!("{who} acts as admin of team {t}"));
                }
            }
            let r = s.get("/v1/models", raw);
            if r.status == 200 {
                for m in r.json()["data"].as_array().unwrap() {
                    let id = m["id"].as_str().unwrap_or_default();
                    if !reach.contains(id) {
                        v(format!(
                            "{who} reaches model {id}; {actor} reaches {reach:?}"
                        ));
                    }
                }
            }
            // What it reads: key tokens only of keys the actor may read (its own, its
            // teams' as admin, the key itself); no other user's record.
            let own = litegate::auth::hash_key(raw);
            let readable = |t: &str| t == own || sees_key(&st, &keys_now, actor, t);
            let r = s.get("/key/list?size=100", raw);
            if r.status == 200 {
                for t in r.json()["keys"].as_array().unwrap() {
                    let t = t.as_str().unwrap_or_default();
                    if !readable(t) {
                        v(format!("{who} lists key {t}"));
                    }
                }
            }
            for t in st.teams.keys() {
                let r = s.get(&format!("/team/info?team_id={t}"), raw);
                if r.status == 200 {
                    for k in r.json()["keys"].as_array().unwrap() {
                        if let Some(tok) = k["token"].as_str() {
                            if !readable(tok) {
                                v(format!("{who} reads token {tok} in /team/info of {t}"));
                            }
                        }
                    }
                }
            }
            for u in ["pa", "out", "s1"] {
                if s.get(&format!("/user/info?user_id={u}"), raw).status == 200 {
                    v(format!("{who} reads user {u}"));
                }
            }
        }
    }
    // 5. No actor can log in as someone else with a password it chose.
    for (actor, user, pw) in &w.passwords {
        if user == actor {
            continue;
        }
        let Some(email) = st.emails.get(user.as_str()) else {
            continue;
        };
        let b = json!({"email": email, "password": pw}).to_string();
        let r = s.request(
            "POST",
            "/ui/login",
            None,
            Some(b.as_bytes()),
            &[("X-Litegate-UI", "1")],
        );
        if r.status == 200 {
            let cookie = r
                .header("set-cookie")
                .and_then(|c| c.split(';').next())
                .unwrap_or_default()
                .to_string();
            let me = cookie_request(s, "GET", "/ui/me", &cookie, Value::Null);
            v(format!("{actor} logs in as {user}: {}", me.text()));
        }
    }
    bad
}
