//! The write-time rules as a table: one case per line, holder × list → accepted or the exact
//! 400 message (these sentences are API: clients and the UI show them).

use super::*;
use crate::access::catalog::tests::{cat, v};
use rusqlite::params;
use rusqlite::Connection;

const NOW: &str = "2026-01-01T00:00:00.000Z";

/// Org `o` [A, B]; teams `t` [A] and `tfull` [] in it; team `free` [] without an org; user `u`
/// [C].
fn store() -> Connection {
    let mut c = Connection::open_in_memory().expect("mem");
    crate::db::migrate::migrate(&mut c).expect("migrate");
    c.execute(
        "INSERT INTO organizations (id, alias, models, created_at, updated_at)
         VALUES ('o', 'o', '[\"A\",\"B\"]', ?1, ?1)",
        [NOW],
    )
    .expect("org");
    for (id, org, models) in [
        ("t", Some("o"), "[\"A\"]"),
        ("tfull", Some("o"), "[]"),
        ("free", None, "[]"),
    ] {
        c.execute(
            "INSERT INTO teams (id, organization_id, models, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?4)",
            params![id, org, models, NOW],
        )
        .expect("team");
    }
    c.execute(
        "INSERT INTO users (id, user_role, models, created_at, updated_at)
         VALUES ('u', 'internal_user', '[\"C\"]', ?1, ?1)",
        [NOW],
    )
    .expect("user");
    c
}

/// Where the list goes, in the table's words.
#[derive(Clone, Copy)]
enum At {
    /// An organization set by a caller whose own chain is `granter` (None: open, the master).
    Org(Option<&'static [&'static str]>),
    /// A team under an org with these models (None: no org).
    Team(Option<&'static [&'static str]>),
    /// A key with (team, org, owner).
    Key(
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
    ),
    User,
}

fn check(c: &Connection, at: At, list: &[&str]) -> std::result::Result<(), String> {
    let cat = cat();
    let list = v(list);
    let owned: Vec<String>;
    let parent: Parent;
    let holder = match at {
        At::Org(granter) => {
            owned = granter.map(v).unwrap_or_default();
            Holder::Org {
                granter: Chain {
                    user: granter.map(|_| owned.as_slice()),
                    ..Chain::default()
                },
            }
        }
        At::Team(org) => {
            owned = org.map(v).unwrap_or_default();
            Holder::Team {
                org: org.map(|_| owned.as_slice()),
            }
        }
        At::Key(team, org, user) => {
            parent = load_parent(c, team, org, user).map_err(|e| e.message())?;
            Holder::Key(&parent)
        }
        At::User => Holder::User,
    };
    check_models(&cat, &holder, &list).map_err(|e| {
        assert_eq!(e.status(), 400);
        assert_eq!(e.body()["error"]["param"], "models");
        e.message()
    })
}

