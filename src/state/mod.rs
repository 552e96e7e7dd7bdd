//! State as a file (issue 16 item 4): the store's configuration — organizations, budgets, users,
//! teams, memberships, keys, end users and database models — as one stable YAML document (`export`), and the way back
//! (`apply`): the file is read and checked whole, compared with the store into a plan (create /
//! update / delete per object), and the plan is written in one transaction.
//!
//! - What is in the file is the table of kinds (`kinds.rs`): fields in a fixed order, objects
//!   sorted by id, nulls left out, no timestamp that changes by itself (`created_at` is data;
//!   `updated_at`, spend and budget reset times are not exported).
//! - Never a raw key: keys are their token (the SHA-256 of the raw key), so the same raw keys
//!   work wherever the file is applied. UI users' passwords travel as their argon2id hash;
//!   database models' `litellm_params` as stored, encrypted with the salt key (`models.rs`).
//! - Spend is usage, not configuration: never exported, never written by `apply` (a created
//!   object starts at 0, an updated one keeps its spend and its budget period unless its
//!   `budget_duration` changes).
//! - A field left out of an object takes its default (null, false, 0, `[]`, `{}`): the file
//!   says the whole object. `created_at` / `created_by` and the authority ranks left out keep
//!   what is stored (a created object: now, nobody, rank 3 — the proxy admin who applies).
//! - Objects in the store but not in the file are deleted only with `prune`.
//!
//! Not here: SQL (`db::state`), who may call it (`http::state`), the command line (`cli.rs`).

mod check;
pub mod cli;
pub mod kinds;
mod models;
mod plan;

pub use kinds::{Kind, Ty, KINDS};
pub use plan::{apply, Outcome, Plan};

use crate::db::handle::Handle;
use crate::db::state::{Cell, Class};
use crate::error::{Error, Result};
use serde_json::Value;
use std::collections::BTreeMap;

/// The version written as `litegate_state:` and the only one read.
pub const VERSION: i64 = 1;

/// One object's fields, in its kind's order; `None` = left out of the file (only `keeps`
/// fields; the others were given their default when read).
pub type Obj = Vec<Option<Value>>;

/// Objects of every kind by id (index in `KINDS`), sorted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    pub kinds: Vec<BTreeMap<Vec<String>, Obj>>,
}

impl State {
    fn empty() -> State {
        State {
            kinds: KINDS.iter().map(|_| BTreeMap::new()).collect(),
        }
    }
}

/// How a field's column is read.
fn class(ty: Ty) -> Class {
    match ty {
        Ty::Money => Class::Real,
        Ty::Limit | Ty::Flag | Ty::Rank => Class::Int,
        _ => Class::Text,
    }
}

/// A field's value when a file leaves it out (and for a created object's `keeps` fields).
pub fn default_of(ty: Ty) -> Value {
    match ty {
        Ty::Flag => Value::Bool(false),
        Ty::List => Value::Array(vec![]),
        Ty::Obj => Value::Object(Default::default()),
        _ => Value::Null,
    }
}

/// A stored cell as the file's value.
fn from_cell(ty: Ty, c: Cell) -> Value {
    match (ty, c) {
        (_, Cell::Null) => Value::Null,
        (Ty::Flag, Cell::Int(i)) => Value::Bool(i != 0),
        (_, Cell::Int(i)) => Value::from(i),
        (_, Cell::Real(x)) => Value::from(x),
        (Ty::List | Ty::OptList | Ty::Obj | Ty::OptObj | Ty::Sealed, Cell::Text(s)) => {
            serde_json::from_str(&s).unwrap_or(Value::String(s))
        }
        (_, Cell::Text(s)) => Value::String(s),
    }
}

/// A (checked) value as the cell written.
fn to_cell(ty: Ty, v: &Value) -> Cell {
    match (ty, v) {
        (_, Value::Null) => Cell::Null,
        (_, Value::Bool(b)) => Cell::Int(*b as i64),
        (Ty::Money, Value::Number(n)) => Cell::Real(n.as_f64().unwrap_or(0.0)),
        (_, Value::Number(n)) => n
            .as_i64()
            .map(Cell::Int)
            .unwrap_or(Cell::Real(n.as_f64().unwrap_or(0.0))),
        (_, Value::String(s)) => Cell::Text(s.clone()),
        (_, other) => Cell::Text(other.to_string()),
    }
}

