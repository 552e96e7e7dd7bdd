//! LiteLLM's virtual keys → litegate's `api_keys`, by their SHA-256 token so every raw `sk-`
//! key keeps working; and LiteLLM's spend logs → litegate's (`--with-spend-logs`). Owns the
//! key rules of README "Moving from LiteLLM": keys of a team that is gone and LiteLLM's UI
//! session keys are not imported; an owner that is gone leaves the key without one; a key a
//! budget row limits gets that row's limits; authority never grows (schema 0005's rule).

use super::map::{duration, ts_or_now, Plan, Src, IMPORTED_RANK};
use super::rows::{
    get_bool, get_f64, get_i64, get_list, get_obj, get_str, get_ts, json_list, json_obj, Out, V,
};
use super::source::Rec;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};

/// The user id LiteLLM (and litegate, `auth::MASTER_USER_ID`) gives the master key; `db`
/// sits below `auth`, so the name is repeated here.
const MASTER_USER_ID: &str = "default_user_id";

/// `token` of a raw key: lowercase hex SHA-256 (`auth::hash_key`, LiteLLM's format).
fn sha256_hex(raw: &str) -> String {
    use sha2::{Digest, Sha256};
    crate::util::hex(&Sha256::digest(raw.as_bytes()))
}

/// The team LiteLLM's admin UI puts its login-session keys in (no such team exists).
const UI_SESSION_TEAM: &str = "litellm-dashboard";

/// The token litegate looks a raw key up by: LiteLLM's `token` when it is a SHA-256 hex, or
/// the hash of a raw `sk-` key stored unhashed by an old LiteLLM.
fn token_of(raw: &str) -> Option<(String, bool)> {
    let t = raw.trim();
    if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some((t.to_ascii_lowercase(), false));
    }
    if t.starts_with("sk-") {
        return Some((sha256_hex(t), true));
    }
    None
}

