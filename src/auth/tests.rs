//! `check_key` against an in-memory store, and reading `Credentials` from headers.

use super::*;
use rusqlite::params;

const NOW: &str = "2026-01-01T00:00:00.000Z";
const MASTER: &str = "sk-master-key-for-tests";

fn store() -> Connection {
    let mut c = Connection::open_in_memory().expect("mem");
    crate::db::migrate::migrate(&mut c).expect("migrate");
    c
}

fn user(c: &Connection, id: &str, role: &str) {
    c.execute(
        "INSERT INTO users (id, user_role, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
        params![id, role, NOW],
    )
    .expect("user");
}

/// A key `raw` owned by `user`, blocked or not, `reach` 'owner' or 'calls'.
fn key(c: &Connection, raw: &str, user: Option<&str>, blocked: bool, reach: &str) {
    c.execute(
        "INSERT INTO api_keys (token, key_name, user_id, blocked, reach, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        params![
            hash_key(raw),
            key_name(raw),
            user,
            blocked as i64,
            reach,
            NOW
        ],
    )
    .expect("key");
}

#[test]
fn check_key_outcomes() {
    let c = store();
    let mh = hash_key(MASTER);
    user(&c, "admin", "proxy_admin");
    user(&c, "viewer", "proxy_admin_viewer");
    key(&c, "sk-own", Some("admin"), false, "owner");
    key(&c, "sk-calls", Some("admin"), false, "calls");
    key(&c, "sk-calls-viewer", Some("viewer"), false, "calls");
    key(&c, "sk-nobody", None, false, "owner");
    key(&c, "sk-blocked", Some("admin"), true, "owner");

    let m = check_key(&c, &mh, MASTER).expect("master");
    assert!(m.is_master() && m.key.is_none());
    #[rustfmt::skip]
    let refused: &[(&str, Refusal)] = &[
        ("not-a-key", Refusal::MalformedKey),
        ("sk-unknown", Refusal::UnknownKey),
        ("sk-blocked", Refusal::KeyBlocked),
    ];
    for (raw, want) in refused {
        assert_eq!(check_key(&c, &mh, raw).err().as_ref(), Some(want), "{raw}");
    }
    #[rustfmt::skip]
    let roles: &[(&str, Role, bool)] = &[
        ("sk-own", Role::ProxyAdmin, false),
        // Issued by someone else: never the owner's global role.
        ("sk-calls", Role::InternalUser, true),
        ("sk-calls-viewer", Role::InternalUserViewer, true),
        // A key without a user acts as an internal user.
        ("sk-nobody", Role::InternalUser, false),
    ];
    for (raw, role, calls_only) in roles {
        let who = check_key(&c, &mh, raw).expect(raw);
        assert_eq!(who.role, *role, "{raw}");
        assert_eq!(who.is_calls_only(), *calls_only, "{raw}");
        assert_eq!(who.key_name(), Some(key_name(raw).as_str()));
        assert!(!who.is_master());
    }
}

#[test]
fn credentials_from_headers() {
    let h = |pairs: &[(&str, &str)]| -> tiny_http::HeaderFields { pairs.iter().copied().collect() };
    let cookie = ("Cookie", "a=b; litegate_session=tok");
    let key = ("Authorization", "Bearer sk-a");
    let ui = ("X-Litegate-UI", "1");
    let session = |ui_header| Credentials::Session {
        token: "tok".into(),
        ui_header,
    };
    assert_eq!(
        Credentials::of(&h(&[key, cookie])),
        Credentials::Key("sk-a".into())
    );
    assert_eq!(Credentials::of(&h(&[cookie])), session(false));
    assert_eq!(Credentials::of(&h(&[cookie, ui])), session(true));
    assert_eq!(Credentials::of(&h(&[ui])), Credentials::None);
    assert_eq!(Credentials::key_only(&h(&[cookie, ui])), Credentials::None);
    assert_eq!(
        Credentials::key_only(&h(&[key])),
        Credentials::Key("sk-a".into())
    );
}

#[test]
fn log_labels_never_hold_secrets() {
    let key = Credentials::Key("sk-secret".into());
    let session = Credentials::Session {
        token: "cookie-secret".into(),
        ui_header: true,
    };
    let master = Ok(Caller::master());
    let user = Ok(Caller {
        role: Role::InternalUser,
        user_id: Some("ana".into()),
        key: None,
        user_models: Some(vec![]),
    });
    let label = |c: &Credentials, o: Result<Caller, Refusal>| c.log_label(&o);
    assert_eq!(label(&key, master).as_deref(), Some("master_key"));
    assert_eq!(
        label(&key, Err(Refusal::UnknownKey)).as_deref(),
        Some("invalid")
    );
    // Nothing presented: the access log shows "-", as before the front door.
    assert_eq!(label(&Credentials::None, Err(Refusal::NoKey)), None);
    assert_eq!(label(&session, user).as_deref(), Some("ui:ana"));
    assert_eq!(
        label(&session, Err(Refusal::SessionInvalid)).as_deref(),
        Some("invalid-session")
    );
}
