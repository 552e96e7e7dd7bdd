//! `apply`: a state file compared with the store into a plan — which objects are created,
//! which fields of which objects change (before and after), which objects are deleted (only
//! with `prune`) — and, unless it is a dry run, the plan written in ONE transaction, read,
//! checked and compared inside that same transaction (so the plan shown is the plan written).
//! Applying the same file twice: the second plan is empty and nothing is written.

use super::kinds::{Kind, Ty, KINDS};
use super::{check, default_of, load, parse, show_id, to_cell, Obj, State};
use crate::config::Config;
use crate::db::handle::{DbError, Handle};
use crate::db::state::Cell;
use crate::db::Pool;
use crate::error::{Error, Result};
use serde_json::{json, Map, Value};

/// One object's changed fields: (field index, before, after).
#[derive(Debug, Clone)]
pub struct Change {
    pub kind: usize,
    pub id: Vec<String>,
    pub fields: Vec<(usize, Value, Value)>,
}

/// What applying a file does.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub create: Vec<(usize, Vec<String>)>,
    pub update: Vec<Change>,
    pub delete: Vec<(usize, Vec<String>)>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.delete.is_empty()
    }

    /// `{"create": [{kind, id}], "update": [{kind, id, fields: {name: {before, after}}}],
    /// "delete": [{kind, id}]}`; a password hash shows as `(secret)`.
    pub fn json(&self) -> Value {
        let one =
            |(k, id): &(usize, Vec<String>)| json!({"kind": KINDS[*k].noun, "id": show_id(id)});
        let update: Vec<Value> = self
            .update
            .iter()
            .map(|c| {
                let k = &KINDS[c.kind];
                let mut fields = Map::new();
                for (i, before, after) in &c.fields {
                    let f = &k.fields[*i];
                    let shown = |v: &Value| match (f.ty, v) {
                        (Ty::Secret, Value::String(_)) => json!("(secret)"),
                        _ => v.clone(),
                    };
                    fields.insert(
                        f.name.to_string(),
                        json!({"before": shown(before), "after": shown(after)}),
                    );
                }
                json!({"kind": k.noun, "id": show_id(&c.id), "fields": fields})
            })
            .collect();
        json!({
            "create": self.create.iter().map(one).collect::<Vec<_>>(),
            "update": update,
            "delete": self.delete.iter().map(one).collect::<Vec<_>>(),
        })
    }
}

/// What `apply` did: the plan, and whether it was written.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub plan: Plan,
    pub dry_run: bool,
    pub prune: bool,
    pub applied: bool,
}

impl Outcome {
    pub fn json(&self) -> Value {
        let mut v = self.plan.json();
        if let Value::Object(m) = &mut v {
            m.insert("dry_run".into(), json!(self.dry_run));
            m.insert("prune".into(), json!(self.prune));
            m.insert("applied".into(), json!(self.applied));
        }
        v
    }

    /// `3 to create, 1 to update, 0 to delete` (the CLI's summary line).
    pub fn summary(&self) -> String {
        let p = &self.plan;
        format!(
            "{} to create, {} to update, {} to delete",
            p.create.len(),
            p.update.len(),
            p.delete.len()
        )
    }
}

/// The plan that makes `store` hold `file`.
pub fn diff(file: &State, store: &State, prune: bool) -> Plan {
    let mut plan = Plan::default();
    for (ki, _) in KINDS.iter().enumerate() {
        for (id, obj) in &file.kinds[ki] {
            match store.kinds[ki].get(id) {
                None => plan.create.push((ki, id.clone())),
                Some(have) => {
                    let fields: Vec<(usize, Value, Value)> = obj
                        .iter()
                        .zip(have)
                        .enumerate()
                        .filter_map(|(i, (want, have))| {
                            let want = want.as_ref()?;
                            let have = have.clone().unwrap_or(Value::Null);
                            (*want != have).then(|| (i, have, want.clone()))
                        })
                        .collect();
                    if !fields.is_empty() {
                        plan.update.push(Change {
                            kind: ki,
                            id: id.clone(),
                            fields,
                        });
                    }
                }
            }
        }
        if prune {
            for id in store.kinds[ki].keys() {
                if !file.kinds[ki].contains_key(id) {
                    plan.delete.push((ki, id.clone()));
                }
            }
        }
    }
    plan
}