#[test]
fn grant_rules_table() {
    let c = store();
    const AB: &[&str] = &["A", "B"];
    const A: &[&str] = &["A"];
    let ok = Ok(());
    let err = |m: &str| Err(m.to_string());
    #[rustfmt::skip]
    let cases: Vec<(At, &[&str], std::result::Result<(), String>)> = vec![
        // Organizations: no references upward; bounded by the setter's own models.
        (At::Org(None), &["A", "all-team-models"], err("[\"all-team-models\"] cannot be used in an organization's models: they refer to a team or organization above, and an organization has none")),
        (At::Org(None), &["all-org-models", "all-team-models"], err("[\"all-org-models\", \"all-team-models\"] cannot be used in an organization's models: they refer to a team or organization above, and an organization has none")),
        (At::Org(None), &["A", "B", "unknown", "all-proxy-models"], ok.clone()),
        (At::Org(Some(A)), &["A"], ok.clone()),
        (At::Org(Some(A)), &["B"], err("models [\"B\"] are outside the models you may grant")),
        (At::Org(Some(A)), &["g1"], err("models [\"g1\"] are outside the models you may grant")),
        (At::Org(Some(A)), &["all-proxy-models"], err("models [\"all-proxy-models\"] are outside the models you may grant")),
        // Teams: their own list, within their org's.
        (At::Team(Some(AB)), &["all-team-models"], err("`all-team-models` is for keys; a team's models are its own list")),
        (At::Team(Some(AB)), &["all-org-models"], ok.clone()),
        (At::Team(Some(AB)), &["g1", "A"], ok.clone()),
        (At::Team(Some(AB)), &["C", "A"], err("Team models [\"C\"] are not allowed by the team's organization (models=[\"A\", \"B\"])")),
        (At::Team(Some(AB)), &["*"], err("Team models [\"*\"] are not allowed by the team's organization (models=[\"A\", \"B\"])")),
        (At::Team(None), &["all-org-models"], err("`all-org-models` needs the team to be in an organization")),
        (At::Team(None), &["all-team-models"], err("`all-team-models` is for keys; a team's models are its own list")),
        (At::Team(None), &["all-proxy-models", "C", "anything"], ok.clone()),
        (At::Team(Some(AB)), &[], ok.clone()),
        // Keys: under team, org and owner.
        (At::Key(Some("t"), None, Some("u")), &["all-team-models"], ok.clone()),
        (At::Key(Some("t"), None, Some("u")), &["A"], ok.clone()),
        (At::Key(Some("t"), None, Some("u")), &["B"], err("models B are not within the team's allowed models")),
        (At::Key(Some("t"), None, None), &["all-org-models"], err("`all-org-models` is not available for this key: its team cannot call every model of the organization (missing: B). Use `all-team-models` or list models.")),
        (At::Key(Some("tfull"), None, None), &["all-org-models"], ok.clone()),
        (At::Key(Some("tfull"), Some("o"), None), &["all-org-models", "B"], ok.clone()),
        (At::Key(Some("free"), None, None), &["all-org-models"], err("`all-org-models` needs an organization: the key's team (or the key) must belong to one")),
        (At::Key(Some("free"), None, None), &["all-team-models", "C"], ok.clone()),
        (At::Key(None, None, Some("u")), &["all-team-models"], err("`all-team-models` needs a team: set `team_id` or list models")),
        (At::Key(None, None, Some("u")), &["all-org-models"], err("`all-org-models` needs an organization: the key's team (or the key) must belong to one")),
        (At::Key(None, None, Some("u")), &["C"], ok.clone()),
        (At::Key(None, None, Some("u")), &["A", "B"], err("models A, B are not within the user's allowed models")),
        (At::Key(None, Some("o"), Some("u")), &["A"], err("models A are not within the organization's or the user's allowed models")),
        (At::Key(None, Some("o"), None), &["all-org-models", "A"], ok.clone()),
        (At::Key(None, None, None), &["all-proxy-models"], ok.clone()),
        // The parent must exist and agree.
        (At::Key(Some("nope"), None, None), &[], err("team_id nope does not exist")),
        (At::Key(None, Some("nope"), None), &[], err("organization_id nope does not exist")),
        (At::Key(Some("free"), Some("o"), None), &[], err("the team does not belong to an organization")),
        // Users: their own list, no references upward.
        (At::User, &["all-org-models"], err("`all-org-models` is for keys and teams, not users")),
        (At::User, &["A", "all-team-models"], err("`all-team-models` is for keys and teams, not users")),
        (At::User, &["anything", "no-default-models"], ok.clone()),
    ];
    for (i, (at, list, want)) in cases.into_iter().enumerate() {
        assert_eq!(check(&c, at, list), want, "case {i}: {list:?}");
    }
}

#[test]
fn options_offer_exactly_what_the_rules_accept() {
    let c = store();
    let cat = cat();
    let values = |team: Option<&str>, org: Option<&str>, user: Option<&str>| -> Vec<String> {
        let o = options(&cat, &c, team, org, user).expect("options");
        o["options"]
            .as_array()
            .expect("array")
            .iter()
            .map(|x| x["value"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(values(Some("t"), None, None), v(&["all-team-models", "A"]));
    assert_eq!(
        values(Some("tfull"), None, None),
        v(&["all-team-models", "all-org-models", "A", "B"])
    );
    assert_eq!(values(None, None, Some("u")), v(&["C"]));
    let o = options(&cat, &c, Some("t"), None, None).expect("options");
    assert_eq!(o["organization_id"], "o");
    assert_eq!(o["grantable_models"], json!(["A"]));
    assert!(options(&cat, &c, Some("nope"), None, None).is_err());
}
