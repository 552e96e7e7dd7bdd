//! The building blocks of the config file's typed sections. Owns `Field<T>` (one setting, kept
//! as written until it is read as its type, after `os.environ/NAME` is resolved), `Shaped<T>`
//! (a section or list item that may be missing or of the wrong shape), the value types with
//! their messages, and `Reader`, which words every error as "FILE: FIELD: what is wrong" and
//! collects the warnings. The sections themselves are in `settings.rs` and `model_list.rs`.
//!
//! Why settings are not plain `f64`/`String` fields: a value may be `os.environ/NAME`, which
//! only becomes a number once the variable is looked up, and serde's own messages ("invalid
//! type: string, expected f64") would not name the file or say what is expected.

use super::env::Env;
use super::ConfigError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use std::marker::PhantomData;

pub(super) type Yaml = serde_yaml_ng::Value;
pub(super) type Mapping = serde_yaml_ng::Mapping;

/// Reads values for one file: knows its name (for messages) and the environment (for
/// `os.environ/NAME`), and keeps the warnings in the order they arose.
pub(super) struct Reader<'a> {
    pub file: &'a str,
    env: &'a Env,
    pub warnings: Vec<String>,
    /// Models priced by neither the file nor the price table (each once; logged at start,
    /// apart from the file's warnings).
    pub unpriced: Vec<String>,
    /// `vertex_ai` credentials read so far, by identity: deployments sharing credentials
    /// share one account and its cached token.
    pub google_accounts:
        std::collections::HashMap<String, std::sync::Arc<crate::provider::google::ServiceAccount>>,
}

impl<'a> Reader<'a> {
    pub fn new(file: &'a str, env: &'a Env) -> Self {
        Reader {
            file,
            env,
            warnings: Vec::new(),
            unpriced: Vec::new(),
            google_accounts: Default::default(),
        }
    }

    /// "FILE: FIELD: WHAT".
    pub fn error(&self, field: &str, what: impl std::fmt::Display) -> ConfigError {
        ConfigError(format!("{}: {field}: {what}", self.file))
    }

    /// A warning about the file ("FILE: " is prefixed).
    pub fn warn(&mut self, msg: impl std::fmt::Display) {
        self.warnings.push(format!("{}: {msg}", self.file));
    }

    /// A key litegate does not use (`section.key`).
    pub fn unknown(&mut self, section: &str, key: &str) {
        self.warn(format_args!(
            "{section}.{key} is not used by litegate; ignored"
        ));
    }

    /// An environment variable of the snapshot (a provider's key or `AZURE_API_VERSION`).
    pub fn var(&self, name: &str) -> Option<&'a str> {
        self.env.get(name)
    }

    /// Resolves an `os.environ/NAME` value; any other value is returned as written.
    pub fn resolve(&self, v: &Yaml, field: &str) -> Result<Yaml, ConfigError> {
        if let Yaml::String(s) = v {
            if let Some(name) = s.strip_prefix("os.environ/") {
                return match self.env.get(name) {
                    Some(x) => Ok(Yaml::String(x.to_string())),
                    None => Err(self.error(
                        field,
                        format_args!("environment variable {name} is not set"),
                    )),
                };
            }
        }
        Ok(v.clone())
    }

    /// Every key of `m` as a string (`key_field` names the mapping in the error), with its
    /// value.
    pub fn entries<'m>(
        &self,
        m: &'m Mapping,
        key_field: &str,
    ) -> Result<Vec<(String, &'m Yaml)>, ConfigError> {
        m.iter()
            .map(|(k, v)| Ok((key_text(k).ok_or_else(|| self.error(key_field, STRING))?, v)))
            .collect()
    }
}

const STRING: &str = "expected a string";

/// A scalar as text (a number or boolean as written), as LiteLLM reads names.
fn key_text(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A type a setting can be read as, with what it says when the value is not one.
pub(super) trait FromYaml: Sized {
    fn from_yaml(v: &Yaml, r: &Reader, field: &str) -> Result<Self, ConfigError>;
}

impl FromYaml for String {
    fn from_yaml(v: &Yaml, r: &Reader, field: &str) -> Result<Self, ConfigError> {
        key_text(v).ok_or_else(|| r.error(field, STRING))
    }
}

impl FromYaml for bool {
    fn from_yaml(v: &Yaml, r: &Reader, field: &str) -> Result<Self, ConfigError> {
        match v {
            Yaml::Bool(b) => Ok(*b),
            Yaml::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
            Yaml::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
            _ => Err(r.error(field, "expected true or false")),
        }
    }
}

/// The value as written, for sections litegate passes on whole (e.g. to `UserDefaults`).
impl FromYaml for Yaml {
    fn from_yaml(v: &Yaml, _: &Reader, _: &str) -> Result<Self, ConfigError> {
        Ok(v.clone())
    }
}

/// A finite number ≥ 0 (a cost, a size); a numeric string counts.
#[derive(Debug, Clone, Copy)]
pub(super) struct NonNegative(pub f64);

impl FromYaml for NonNegative {
    fn from_yaml(v: &Yaml, r: &Reader, field: &str) -> Result<Self, ConfigError> {
        let n = match v {
            Yaml::Number(n) => n.as_f64(),
            Yaml::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        match n {
            Some(x) if x.is_finite() && x >= 0.0 => Ok(NonNegative(x)),
            _ => Err(r.error(field, "expected a non-negative number")),
        }
    }
}

/// A number > 0 (a timeout, a size limit).
#[derive(Debug, Clone, Copy)]
pub(super) struct Positive(pub f64);

impl FromYaml for Positive {
    fn from_yaml(v: &Yaml, r: &Reader, field: &str) -> Result<Self, ConfigError> {
        match NonNegative::from_yaml(v, r, field)? {
            NonNegative(x) if x > 0.0 => Ok(Positive(x)),
            _ => Err(r.error(field, "must be positive")),
        }
    }
}

/// A whole number ≥ 0 (a rate, a pool size); a numeric string counts.
#[derive(Debug, Clone, Copy)]
pub(super) struct Count(pub i64);

impl FromYaml for Count {
    fn from_yaml(v: &Yaml, r: &Reader, field: &str) -> Result<Self, ConfigError> {
        let n = match v {
            Yaml::Number(n) => n.as_i64(),
            Yaml::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        match n {
            Some(x) if x >= 0 => Ok(Count(x)),
            _ => Err(r.error(field, "expected a non-negative integer")),
        }
    }
}

/// A list of names (`access_groups`).
pub(super) struct Names(pub Vec<String>);

impl FromYaml for Names {
    fn from_yaml(v: &Yaml, r: &Reader, field: &str) -> Result<Self, ConfigError> {
        let Yaml::Sequence(items) = v else {
            return Err(r.error(field, "expected a list of names"));
        };
        items
            .iter()
            .map(|x| String::from_yaml(x, r, field))
            .collect::<Result<_, _>>()
            .map(Names)
    }
}

/// One setting of a section, kept as written (`null` included) until it is read.
pub(super) struct Field<T> {
    raw: Option<Yaml>,
    _as: PhantomData<fn() -> T>,
}

impl<T> Default for Field<T> {
    fn default() -> Self {
        Field {
            raw: None,
            _as: PhantomData,
        }
    }
}

impl<'de, T> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Field {
            raw: Some(Yaml::deserialize(d)?),
            _as: PhantomData,
        })
    }
}