/// Reads `text`, checks it whole, plans it against the store and — unless `dry_run` — writes
/// the plan in one transaction. A bad file is a 400 naming the object and field; nothing is
/// written then, nor on any other error.
pub fn apply(pool: &Pool, cfg: &Config, text: &str, dry_run: bool, prune: bool) -> Result<Outcome> {
    let file = parse(text)?;
    let plan_in = |c: &dyn Fn() -> Result<State>| -> Result<Plan> {
        let store = c()?;
        check::whole(cfg, &file, &store, prune)?;
        Ok(diff(&file, &store, prune))
    };
    let (plan, applied) = if dry_run {
        (pool.read_db(|c| plan_in(&|| load(c)))?, false)
    } else {
        pool.write_db(|c| {
            let plan = plan_in(&|| load(c))?;
            write(c, &file, &plan)?;
            Ok((plan.clone(), !plan.is_empty()))
        })?
    };
    Ok(Outcome {
        plan,
        dry_run,
        prune,
        applied,
    })
}

/// A unique violation while writing (two objects swapping an e-mail, say) is the file's
/// conflict with itself or the store: 409; anything else the store's.
fn stored(e: DbError) -> Error {
    if e.is_unique() {
        Error::Conflict("applying the state file violates a unique value (an e-mail or a key alias held by another object); nothing was written".into())
    } else {
        e.into()
    }
}

/// The budget reset time of an object whose `budget_duration` is `v`, from now.
fn reset_of(v: Option<&Value>) -> Cell {
    v.and_then(Value::as_str)
        .and_then(crate::util::parse_duration)
        .map_or(Cell::Null, |secs| {
            Cell::Text(crate::util::iso_from_ms(
                crate::util::now_ms().saturating_add(secs.saturating_mul(1000)),
            ))
        })
}

fn duration_at(k: &Kind) -> Option<usize> {
    k.fields.iter().position(|f| f.ty == Ty::Duration)
}

fn cell_of(ty: Ty, v: &Value) -> Cell {
    match (ty, v) {
        (Ty::List | Ty::OptList | Ty::Obj | Ty::OptObj | Ty::Sealed, Value::Null) => Cell::Null,
        (Ty::List | Ty::OptList | Ty::Obj | Ty::OptObj | Ty::Sealed, v) => {
            Cell::Text(v.to_string())
        }
        _ => to_cell(ty, v),
    }
}

fn write<C: Handle + ?Sized>(c: &C, file: &State, plan: &Plan) -> Result<()> {
    let now = crate::util::now_iso();
    for (ki, id) in plan.delete.iter().rev() {
        let k = &KINDS[*ki];
        let key: Vec<&str> = k.fields[..k.key].iter().map(|f| f.col).collect();
        crate::db::state::delete(c, k.table, &key, id).map_err(stored)?;
    }
    for (ki, k) in KINDS.iter().enumerate() {
        for (_, id) in plan.create.iter().filter(|(i, _)| *i == ki) {
            let Some(obj) = file.kinds[ki].get(id) else {
                continue;
            };
            insert(c, k, obj, &now)?;
        }
        for ch in plan.update.iter().filter(|c| c.kind == ki) {
            let mut cols: Vec<&str> = Vec::new();
            let mut vals: Vec<Cell> = Vec::new();
            for (i, _, after) in &ch.fields {
                cols.push(k.fields[*i].col);
                vals.push(cell_of(k.fields[*i].ty, after));
            }
            if let Some(d) = duration_at(k) {
                if let Some((_, _, after)) = ch.fields.iter().find(|(i, _, _)| *i == d) {
                    cols.push("budget_reset_at");
                    vals.push(reset_of(Some(after)));
                }
            }
            cols.push("updated_at");
            vals.push(Cell::Text(now.clone()));
            let key: Vec<&str> = k.fields[..k.key].iter().map(|f| f.col).collect();
            crate::db::state::update(c, k.table, &cols, &vals, &key, &ch.id).map_err(stored)?;
        }
    }
    Ok(())
}

