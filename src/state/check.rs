//! The checks of a state file before anything is written: each object's fields by type
//! (`object`), then the file as a whole against what the store will hold (`whole`): every
//! reference resolvable, unique e-mails and key aliases, model lists by the one rule set
//! (`access::grant::check_models`), team permissions and aliases, database models
//! (`models.rs`). Every refusal is a 400 naming
//! the section, the object and the field.

use super::kinds::{Field, Kind, Ty, KINDS};
use super::{default_of, show_id, Obj, State};
use crate::access::grant::{check_models, Holder, Parent};
use crate::access::{Catalog, Chain};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::hierarchy::Allowance;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashSet};

/// `e` (a 400) with the object it is about in front of its message.
fn about(k: &Kind, id: &str, e: Error) -> Error {
    match e {
        Error::BadRequest { message, param } => Error::BadRequest {
            message: format!("{}: {} {id}: {message}", k.section, k.noun),
            param,
        },
        other => other,
    }
}

fn bad(k: &Kind, id: &str, f: &Field, why: impl std::fmt::Display) -> Error {
    Error::bad_param(
        f.name,
        format!("{}: {} {id}: `{}` {why}", k.section, k.noun, f.name),
    )
}

/// The `n`th object of `k`'s section, its fields checked by type and normalized (numbers as
/// their type, defaults for fields left out).
pub fn object(k: &Kind, n: usize, item: &Value) -> Result<Obj> {
    let Value::Object(m) = item else {
        return Err(Error::bad_param(
            k.section,
            format!("{}[{n}] must be an object", k.section),
        ));
    };
    // The id for messages, before the fields are checked.
    let id = k.fields[..k.key]
        .iter()
        .map(|f| m.get(f.name).and_then(Value::as_str).unwrap_or("?"))
        .collect::<Vec<_>>()
        .join("/");
    // A token field holding something else (a raw key, say) is never echoed.
    let not_token = k.fields[0].ty == Ty::Token
        && !(id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()));
    let id = if not_token || id.chars().count() > 80 {
        format!("{}[{n}]", k.section)
    } else {
        id
    };
    if let Some(unknown) = m
        .keys()
        .find(|name| k.fields.iter().all(|f| f.name != *name))
    {
        let known: Vec<&str> = k.fields.iter().map(|f| f.name).collect();
        return Err(Error::bad_param(
            unknown,
            format!(
                "{}: {} {id}: unknown field `{unknown}` (known: {})",
                k.section,
                k.noun,
                known.join(", ")
            ),
        ));
    }
    k.fields
        .iter()
        .enumerate()
        .map(|(i, f)| match m.get(f.name) {
            None | Some(Value::Null) if f.ty.keeps() => Ok(None),
            v => field(k, &id, f, i < k.key, v.unwrap_or(&Value::Null)).map(Some),
        })
        .collect()
}

fn text<'v>(k: &Kind, id: &str, f: &Field, v: &'v Value) -> Result<&'v str> {
    let s = v
        .as_str()
        .ok_or_else(|| bad(k, id, f, "must be a string"))?;
    crate::input::check(f.name, s).map_err(|e| about(k, id, e))?;
    Ok(s)
}

fn strings(k: &Kind, id: &str, f: &Field, v: &Value) -> Result<Value> {
    let list = v
        .as_array()
        .ok_or_else(|| bad(k, id, f, "must be a list of strings"))?;
    for e in list {
        text(k, id, f, e)?;
    }
    Ok(v.clone())
}

