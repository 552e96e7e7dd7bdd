//! Access: what an identity may do. The resolver (`chain`: which models a key, team, org or
//! user may call, along org → team → key), the proxy's catalog of models and special names
//! (`catalog`), the write-time rules for which model lists may be stored where (`grant`), who
//! may read or change which stored resource (`policy`), and the rules that keep authority
//! from growing — key reach and ranks (`authority`).
//!
//! Not here: who the caller is (`auth`), and the wording of refusals other than model access
//! (`error.rs`). Nothing here caches: each answer reads the rows as stored now.

pub mod authority;
pub mod catalog;
pub mod chain;
pub mod grant;
pub mod policy;
pub mod registry;

pub use catalog::{
    is_special, wildcard_match, Catalog, ModelViews, Scope, ALL_ORG_MODELS, ALL_PROXY_MODELS,
    ALL_TEAM_MODELS, NO_DEFAULT_MODELS, STAR,
};
pub use chain::{exceeding, expand, unrestricted, Chain, Level, Models};
