//! A JSON request body as typed accessors whose errors name the field (400): `opt_str`,
//! `opt_budget`, `opt_limit`, `opt_list`, `opt_duration`, … Every string handed out goes
//! through `input::check`. Used by the management handlers (as `http::Body`) and by the
//! config's `default_internal_user_params`; the meaning of fields is their reader's.

use super::check;
use crate::error::{Error, Result};
use serde_json::{Map, Value};

/// A JSON request body with typed accessors whose errors name the field (400).
#[derive(Debug, Clone)]
pub struct Body(pub Map<String, Value>);

fn type_err(field: &str, want: &str) -> Error {
    Error::bad_param(field, format!("`{field}` must be {want}"))
}

impl Body {
    pub fn has(&self, f: &str) -> bool {
        self.0.contains_key(f)
    }
    /// Present and not null.
    pub fn given(&self, f: &str) -> bool {
        self.0.get(f).is_some_and(|v| !v.is_null())
    }
    pub fn raw(&self, f: &str) -> Option<&Value> {
        self.0.get(f).filter(|v| !v.is_null())
    }
    pub fn opt_str(&self, f: &str) -> Result<Option<String>> {
        match self.0.get(f) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => check(f, s).map(|_| Some(s.clone())),
            Some(_) => Err(type_err(f, "a string")),
        }
    }
    pub fn req_str(&self, f: &str) -> Result<String> {
        match self.opt_str(f)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(Error::bad_param(f, format!("`{f}` is required"))),
        }
    }
    pub fn opt_bool(&self, f: &str) -> Result<Option<bool>> {
        match self.0.get(f) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(type_err(f, "true or false")),
        }
    }
    /// A budget: a finite number ≥ 0.
    pub fn opt_budget(&self, f: &str) -> Result<Option<f64>> {
        match self.0.get(f) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(x) if x.is_finite() && x >= 0.0 => Ok(Some(x)),
                _ => Err(type_err(f, "a finite number ≥ 0")),
            },
            Some(_) => Err(type_err(f, "a finite number ≥ 0")),
        }
    }
    /// A limit: an integer ≥ 0.
    pub fn opt_limit(&self, f: &str) -> Result<Option<i64>> {
        match self.0.get(f) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(x) if x >= 0 => Ok(Some(x)),
                _ => Err(type_err(f, "an integer ≥ 0")),
            },
            Some(_) => Err(type_err(f, "an integer ≥ 0")),
        }
    }
    pub fn opt_u64(&self, f: &str) -> Result<Option<u64>> {
        match self.0.get(f) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| type_err(f, "a positive integer")),
            Some(Value::String(s)) => s
                .parse()
                .map(Some)
                .map_err(|_| type_err(f, "a positive integer")),
            Some(_) => Err(type_err(f, "a positive integer")),
        }
    }
    /// A list of strings (model lists, id lists).
    pub fn opt_list(&self, f: &str) -> Result<Option<Vec<String>>> {
        match self.0.get(f) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| match v {
                    Value::String(s) => check(f, s).map(|_| s.clone()),
                    _ => Err(type_err(f, "a list of strings")),
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Some(_) => Err(type_err(f, "a list of strings")),
        }
    }
    pub fn opt_obj(&self, f: &str) -> Result<Option<Map<String, Value>>> {
        match self.0.get(f) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => {
                // Names are stored and shown as identifiers; so are an `aliases` map's models.
                for (k, v) in m {
                    check(f, k)?;
                    if let (Value::String(v), "aliases" | "model_aliases") = (v, f) {
                        check(f, v)?;
                    }
                }
                Ok(Some(m.clone()))
            }
            Some(_) => Err(type_err(f, "a JSON object")),
        }
    }
    /// A duration like `30s`, `1h`, `7d`; returns (text, seconds).
    pub fn opt_duration(&self, f: &str) -> Result<Option<(String, i64)>> {
        match self.opt_str(f)? {
            None => Ok(None),
            Some(s) => crate::util::parse_duration(&s)
                .map(|secs| Some((s.clone(), secs)))
                .ok_or_else(|| {
                    Error::bad_param(
                        f,
                        format!("`{f}` must be a duration like 30s, 15m, 1h, 7d or 1mo; got '{s}'"),
                    )
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_accessors_name_the_field() {
        let b = Body(
            serde_json::json!({"max_budget": -1, "models": ["a", 1], "x": "s"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        let e = b.opt_budget("max_budget").expect_err("neg");
        assert_eq!(e.body()["error"]["param"], "max_budget");
        assert!(b.opt_list("models").is_err());
        assert!(b.opt_budget("x").is_err());
        assert_eq!(b.opt_str("x").expect("ok").as_deref(), Some("s"));
        assert_eq!(b.opt_str("missing").expect("ok"), None);
    }
}
