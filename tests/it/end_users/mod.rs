//! End users, LiteLLM's customers (issue 15 item 4): the `/end_user/*` and `/customer/*` API
//! (`crud.rs`) and what a model call's `user` field does (`calls.rs`).

mod calls;
mod crud;