pub(super) fn plan_keys(
    src: &Src,
    p: &mut Plan,
    teams: &BTreeSet<String>,
    users: &BTreeSet<String>,
    orgs: &BTreeSet<String>,
) {
    let budgets: HashMap<String, &Rec> = src
        .budgets
        .rows
        .iter()
        .filter_map(|b| Some((get_str(b, "budget_id")?, b)))
        .collect();
    let proxy_admins: BTreeSet<String> = src
        .users
        .rows
        .iter()
        .filter(|u| get_str(u, "user_role").as_deref() == Some("proxy_admin"))
        .filter_map(|u| get_str(u, "user_id"))
        .collect();
    let mut aliases: HashMap<String, String> = HashMap::new();
    let mut tokens = BTreeSet::new();
    for k in &src.keys.rows {
        let name = get_str(k, "key_name").unwrap_or_else(|| "sk-...".into());
        let label = match get_str(k, "key_alias") {
            Some(a) => format!("key {name} ({a})"),
            None => format!("key {name}"),
        };
        let Some((token, was_raw)) = get_str(k, "token").and_then(|t| token_of(&t)) else {
            p.note(format!(
                "{label}: its token is not a SHA-256 hex: not imported"
            ));
            continue;
        };
        if was_raw {
            p.note(format!(
                "{label}: stored unhashed by an old LiteLLM: imported by its SHA-256"
            ));
        }
        if !tokens.insert(token.clone()) {
            continue;
        }
        let team = get_str(k, "team_id");
        if team.as_deref() == Some(UI_SESSION_TEAM) {
            p.note(format!(
                "{label}: a LiteLLM admin-UI session key: not imported (log in to litegate's UI)"
            ));
            continue;
        }
        if let Some(t) = team.as_ref().filter(|t| !teams.contains(*t)) {
            p.note(format!(
                "{label}: its team {t} does not exist in LiteLLM: not imported (LiteLLM lets \
                 such a key call every model; litegate refuses a key whose team is gone)"
            ));
            continue;
        }
        let mut meta = get_obj(k, "metadata");
        for m in ["model_rpm_limit", "model_tpm_limit"] {
            if meta.get(m).is_some_and(super::rows::is_set) {
                p.note(format!(
                    "{label}: metadata.{m} is kept in the key's metadata but litegate does not \
                     enforce per-model limits"
                ));
            }
        }
        let user = match get_str(k, "user_id") {
            Some(u) if !users.contains(&u) => {
                p.note(format!(
                    "{label}: its user {u} does not exist in LiteLLM: imported without an \
                     owner (metadata.litellm_user_id keeps the id)"
                ));
                meta.insert("litellm_user_id".into(), Value::String(u));
                None
            }
            u => u,
        };
        let org = match get_str(k, "organization_id") {
            Some(o) if !orgs.contains(&o) => {
                p.note(format!(
                    "{label}: its organization {o} does not exist in LiteLLM: imported without \
                     one"
                ));
                None
            }
            o => o,
        };
        let alias = match get_str(k, "key_alias") {
            Some(a) => match aliases.get(&a) {
                Some(first) => {
                    p.note(format!(
                        "{label}: alias {a} is also key {first}'s (litegate's key aliases are \
                         unique): imported without an alias"
                    ));
                    None
                }
                None => {
                    aliases.insert(a.clone(), name.clone());
                    Some(a)
                }
            },
            None => None,
        };
        // A key's own value first, else its budget row's (LiteLLM's `budget_id` on a key).
        let b = get_str(k, "budget_id").and_then(|id| budgets.get(&id).copied());
        let f = |c: &str| get_f64(k, c).or_else(|| b.and_then(|b| get_f64(b, c)));
        let i = |c: &str| get_i64(k, c).or_else(|| b.and_then(|b| get_i64(b, c)));
        let (mut dur, mut reset) = duration(k, &label, p);
        if dur == V::Null {
            if let Some(b) = b {
                (dur, reset) = duration(b, &label, p);
            }
        }
        // Authority never grows (schema 0005): a key someone else below proxy admin made for
        // its owner acts for model calls only.
        let created_by = get_str(k, "created_by");
        let calls_only = match (&user, &created_by) {
            (Some(u), Some(c)) => c != u && c != MASTER_USER_ID && !proxy_admins.contains(c),
            _ => false,
        };
        let issued_by = created_by
            .clone()
            .filter(|c| calls_only && users.contains(c));
        let out = Out::new("api_keys", &["token"])
            .set("token", V::Text(token))
            .set("key_name", V::Text(name))
            .set("key_alias", V::text(alias))
            .set("models", json_list(&get_list(k, "models")))
            .set("aliases", json_obj(get_obj(k, "aliases")))
            .set("team_id", V::text(team))
            .set("user_id", V::text(user))
            .set("organization_id", V::text(org))
            .set("expires", V::text(get_ts(k, "expires")))
            .set("blocked", V::Int(get_bool(k, "blocked") as i64))
            .set("spend", V::Real(get_f64(k, "spend").unwrap_or(0.0)))
            .set("max_budget", V::real(f("max_budget")))
            .set(
                "soft_budget",
                V::real(b.and_then(|b| get_f64(b, "soft_budget"))),
            )
            .set("budget_duration", dur)
            .set("budget_reset_at", reset)
            .set("tpm_limit", V::int(i("tpm_limit")))
            .set("rpm_limit", V::int(i("rpm_limit")))
            .set("max_parallel_requests", V::int(i("max_parallel_requests")))
            .set("metadata", json_obj(meta))
            .set("created_at", ts_or_now(k, "created_at"))
            .set("updated_at", ts_or_now(k, "updated_at"))
            .set("created_by", V::text(created_by))
            .set("updated_by", V::text(get_str(k, "updated_by")))
            .set(
                "reach",
                V::Text(if calls_only { "calls" } else { "owner" }.into()),
            )
            .set("issued_by", V::text(issued_by));
        let limited = [
            "expires",
            "max_budget",
            "budget_duration",
            "tpm_limit",
            "rpm_limit",
            "max_parallel_requests",
        ]
        .iter()
        .any(|c| out.get(c).is_some_and(|v| *v != V::Null))
            || out.get("blocked") == Some(&V::Int(1));
        p.rows.push(out.set(
            "limits_rank",
            V::Int(if limited { IMPORTED_RANK } else { 0 }),
        ));
    }
}

/// The largest LiteLLM spend-log `metadata` carried whole (bytes of JSON); a larger one is
/// dropped (the row's columns are kept).
const MAX_LOG_METADATA: usize = 64 * 1024;

