//! The importer's two value shapes: reading one LiteLLM column out of a `to_jsonb` row
//! (`get_*`, each tolerant of the types LiteLLM versions used for it), and a litegate row to
//! write (`Out`: table, conflict key, columns with values). No SQL here (`write.rs`).

use super::source::Rec;
use serde_json::{Map, Value};

/// One value for litegate's store, as both engines bind it.
#[derive(Debug, Clone, PartialEq)]
pub enum V {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl V {
    pub fn arg(&self) -> crate::db::sql::Arg<'_> {
        use crate::db::sql::Arg;
        match self {
            V::Null => Arg::Null,
            V::Int(i) => Arg::Int(*i),
            V::Real(f) => Arg::Real(*f),
            V::Text(s) => Arg::Text(s),
        }
    }
    pub fn text(s: Option<String>) -> V {
        s.map_or(V::Null, V::Text)
    }
    pub fn real(f: Option<f64>) -> V {
        f.map_or(V::Null, V::Real)
    }
    pub fn int(i: Option<i64>) -> V {
        i.map_or(V::Null, V::Int)
    }
    pub fn as_text(&self) -> Option<&str> {
        match self {
            V::Text(s) => Some(s),
            _ => None,
        }
    }
}

/// A litegate row to insert, or to update where its `key` exists (a second import run).
#[derive(Debug, Clone, PartialEq)]
pub struct Out {
    pub table: &'static str,
    /// The conflict target (primary key or unique columns).
    pub key: &'static [&'static str],
    pub cols: Vec<(&'static str, V)>,
    /// Columns set on insert only: an update keeps what litegate has (created_at, and what
    /// litegate owns after the move, e.g. a password set since).
    pub insert_only: &'static [&'static str],
}

impl Out {
    pub fn new(table: &'static str, key: &'static [&'static str]) -> Out {
        Out {
            table,
            key,
            cols: Vec::new(),
            insert_only: &["created_at"],
        }
    }
    pub fn set(mut self, col: &'static str, v: V) -> Out {
        self.cols.push((col, v));
        self
    }
    pub fn get(&self, col: &str) -> Option<&V> {
        self.cols.iter().find(|(c, _)| *c == col).map(|(_, v)| v)
    }
    pub fn put(&mut self, col: &'static str, v: V) {
        match self.cols.iter_mut().find(|(c, _)| *c == col) {
            Some(slot) => slot.1 = v,
            None => self.cols.push((col, v)),
        }
    }
}

/// A text column; empty text counts as absent.
pub fn get_str(r: &Rec, col: &str) -> Option<String> {
    match r.get(col)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub fn get_f64(r: &Rec, col: &str) -> Option<f64> {
    match r.get(col)? {
        Value::Number(n) => n.as_f64().filter(|f| f.is_finite()),
        Value::String(s) => s.trim().parse().ok().filter(|f: &f64| f.is_finite()),
        _ => None,
    }
}

pub fn get_i64(r: &Rec, col: &str) -> Option<i64> {
    match r.get(col)? {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub fn get_bool(r: &Rec, col: &str) -> bool {
    match r.get(col) {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_i64().is_some_and(|i| i != 0),
        Some(Value::String(s)) => matches!(s.as_str(), "true" | "t" | "1"),
        _ => false,
    }
}

/// A `text[]` column (or a JSON list of strings); non-strings and empty strings dropped.
pub fn get_list(r: &Rec, col: &str) -> Vec<String> {
    match r.get(col) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// A JSON object column (`{}` when absent or not an object; a JSON text holding an object
/// is read too).
pub fn get_obj(r: &Rec, col: &str) -> Map<String, Value> {
    match r.get(col) {
        Some(Value::Object(m)) => m.clone(),
        Some(Value::String(s)) => match serde_json::from_str(s) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        },
        _ => Map::new(),
    }
}

/// A `timestamp(3)` (UTC, no zone) as litegate's ISO-8601 text with milliseconds and `Z`.
pub fn get_ts(r: &Rec, col: &str) -> Option<String> {
    let s = get_str(r, col)?;
    crate::util::ms_from_iso(&s).map(crate::util::iso_from_ms)
}

/// A list as litegate stores model lists: a JSON array of strings.
pub fn json_list(v: &[String]) -> V {
    V::Text(Value::from(v.to_vec()).to_string())
}

pub fn json_obj(m: Map<String, Value>) -> V {
    V::Text(Value::Object(m).to_string())
}

/// Whether a value is "set" for the unmapped-field report (not null, empty, false or 0).
pub fn is_set(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(v: Value) -> Rec {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn columns_read_as_litellm_versions_store_them() {
        let r = rec(json!({
            "a": "2025-03-04T05:06:07.8", "b": 12, "c": "12", "d": 1.5e300, "e": ["x", "", 3],
            "f": {"k": 1}, "g": "{\"k\":2}", "h": "", "i": null, "j": true, "k": 7.0
        }));
        assert_eq!(get_ts(&r, "a").as_deref(), Some("2025-03-04T05:06:07.800Z"));
        assert_eq!(get_i64(&r, "b"), Some(12));
        assert_eq!(get_i64(&r, "c"), Some(12));
        assert_eq!(get_i64(&r, "k"), Some(7));
        assert_eq!(get_i64(&r, "d"), None);
        assert_eq!(get_f64(&r, "d"), Some(1.5e300));
        assert_eq!(get_list(&r, "e"), vec!["x".to_string()]);
        assert_eq!(get_obj(&r, "f")["k"], 1);
        assert_eq!(get_obj(&r, "g")["k"], 2);
        assert_eq!(get_str(&r, "h"), None);
        assert_eq!(get_str(&r, "i"), None);
        assert!(get_bool(&r, "j") && !get_bool(&r, "i") && !get_bool(&r, "zz"));
        assert!(get_ts(&r, "h").is_none());
        assert!(is_set(&json!([1])) && !is_set(&json!({})) && !is_set(&json!(0.0)));
    }
}