/// One field's value checked by its type.
fn field(k: &Kind, id: &str, f: &Field, required: bool, v: &Value) -> Result<Value> {
    if v.is_null() {
        let needed = required
            || matches!(
                f.ty,
                Ty::Id | Ty::Token | Ty::Str | Ty::Role(_) | Ty::Sealed
            );
        return match needed {
            true => Err(bad(k, id, f, "is required")),
            false => Ok(default_of(f.ty)),
        };
    }
    match f.ty {
        Ty::Id | Ty::Str | Ty::Text | Ty::Unique | Ty::Email | Ty::Ref(_) | Ty::CreatedBy => {
            let s = text(k, id, f, v)?;
            if s.is_empty() && matches!(f.ty, Ty::Id | Ty::Str | Ty::Ref(_)) {
                return Err(bad(k, id, f, "must not be empty"));
            }
            Ok(v.clone())
        }
        Ty::Token => {
            let s = text(k, id, f, v)?;
            let hex = s.len() == 64
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !hex {
                return Err(bad(
                    k,
                    id,
                    f,
                    "must be the key's token (64 lowercase hex digits, the SHA-256 of the raw \
                     key), never the raw key",
                ));
            }
            Ok(v.clone())
        }
        Ty::Role(allowed) => {
            let s = text(k, id, f, v)?;
            if !allowed.contains(&s) {
                return Err(bad(k, id, f, format!("must be one of {allowed:?}")));
            }
            Ok(v.clone())
        }
        Ty::Choice(allowed) => {
            let s = text(k, id, f, v)?;
            if !allowed.contains(&s) {
                return Err(bad(k, id, f, format!("must be one of {allowed:?} or null")));
            }
            Ok(v.clone())
        }
        Ty::Money => match v.as_f64() {
            Some(x) if x.is_finite() && x >= 0.0 => Ok(Value::from(x)),
            _ => Err(bad(k, id, f, "must be a number ≥ 0")),
        },
        Ty::Limit => match v.as_i64() {
            Some(x) if x >= 0 => Ok(Value::from(x)),
            _ => Err(bad(k, id, f, "must be an integer ≥ 0")),
        },
        Ty::Rank => match v.as_i64() {
            Some(x) if (0..=3).contains(&x) => Ok(Value::from(x)),
            _ => Err(bad(k, id, f, "must be a rank 0..3")),
        },
        Ty::Flag => match v {
            Value::Bool(_) => Ok(v.clone()),
            _ => Err(bad(k, id, f, "must be true or false")),
        },
        Ty::Duration => {
            let s = text(k, id, f, v)?;
            match crate::util::parse_duration(s) {
                Some(_) => Ok(v.clone()),
                None => Err(bad(k, id, f, "must be a duration like 30s, 15m, 1h, 7d")),
            }
        }
        Ty::Time | Ty::Created => {
            let s = text(k, id, f, v)?;
            match crate::util::ms_from_iso(s) {
                Some(_) => Ok(v.clone()),
                None => Err(bad(k, id, f, "must be an ISO-8601 UTC time")),
            }
        }
        Ty::List | Ty::OptList => strings(k, id, f, v),
        // Each value's ciphertext is opened in `models::check` (it needs the instance's key).
        Ty::Sealed => match v {
            Value::Object(_) => Ok(v.clone()),
            _ => Err(bad(
                k,
                id,
                f,
                "must be a mapping of parameters (strings as `export` writes them: encrypted)",
            )),
        },
        Ty::Obj | Ty::OptObj => match v {
            Value::Object(_) => Ok(v.clone()),
            _ => Err(bad(k, id, f, "must be a mapping")),
        },
        Ty::Secret => {
            let s = text(k, id, f, v)?;
            if !s.starts_with("$argon2id$") {
                return Err(bad(
                    k,
                    id,
                    f,
                    "must be an argon2id hash ($argon2id$...) as `export` writes it, never a \
                     password",
                ));
            }
            Ok(v.clone())
        }
    }
}

/// The objects the store will hold: the file's, plus the store's that the file leaves out
/// unless `prune` deletes them.
struct Result_<'a> {
    kinds: Vec<BTreeMap<&'a [String], &'a Obj>>,
}

impl<'a> Result_<'a> {
    fn new(file: &'a State, store: &'a State, prune: bool) -> Self {
        let kinds = KINDS
            .iter()
            .enumerate()
            .map(|(i, _)| {
                let mut m: BTreeMap<&[String], &Obj> = BTreeMap::new();
                if !prune {
                    m.extend(store.kinds[i].iter().map(|(k, v)| (k.as_slice(), v)));
                }
                m.extend(file.kinds[i].iter().map(|(k, v)| (k.as_slice(), v)));
                m
            })
            .collect();
        Result_ { kinds }
    }

