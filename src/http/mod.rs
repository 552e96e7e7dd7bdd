//! The HTTP toolkit and the route table: the request model (`request.rs`), replies
//! (`reply.rs`), the table of routes with their guards (`routes.rs`), matching,
//! authentication and the error boundary (`dispatch.rs`), and one module per resource with
//! its handlers. Handlers never see tiny_http; they return `Result<Reply>` and only the
//! dispatcher renders an `Err` (as the API.md §3 envelope). The server loop that reads
//! requests off connections and writes replies is `crate::server`.

pub mod admin;
pub mod budgets;
pub mod dispatch;
pub mod end_users;
pub mod explain;
pub mod health;
pub mod key_fields;
pub mod keys;
mod logsafe;
pub mod members;
pub mod model_admin;
pub mod models;
pub mod organizations;
pub mod patch;
pub mod proxy;
pub mod reply;
pub mod request;
pub mod routes;
pub mod shapes;
pub mod spend;
pub mod state;
pub mod team_permissions;
pub mod teams;
pub mod throttle;
pub mod ui;
mod unsupported;
pub mod users;

/// The string check every `Body` accessor applies (shared with the model call's body).
pub use crate::input as fields;

pub use crate::input::Body;
pub use dispatch::error_reply;
pub use reply::{Reply, StreamBody};
pub use request::{parse_query, Ctx, Req};
