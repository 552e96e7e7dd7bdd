//! Integration tests: each test starts the real `litegate` binary on 127.0.0.1:0 against its
//! own temp database and speaks HTTP to it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access;
mod access_prop;
mod anthropic;
mod authority;
mod authority_prop;
mod authority_views;
mod bedrock;
mod bedrock_fake;
mod budgets;
mod common;
mod config_file;
mod forwarding;
mod google;
mod google_fake;
mod http_hardening;
mod keys;
mod login_hardening;
mod messages;
mod metrics;
mod ops;
mod organizations;
mod patch_rule;
mod prices;
mod providers;
mod sdk;
mod sdk_anthropic;
mod server;
mod slow_clients;
mod store_hardening;
mod teams;
mod ui;
mod upstream;
mod upstream_hardening;
mod users;