    fn get(&self, section: &str, id: &str) -> Option<&'a Obj> {
        let i = super::kinds::index_of(section)?;
        self.kinds[i].get([id.to_string()].as_slice()).copied()
    }
}

fn at<'o>(k: &Kind, obj: &'o Obj, name: &str) -> Option<&'o Value> {
    let i = k.fields.iter().position(|f| f.name == name)?;
    obj[i].as_ref().filter(|v| !v.is_null())
}

fn models(k: &Kind, obj: &Obj) -> Vec<String> {
    at(k, obj, "models")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The file as a whole against what the store will hold. Model lists are judged against the
/// models in force once it is applied (the config's, and the database models it will hold).
pub fn whole(cfg: &Config, file: &State, store: &State, prune: bool) -> Result<()> {
    super::models::check(cfg, file)?;
    let res = Result_::new(file, store, prune);
    let views = match super::kinds::index_of("models") {
        Some(mi) => super::models::in_force(cfg, res.kinds[mi].values().copied()),
        None => super::models::in_force(cfg, std::iter::empty()),
    };
    let cat = views.global();
    for (ki, k) in KINDS.iter().enumerate() {
        // Unique values among what the kind will hold.
        for (fi, f) in k.fields.iter().enumerate() {
            if !matches!(f.ty, Ty::Unique | Ty::Email) {
                continue;
            }
            let mut seen: HashSet<String> = HashSet::new();
            // The file's objects first, so the message names one of them.
            let objs = file.kinds[ki]
                .iter()
                .map(|(id, o)| (id.as_slice(), o))
                .chain(
                    res.kinds[ki]
                        .iter()
                        .filter(|(id, _)| !file.kinds[ki].contains_key(**id))
                        .map(|(id, o)| (*id, *o))
                        .collect::<Vec<_>>(),
                );
            let mut owners: BTreeMap<String, String> = BTreeMap::new();
            for (id, obj) in objs {
                let Some(Value::String(s)) = &obj[fi] else {
                    continue;
                };
                let norm = if f.ty == Ty::Email {
                    s.to_lowercase()
                } else {
                    s.clone()
                };
                if !seen.insert(norm.clone()) {
                    let other = owners.get(&norm).cloned().unwrap_or_default();
                    return Err(Error::bad_param(
                        f.name,
                        format!(
                            "{}: {} {} and {other} both have {} {s:?}; it must be unique",
                            k.section,
                            k.noun,
                            show_id(id),
                            f.name
                        ),
                    ));
                }
                owners.insert(norm, show_id(id));
            }
        }
        for (id, obj) in &file.kinds[ki] {
            let sid = show_id(id);
            for (f, v) in k.fields.iter().zip(obj) {
                let (Ty::Ref(section), Some(Value::String(target))) = (f.ty, v) else {
                    continue;
                };
                if res.get(section, target).is_none() {
                    let why = if prune {
                        "is not in the file (with prune, the store keeps only what the file lists)"
                    } else {
                        "is neither in the file nor in the store"
                    };
                    return Err(bad(k, &sid, f, format!("{target} {why}")));
                }
            }
            check_kind(cat, &res, k, obj).map_err(|e| about(k, &sid, e))?;
        }
    }
    Ok(())
}

fn team_row(k: &Kind, id: &str, o: &Obj) -> crate::db::teams::TeamRow {
    crate::db::teams::TeamRow {
        id: id.to_string(),
        alias: None,
        organization_id: at(k, o, "organization_id")
            .and_then(Value::as_str)
            .map(str::to_string),
        models: models(k, o),
        spend: 0.0,
        allowance: Allowance::default(),
        blocked: false,
        metadata: Value::Null,
        created_at: String::new(),
        updated_at: String::new(),
        created_by: None,
        updated_by: None,
        model_aliases: Value::Null,
        member_permissions: None,
    }
}

fn org_row(k: &Kind, id: &str, o: &Obj) -> crate::db::orgs::OrgRow {
    crate::db::orgs::OrgRow {
        id: id.to_string(),
        alias: String::new(),
        models: models(k, o),
        spend: 0.0,
        budget_id: None,
        blocked: false,
        metadata: Value::Null,
        created_at: String::new(),
        updated_at: String::new(),
        created_by: None,
        updated_by: None,
    }
}

fn user_row(k: &Kind, id: &str, o: &Obj) -> crate::db::users::UserRow {
    crate::db::users::UserRow {
        id: id.to_string(),
        email: None,
        user_role: String::new(),
        password_hash: None,
        models: models(k, o),
        spend: 0.0,
        allowance: Allowance::default(),
        metadata: Value::Null,
        created_at: String::new(),
        updated_at: String::new(),
    }
}

fn string_values(name: &str, v: Option<&Value>) -> Result<()> {
    let Some(Value::Object(m)) = v else {
        return Ok(());
    };
    let m: &Map<String, Value> = m;
    for (alias, target) in m {
        crate::input::check(name, alias)?;
        match target.as_str() {
            Some(t) => crate::input::check(name, t)?,
            None => {
                return Err(Error::bad_param(
                    name,
                    format!("`{name}`: the value of {alias:?} must be a model name"),
                ))
            }
        }
    }
    Ok(())
}

/// The rules of one kind beyond types and references.
fn check_kind(cat: &Catalog, res: &Result_<'_>, k: &Kind, o: &Obj) -> Result<()> {
    let ko = |s: &str| KINDS.iter().find(|k| k.section == s);
    let list = models(k, o);
    match k.section {
        "organizations" => check_models(
            cat,
            &Holder::Org {
                granter: Chain::default(),
            },
            &list,
        ),
        "users" => check_models(cat, &Holder::User, &list),
        "teams" => {
            string_values("model_aliases", at(k, o, "model_aliases"))?;
            if let Some(Value::Array(p)) = at(k, o, "team_member_permissions") {
                for r in p.iter().filter_map(Value::as_str) {
                    if !crate::access::authority::MEMBER_PERMISSION_ROUTES.contains(&r) {
                        return Err(Error::bad_param(
                            "team_member_permissions",
                            format!(
                                "`team_member_permissions`: {r:?} is not a key management route"
                            ),
                        ));
                    }
                }
            }
            let org = at(k, o, "organization_id")
                .and_then(Value::as_str)
                .and_then(|oid| res.get("organizations", oid));
            let org_models = match (org, ko("organizations")) {
                (Some(org), Some(ok)) => Some(models(ok, org)),
                _ => None,
            };
            check_models(
                cat,
                &Holder::Team {
                    org: org_models.as_deref(),
                },
                &list,
            )
        }
        "keys" => {
            string_values("aliases", at(k, o, "aliases"))?;
            let (Some(tk), Some(ok), Some(uk)) = (ko("teams"), ko("organizations"), ko("users"))
            else {
                return Ok(());
            };
            let get = |f: &str, s: &str| {
                at(k, o, f)
                    .and_then(Value::as_str)
                    .and_then(|x| res.get(s, x).map(|obj| (x.to_string(), obj)))
            };
            let team = get("team_id", "teams");
            let own_org = at(k, o, "organization_id").and_then(Value::as_str);
            let team_org = team
                .as_ref()
                .and_then(|(_, t)| at(tk, t, "organization_id"))
                .and_then(Value::as_str);
            if let (Some(a), Some(b)) = (own_org, team_org) {
                if a != b {
                    return Err(Error::bad_param(
                        "organization_id",
                        "organization_id does not match the team's organization",
                    ));
                }
            }
            let org = team_org
                .or(own_org)
                .and_then(|x| res.get("organizations", x).map(|obj| (x, obj)));
            let parent = Parent {
                team: team.as_ref().map(|(tid, t)| team_row(tk, tid, t)),
                org: org.map(|(oid, obj)| org_row(ok, oid, obj)),
                user: get("user_id", "users").map(|(uid, u)| user_row(uk, &uid, u)),
            };
            check_models(cat, &Holder::Key(&parent), &list)
        }
        "end_users" => match at(k, o, "default_model").and_then(Value::as_str) {
            // As `/customer/new`: a model this proxy routes.
            Some(m) if !cat.is_routable(m) => Err(Error::bad_param(
                "default_model",
                format!("`default_model` {m} is not a model of this proxy"),
            )),
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}