/// One LiteLLM spend log row → litegate's `spend_logs` (upserted by `request_id`).
pub fn spend_log(r: &Rec) -> Option<Out> {
    let id = get_str(r, "request_id")?;
    let start = get_ts(r, "startTime")?;
    let end = get_ts(r, "endTime").unwrap_or_else(|| start.clone());
    let model = get_str(r, "model_group")
        .or_else(|| get_str(r, "model"))
        .unwrap_or_default();
    let org = get_str(r, "organization_id").or_else(|| {
        get_obj(r, "metadata")
            .get("user_api_key_org_id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    });
    // LiteLLM's own spend-log metadata (the shape litegate writes too, `db::spend`), unless
    // oversized; the columns litegate has no column for go beside it.
    let mut meta = get_obj(r, "metadata");
    if Value::Object(meta.clone()).to_string().len() > MAX_LOG_METADATA {
        meta = serde_json::Map::new();
    }
    if let Some(e) = get_str(r, "end_user") {
        meta.insert("user_api_key_end_user_id".into(), Value::String(e));
    }
    for (from, to) in [
        ("model", "litellm_model"),
        ("model_id", "model_id"),
        ("custom_llm_provider", "custom_llm_provider"),
        ("cache_hit", "cache_hit"),
    ] {
        if let Some(v) = get_str(r, from) {
            meta.insert(to.into(), Value::String(v));
        }
    }
    if let Some(t) = r.get("request_tags").filter(|t| super::rows::is_set(t)) {
        meta.insert("request_tags".into(), t.clone());
    }
    meta.insert("imported_from".into(), Value::String("litellm".into()));
    let tok = |c: &str| V::Int(get_i64(r, c).unwrap_or(0).max(0));
    let mut out = Out::new("spend_logs", &["request_id"])
        .set("request_id", V::Text(id))
        .set("api_key", V::text(get_str(r, "api_key")))
        .set("team_id", V::text(get_str(r, "team_id")))
        .set("organization_id", V::text(org))
        .set("user_id", V::text(get_str(r, "user")))
        .set("model", V::Text(model))
        .set(
            "call_type",
            V::Text(get_str(r, "call_type").unwrap_or_else(|| "completion".into())),
        )
        .set("prompt_tokens", tok("prompt_tokens"))
        .set("completion_tokens", tok("completion_tokens"))
        .set("total_tokens", tok("total_tokens"))
        .set("spend", V::Real(get_f64(r, "spend").unwrap_or(0.0)))
        .set("start_time", V::Text(start))
        .set("end_time", V::Text(end))
        .set(
            "status",
            V::Text(get_str(r, "status").unwrap_or_else(|| "success".into())),
        )
        .set("metadata", json_obj(meta));
    out.insert_only = &[];
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tokens_are_litellm_hashes_or_hashed_raw_keys() {
        let h = sha256_hex("sk-abc");
        assert_eq!(h, crate::auth::hash_key("sk-abc"));
        assert_eq!(crate::auth::MASTER_USER_ID, MASTER_USER_ID);
        assert_eq!(token_of(&h.to_uppercase()), Some((h.clone(), false)));
        assert_eq!(token_of("sk-abc"), Some((h, true)));
        assert_eq!(token_of("not-a-key"), None);
    }

    #[test]
    fn a_spend_log_row_keeps_its_counts_and_public_model() {
        let r = json!({"request_id": "r1", "startTime": "2025-01-02T03:04:05.006",
            "model": "gpt-4o-2024", "model_group": "gpt-4o", "spend": 0.25,
            "prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
            "metadata": {"user_api_key_org_id": "o1", "user_api_key_alias": "k"},
            "end_user": "cust", "request_tags": ["a"], "status": null});
        let out = spend_log(r.as_object().unwrap()).unwrap();
        assert_eq!(out.get("model"), Some(&V::Text("gpt-4o".into())));
        assert_eq!(out.get("organization_id"), Some(&V::Text("o1".into())));
        assert_eq!(
            out.get("end_time"),
            Some(&V::Text("2025-01-02T03:04:05.006Z".into()))
        );
        assert_eq!(out.get("status"), Some(&V::Text("success".into())));
        assert_eq!(out.get("spend"), Some(&V::Real(0.25)));
        let meta = out.get("metadata").and_then(V::as_text).unwrap();
        assert!(meta.contains("\"request_tags\":[\"a\"]") && meta.contains("gpt-4o-2024"));
        assert!(
            meta.contains("\"user_api_key_end_user_id\":\"cust\""),
            "{meta}"
        );
        assert!(meta.contains("\"user_api_key_alias\":\"k\""), "{meta}");
        assert!(spend_log(json!({"request_id": "r"}).as_object().unwrap()).is_none());
    }
}