impl<T: FromYaml> Field<T> {
    /// The value as written (no `os.environ/`); `None` when the key is absent.
    pub fn read(&self, r: &Reader, field: &str) -> Result<Option<T>, ConfigError> {
        self.raw
            .as_ref()
            .map(|v| T::from_yaml(v, r, field))
            .transpose()
    }

    /// The value after `os.environ/NAME` is resolved; `None` when the key is absent.
    pub fn resolve(&self, r: &Reader, field: &str) -> Result<Option<T>, ConfigError> {
        self.raw
            .as_ref()
            .map(|v| T::from_yaml(&r.resolve(v, field)?, r, field))
            .transpose()
    }
}

/// A section or list item: deserialized as `T` when it has `T`'s shape. A wrong shape is a
/// value, not a serde error, so that the caller words it for its own field (or, for
/// `litellm_settings`, ignores it as before).
#[derive(Default)]
pub(super) enum Shaped<T> {
    /// Absent or `null`.
    #[default]
    Missing,
    Given(T),
    /// A mapping with a key that is not a scalar (`[a, b]: 1`, `~: 1`).
    BadKey,
    /// Not of `T`'s shape (a list where a mapping belongs, ...).
    Wrong,
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Shaped<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = match Yaml::deserialize(d)? {
            Yaml::Null => return Ok(Shaped::Missing),
            // Scalar keys become text (`1: x` has the key "1", as before), so that `T`'s
            // unknown-key capture holds strings only and is warned about by name.
            Yaml::Mapping(m) => {
                let mut text = Mapping::with_capacity(m.len());
                for (k, v) in m {
                    let Some(k) = key_text(&k) else {
                        return Ok(Shaped::BadKey);
                    };
                    text.insert(Yaml::String(k), v);
                }
                Yaml::Mapping(text)
            }
            v => v,
        };
        Ok(T::deserialize(v).map_or(Shaped::Wrong, Shaped::Given))
    }
}

impl<T> Shaped<T> {
    /// The value if given. A bad key is "`key_field`: expected a string"; a wrong shape is
    /// `wrong` ("FIELD: expected a mapping", ...), or, when `wrong` is `None`, as if missing.
    pub fn get(
        self,
        r: &Reader,
        key_field: &str,
        wrong: Option<(&str, &str)>,
    ) -> Result<Option<T>, ConfigError> {
        match self {
            Shaped::Missing => Ok(None),
            Shaped::Given(t) => Ok(Some(t)),
            Shaped::BadKey => Err(r.error(key_field, STRING)),
            Shaped::Wrong => match wrong {
                Some((field, what)) => Err(r.error(field, what)),
                None => Ok(None),
            },
        }
    }
}

/// Refuses a custom tag (`!name value`) anywhere in the document: LiteLLM's loader
/// (`yaml.safe_load`) refuses them too, and no setting means anything tagged. (The standard
/// tags, `!!str 5` and the like, are resolved by the parser and never seen here.)
pub(super) fn reject_tags(v: &Yaml, path: &str, r: &Reader) -> Result<(), ConfigError> {
    let at = |sub: String| {
        if path.is_empty() {
            sub
        } else if sub.starts_with('[') {
            format!("{path}{sub}")
        } else {
            format!("{path}.{sub}")
        }
    };
    match v {
        Yaml::Tagged(t) => Err(r.error(
            if path.is_empty() { "(top level)" } else { path },
            format_args!("the YAML tag {} is not supported", t.tag),
        )),
        Yaml::Sequence(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, x)| reject_tags(x, &at(format!("[{i}]")), r)),
        Yaml::Mapping(m) => m.iter().try_for_each(|(k, x)| {
            reject_tags(k, path, r)?;
            reject_tags(x, &at(key_text(k).unwrap_or_default()), r)
        }),
        _ => Ok(()),
    }
}

/// A YAML value as JSON (for `model_info` and `default_internal_user_params`).
pub(super) fn to_json(v: &Yaml) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}
