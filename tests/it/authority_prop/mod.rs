//! Issue 11, item 2: the authority invariant, tested as a property against the real server.
//!
//! *No sequence of API calls lets a caller obtain a credential, or make a change, with more
//! authority than the caller itself has.*
//!
//! A proxy admin (the master key) sets up two organizations, five teams, limits and blocks.
//! Then random sequences of management calls are made by the non-admin actors — an org admin
//! (`oa`), a team admin (`ta`), a member (`mu`) and a viewer (`vw`) — each through any raw key
//! it holds (its own, or any key a call handed it). The checker then asks:
//! - of every key an actor holds that still authenticates: can it do a proxy-admin thing, an
//!   org-admin or team-admin thing the actor cannot do now, or call a model the actor cannot
//!   reach now (its own personal models, its teams', its orgs' as org admin)?
//! - could an actor log in (web UI) as another user with a password it chose?
//! - did any limit the proxy admin set (org models and budgets, team models, budgets, rate
//!   limits, a team block, a member budget, a key's budget, expiry and block) get looser, any
//!   global role change, any membership appear where no actor had authority?
//!
//! `checker_reports_planted_escalations` shows the checker is not vacuous: the escalations
//! issue 11 names, done with the master key instead of by an actor, are each reported.

use crate::common::*;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

pub(super) const ACTORS: [&str; 4] = ["oa", "ta", "mu", "vw"];
/// Users an operation may name: the actors, admins and an outsider (targets), a sentinel
/// member (`s1`, used by the probes and never named by operations), and users that do not
/// exist yet.
pub(super) const USERS: [&str; 9] = ["oa", "ta", "mu", "vw", "pa", "pv", "out", "new1", "new2"];
pub(super) const TEAMS: [&str; 5] = ["T1", "T2", "T3", "TB", "TN"];
pub(super) const ORGS: [&str; 2] = ["O1", "O2"];
pub(super) const MODELS: [&str; 4] = ["A", "B", "C", "D"];

mod checker;
mod ops;
mod property;
mod stage;
use checker::*;
use ops::*;
use stage::*;