/// The whole store's state (one read transaction of the caller's).
pub fn load<C: Handle + ?Sized>(c: &C) -> Result<State> {
    let mut st = State::empty();
    for (i, k) in KINDS.iter().enumerate() {
        let classes: Vec<Class> = k.fields.iter().map(|f| class(f.ty)).collect();
        let rows = crate::db::state::rows(c, k.table, &k.cols(), &classes)?;
        for row in rows {
            let obj: Obj = k
                .fields
                .iter()
                .zip(row)
                .map(|(f, c)| Some(from_cell(f.ty, c)))
                .collect();
            st.kinds[i].insert(id_of(k, &obj), obj);
        }
    }
    Ok(st)
}

/// An object's id: its first `key` fields as text.
fn id_of(k: &Kind, obj: &Obj) -> Vec<String> {
    obj[..k.key]
        .iter()
        .map(|v| match v {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        })
        .collect()
}

/// An id as the plan and the error messages show it (`team/user` for a membership).
pub fn show_id(id: &[String]) -> String {
    id.join("/")
}

/// The state as the YAML document `export` writes: `litegate_state: 1`, then one section per
/// kind in `KINDS` order, each a list of objects sorted by id with fields in their fixed
/// order and nulls left out.
pub fn to_yaml(st: &State) -> Result<String> {
    use serde_yaml_ng::{Mapping, Value as Y};
    let mut doc = Mapping::new();
    doc.insert(Y::from("litegate_state"), Y::from(VERSION));
    for (i, k) in KINDS.iter().enumerate() {
        let mut list = Vec::with_capacity(st.kinds[i].len());
        for obj in st.kinds[i].values() {
            let mut m = Mapping::new();
            for (f, v) in k.fields.iter().zip(obj) {
                match v {
                    None | Some(Value::Null) => {}
                    Some(v) => {
                        let y = serde_yaml_ng::to_value(v)
                            .map_err(|e| Error::internal(format!("state yaml: {e}")))?;
                        m.insert(Y::from(f.name), y);
                    }
                }
            }
            list.push(Y::Mapping(m));
        }
        doc.insert(Y::from(k.section), Y::Sequence(list));
    }
    serde_yaml_ng::to_string(&Y::Mapping(doc))
        .map_err(|e| Error::internal(format!("state yaml: {e}")))
}

/// A state file (YAML, or JSON, which YAML reads too) read and its fields checked by type:
/// 400 naming the section, the object and the field. References, uniqueness and model lists
/// are checked against the store in `check::whole`.
pub fn parse(text: &str) -> Result<State> {
    let doc: Value = serde_yaml_ng::from_str(text)
        .map_err(|e| Error::bad_param("state", format!("the state file is not valid YAML: {e}")))?;
    let Value::Object(top) = doc else {
        return Err(Error::bad_param(
            "state",
            "the state file must be a mapping with `litegate_state: 1` and one list per kind",
        ));
    };
    match top.get("litegate_state") {
        Some(v) if v.as_i64() == Some(VERSION) => {}
        _ => {
            return Err(Error::bad_param(
                "litegate_state",
                format!("the state file must say `litegate_state: {VERSION}`"),
            ))
        }
    }
    let mut st = State::empty();
    for (name, v) in &top {
        if name == "litegate_state" {
            continue;
        }
        let Some(ki) = kinds::index_of(name) else {
            let known: Vec<&str> = KINDS.iter().map(|k| k.section).collect();
            return Err(Error::bad_param(
                name,
                format!(
                    "unknown section `{name}` (known: litegate_state, {})",
                    known.join(", ")
                ),
            ));
        };
        let k = &KINDS[ki];
        let items = match v {
            Value::Null => continue,
            Value::Array(a) => a,
            _ => {
                return Err(Error::bad_param(
                    name,
                    format!("`{name}` must be a list of objects"),
                ))
            }
        };
        for (n, item) in items.iter().enumerate() {
            let obj = check::object(k, n, item)?;
            let id = id_of(k, &obj);
            if st.kinds[ki].insert(id.clone(), obj).is_some() {
                return Err(Error::bad_param(
                    k.fields[0].name,
                    format!("{name}: {} {} is listed twice", k.noun, show_id(&id)),
                ));
            }
        }
    }
    Ok(st)
}
