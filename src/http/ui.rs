//! The admin web UI (issue 7). Owns the static files under `ui/` (embedded in the binary,
//! served at `/ui` with a strict Content-Security-Policy), UI login/logout with a session
//! cookie (`ui_sessions`, schema 0002; the cookie is resolved to a `Caller` by
//! `auth::session`), `/ui/me`, and `/ui/key_model_options` — the key form's model
//! choices, computed by `access::grant::options` with the server's resolver. The pages themselves
//! call the ordinary JSON API; authorization stays in the handlers.

use super::{Ctx, Reply, Req};
use crate::access::{grant, policy};
use crate::audit::{Actor, Entry};
use crate::auth::{self, Caller, Refusal, Role};
use crate::db;
use crate::error::{Error, Result};
use crate::util;
use serde_json::json;
use std::sync::OnceLock;

pub use crate::auth::session::{SESSION_COOKIE, UI_HEADER};
/// How long a session lives (no sliding renewal: log in again after it).
pub const SESSION_TTL_SECS: i64 = 12 * 3600;

/// No inline script or style, nothing from other origins, no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; \
    frame-ancestors 'none'";

struct Asset {
    name: &'static str,
    ctype: &'static str,
    body: &'static [u8],
}

/// The UI's files, compiled in: no CDN, no build step, nothing read from disk at run time.
const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        ctype: "text/html; charset=utf-8",
        body: include_bytes!("../../ui/index.html"),
    },
    Asset {
        name: "app.js",
        ctype: "text/javascript; charset=utf-8",
        body: include_bytes!("../../ui/app.js"),
    },
    Asset {
        name: "app.css",
        ctype: "text/css; charset=utf-8",
        body: include_bytes!("../../ui/app.css"),
    },
    Asset {
        name: "favicon.svg",
        ctype: "image/svg+xml",
        body: include_bytes!("../../ui/favicon.svg"),
    },
];

fn with_ui_headers(r: Reply, mut extra: Vec<(String, String)>) -> Reply {
    for (k, v) in [
        ("Content-Security-Policy", CSP),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
    ] {
        extra.push((k.into(), v.into()));
    }
    Reply::WithHeaders(Box::new(r), extra)
}

fn serve(name: &str) -> Result<Reply> {
    let a = ASSETS
        .iter()
        .find(|a| a.name == name)
        .ok_or_else(|| Error::NotFound(format!("Route not found: /ui/{name}")))?;
    // Revalidate every time: the files change with the binary and are small.
    Ok(with_ui_headers(
        Reply::Raw(200, a.ctype, a.body.to_vec()),
        vec![("Cache-Control".into(), "no-cache".into())],
    ))
}

/// `GET /ui`: the single page.
pub fn index(_ctx: &Ctx, _req: &Req) -> Result<Reply> {
    serve("index.html")
}

/// `GET /ui/{file}`: one of the embedded files.
pub fn asset(_ctx: &Ctx, req: &Req) -> Result<Reply> {
    let name = req.param("file").unwrap_or_default();
    serve(&name)
}

// ---------------------------------------------------------------------------------------------
// Sessions (resolving a cookie to a caller is `auth::session`)

/// The session cookie's value, if the request carries one.
pub fn session_cookie(req: &Req) -> Option<String> {
    auth::session::session_cookie(&req.headers)
}

/// Login and logout change state: the CSRF header is required even without a session.
fn require_ui_header(req: &Req) -> Result<()> {
    if auth::session::has_ui_header(&req.headers) {
        Ok(())
    } else {
        Err(Refusal::SessionWithoutUiHeader.into())
    }
}

fn bad_login() -> Error {
    Error::Unauthorized("Login failed: wrong master key, email or password.".into())
}

/// A hash to verify against when no user matches, so a wrong email costs the same argon2 time
/// as a wrong password (no user enumeration by timing).
fn dummy_hash() -> &'static str {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| auth::hash_password("litegate-no-such-user").unwrap_or_default())
}