fn insert<C: Handle + ?Sized>(c: &C, k: &Kind, obj: &Obj, now: &str) -> Result<()> {
    let mut cols = k.cols();
    let mut vals: Vec<Cell> = k
        .fields
        .iter()
        .zip(obj)
        .map(|(f, v)| match (f.ty, v) {
            (Ty::Created, None) => Cell::Text(now.to_string()),
            // Whoever applies a file is a proxy admin (`http::state`, or the CLI's operator).
            (Ty::Rank, None) => Cell::Int(3),
            (_, None) => cell_of(f.ty, &default_of(f.ty)),
            (_, Some(v)) => cell_of(f.ty, v),
        })
        .collect();
    if k.resets {
        cols.push("budget_reset_at");
        vals.push(reset_of(duration_at(k).and_then(|d| obj[d].as_ref())));
    }
    cols.push("updated_at");
    vals.push(Cell::Text(now.to_string()));
    crate::db::state::insert(c, k.table, &cols, &vals).map_err(stored)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "litegate_state: 1\nusers:\n- user_id: u\n  user_role: internal_user\n";

    #[test]
    fn left_out_fields_take_defaults_and_kept_ones_are_not_compared() {
        let file = parse(FILE).unwrap();
        let ui = super::super::kinds::index_of("users").unwrap();
        let u = &file.kinds[ui][&vec!["u".to_string()]];
        let k = &KINDS[ui];
        for (f, v) in k.fields.iter().zip(u) {
            match f.ty {
                Ty::Created | Ty::CreatedBy | Ty::Rank => assert_eq!(v, &None, "{}", f.name),
                Ty::List => assert_eq!(v, &Some(json!([])), "{}", f.name),
                _ => assert!(v.is_some(), "{}", f.name),
            }
        }
        // The store holds the same user with a created_at: nothing to change.
        let mut store = file.clone();
        let at = k.fields.iter().position(|f| f.ty == Ty::Created).unwrap();
        let stored = store.kinds[ui].get_mut(&vec!["u".to_string()]).unwrap();
        stored[at] = Some(json!("2026-01-01T00:00:00.000Z"));
        assert!(diff(&file, &store, true).is_empty());
        // A changed role is one update of one field; prune deletes what the file leaves out.
        let other = parse(&FILE.replace("internal_user", "proxy_admin")).unwrap();
        let p = diff(&other, &store, false);
        assert_eq!(p.update.len(), 1);
        assert_eq!(p.update[0].fields.len(), 1);
        let empty = parse("litegate_state: 1\n").unwrap();
        assert!(diff(&empty, &store, false).is_empty());
        assert_eq!(diff(&empty, &store, true).delete.len(), 1);
    }

    #[test]
    fn bad_files_name_the_field() {
        let param = |text: &str| match parse(text) {
            Err(Error::BadRequest { param, .. }) => param.unwrap_or_default(),
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(param("users: []\n"), "litegate_state");
        assert_eq!(param(&FILE.replace("internal_user", "root")), "user_role");
        assert_eq!(param(&format!("{FILE}  spend: 3\n")), "spend");
        assert_eq!(
            param(&format!("{FILE}- user_id: u\n  user_role: internal_user\n")),
            "user_id"
        );
        assert_eq!(param(&format!("{FILE}  max_budget: -1\n")), "max_budget");
        assert_eq!(
            param(&format!("{FILE}  password_hash: hunter2\n")),
            "password_hash"
        );
    }
}