fn cookie(req: &Req, value: &str, max_age: i64) -> String {
    // `Secure` when a TLS-terminating proxy says the browser spoke https; on plain http (the
    // default `litegate` on a LAN or localhost) a Secure cookie would never be sent back.
    let secure = req
        .header("x-forwarded-proto")
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
    format!(
        "{SESSION_COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// `POST /ui/login` with `{"master_key"}` or `{"email", "password"}` → a session cookie.
/// Every failure is the same 401, whatever was wrong.
pub fn login(ctx: &Ctx, req: &Req) -> Result<Reply> {
    require_ui_header(req)?;
    let b = req.json()?;
    let master = b.opt_str("master_key")?.filter(|s| !s.is_empty());
    let email = b.opt_str("email")?.filter(|s| !s.trim().is_empty());
    let password = b.opt_str("password")?;
    // Throttled attempts stop here: no lookup, no argon2, whatever the password.
    let throttle = super::throttle::global();
    let client = throttle.client(req.peer, req.header("x-forwarded-for"));
    let account = if master.is_some() {
        None
    } else {
        email.as_deref()
    };
    let attempt = throttle.check(account, client)?;
    let named = account.map(|a| a.trim().to_string());
    let outcome = match (master, email, password) {
        (Some(k), None, _) => {
            // Constant time, against the stored hash (the key itself is never kept).
            if util::ct_eq(auth::hash_key(&k).as_bytes(), ctx.master_hash.as_bytes()) {
                Ok((None, Role::ProxyAdmin, Some(ctx.master_hash.clone())))
            } else {
                Err(bad_login())
            }
        }
        (None, Some(email), Some(pw)) => {
            let found = ctx
                .pool
                .read_db(|c| Ok(db::sessions::login_candidates(c, email.trim())?))?;
            match found.as_slice() {
                [(id, role, Some(h))] => {
                    if auth::try_verify_password(&pw, h)? {
                        let role = Role::parse(role)
                            .ok_or_else(|| Error::internal(format!("user {id} has role {role}")))?;
                        Ok((Some(id.clone()), role, None))
                    } else {
                        Err(bad_login())
                    }
                }
                _ => {
                    let _ = auth::try_verify_password(&pw, dummy_hash())?;
                    Err(bad_login())
                }
            }
        }
        _ => {
            return Err(Error::bad(
                "give `master_key`, or `email` and `password`".to_string(),
            ))
        }
    };
    let (user_id, role, master_hash) = match outcome {
        Ok(x) => {
            throttle.succeeded(&attempt);
            x
        }
        Err(e) => {
            throttle.failed(&attempt);
            // A failed login is audited in a transaction of its own (nothing else is
            // written): the name given, never the password or key.
            let what = if named.is_some() {
                "user"
            } else {
                "master_key"
            };
            let object = named.clone().unwrap_or_else(|| "master_key".into());
            let audited = ctx.pool.write_db(|tx| {
                Entry::new("login_failed", "session", &object)
                    .after(json!({ "login": what }))
                    .record(tx, &Actor::anonymous(named.clone()))
            });
            if let Err(w) = audited {
                log::error!("cannot audit a failed UI login: {w:?}");
            }
            return Err(e);
        }
    };
    let mut raw = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut raw);
    let token = util::hex(&raw);
    let now_ms = util::now_ms();
    let (now, expires) = (
        util::iso_from_ms(now_ms),
        util::iso_from_ms(now_ms + SESSION_TTL_SECS * 1000),
    );
    ctx.pool.write_db(|tx| {
        db::sessions::delete_expired(tx, &now)?;
        db::sessions::insert(
            tx,
            &auth::hash_key(&token),
            user_id.as_deref(),
            master_hash.as_deref(),
            role.as_str(),
            &now,
            &expires,
        )?;
        let actor = Actor {
            user_id: Some(
                user_id
                    .clone()
                    .unwrap_or_else(|| auth::MASTER_USER_ID.into()),
            ),
            api_key: None,
            role: role.as_str().into(),
        };
        let object = user_id.as_deref().unwrap_or("master_key");
        Entry::new("login", "session", object)
            .after(json!({ "expires": expires, "is_master": user_id.is_none() }))
            .record(tx, &actor)
    })?;
    *req.key_name.borrow_mut() = Some(format!("ui:{}", user_id.as_deref().unwrap_or("master_key")));
    let body = json!({
        "user_id": user_id.as_deref().unwrap_or(auth::MASTER_USER_ID),
        "user_role": role.as_str(),
        "is_master": user_id.is_none(),
        "expires": expires,
    });
    Ok(Reply::WithHeaders(
        Box::new(Reply::Json(200, body)),
        vec![
            ("Set-Cookie".into(), cookie(req, &token, SESSION_TTL_SECS)),
            ("Cache-Control".into(), "no-store".into()),
        ],
    ))
}

/// `POST /ui/logout`: ends the session (if any) and clears the cookie.
pub fn logout(ctx: &Ctx, req: &Req) -> Result<Reply> {
    require_ui_header(req)?;
    if let Some(token) = session_cookie(req) {
        let hash = auth::hash_key(&token);
        ctx.pool.write_db(|tx| {
            let now = util::now_iso();
            let Some(s) = db::sessions::live(tx, &hash, &now)? else {
                return Ok(());
            };
            db::sessions::delete(tx, &hash)?;
            let user = s
                .user_id
                .clone()
                .unwrap_or_else(|| auth::MASTER_USER_ID.into());
            let actor = Actor {
                user_id: Some(user.clone()),
                api_key: None,
                role: s.user_role.clone().unwrap_or_else(|| "proxy_admin".into()),
            };
            let object = if s.is_master { "master_key" } else { &user };
            Entry::new("logout", "session", object).record(tx, &actor)
        })?;
    }
    Ok(Reply::WithHeaders(
        Box::new(Reply::Json(200, json!({"logged_out": true}))),
        vec![("Set-Cookie".into(), cookie(req, "", 0))],
    ))
}

/// `GET /ui/me`: who the UI is acting as, so pages can hide what the role cannot do (the API
/// still decides every request).
pub fn me(ctx: &Ctx, who: &Caller, _req: &Req) -> Result<Reply> {
    let email = match (&who.user_id, who.is_master()) {
        (Some(u), false) => ctx
            .pool
            .read_db(|c| Ok(db::users::get(c, u)?))?
            .and_then(|u| u.email),
        _ => None,
    };
    Reply::ok(json!({
        "user_id": who.user_id,
        "user_email": email,
        "user_role": who.role.as_str(),
        "is_master": who.is_master(),
        "is_viewer": who.role.is_viewer(),
        "reads_all": who.role.reads_all(),
    }))
}

/// `GET /ui/key_model_options?team_id=` (or without a team: `organization_id`, and for admins
/// `user_id`): the model choices of the key form with the models each gives
/// (`access::grant::options`). A team the caller may not read answers 404.
pub fn key_model_options(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let q = |n: &str| req.query(n).filter(|s| !s.trim().is_empty());
    let team_id = q("team_id");
    let org_id = q("organization_id").filter(|_| team_id.is_none());
    // Whose personal key: yourself, unless an admin asks for another user.
    let user_id = match q("user_id") {
        Some(u) if who.role.reads_all() => Some(u.to_string()),
        _ if who.is_master() => None,
        _ => who.user_id.clone(),
    };
    let out = ctx.pool.read_db(|c| {
        if let Some(t) = team_id {
            let visible = match db::teams::get(c, t)? {
                Some(team) => policy::can_read_team(c, who, &team)?,
                None => false,
            };
            if !visible {
                return Err(Error::NotFound(format!("Team not found: {t}")));
            }
        }
        if let Some(o) = org_id {
            if db::orgs::get(c, o)?.is_none() || !policy::can_read_org(c, who, o)? {
                return Err(Error::NotFound(format!("Organization not found: {o}")));
            }
        }
        grant::options(
            ctx.models.current().global(),
            c,
            team_id,
            org_id,
            user_id.as_deref(),
        )
    })?;
    Reply::ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req_with(headers: &[(&str, &str)]) -> Req {
        Req::new(
            "GET",
            "/key/list",
            headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            vec![],
        )
    }

    #[test]
    fn cookie_parsing() {
        let r = req_with(&[("Cookie", "a=1; litegate_session=abc; b=2")]);
        assert_eq!(session_cookie(&r).as_deref(), Some("abc"));
        let r = req_with(&[("cookie", "litegate_session=")]);
        assert_eq!(session_cookie(&r), None);
        let r = req_with(&[("Cookie", "xlitegate_session=zzz")]);
        assert_eq!(session_cookie(&r), None);
        assert_eq!(session_cookie(&req_with(&[])), None);
    }

    #[test]
    fn cookie_flags() {
        let c = cookie(&req_with(&[]), "v", 60);
        assert_eq!(
            c,
            "litegate_session=v; HttpOnly; SameSite=Strict; Path=/; Max-Age=60"
        );
        let c = cookie(&req_with(&[("X-Forwarded-Proto", "https")]), "v", 60);
        assert!(c.ends_with("; Secure"), "{c}");
    }

    #[test]
    fn every_asset_is_embedded_and_typed() {
        for a in ASSETS {
            assert!(!a.body.is_empty(), "{}", a.name);
        }
        let html = String::from_utf8_lossy(ASSETS[0].body);
        // CSP forbids inline script and style: the page must not rely on them.
        assert!(!html.contains("<script>"), "inline script in index.html");
        assert!(!html.contains("style="), "inline style in index.html");
        assert!(!html.contains("<style"), "inline style in index.html");
    }
}
