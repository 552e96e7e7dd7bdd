//! The spend journaled but not yet applied (issue 17), per budget holder: added when a call's
//! record is journaled, removed by the applier when it is committed (under the hot
//! connection's lock, as the key check reads it: a reader sees the store and the overlay
//! either both before or both after an applied batch). Holders are named as
//! `call::budget::spend_ids` names them: the holder's id, or a membership's team or
//! organization and its user.

use super::key_check::KeyRow;
use super::spend::SpendRecord;
use crate::hierarchy::Level;
use std::collections::HashMap;
use std::sync::Mutex;

/// Unapplied spend per level (`Level::index`), by holder key (`a`, or `a\0b` for members).
#[derive(Default)]
pub struct Overlay {
    by_level: Mutex<[HashMap<String, f64>; Level::COUNT]>,
}

fn key(a: &str, b: &str) -> String {
    if b.is_empty() {
        a.to_string()
    } else {
        format!("{a}\0{b}")
    }
}

/// The holders a record's spend goes to (as `spend::record` adds it), with the amount.
fn holders(r: &SpendRecord, mut f: impl FnMut(Level, String)) {
    if r.spend <= 0.0 {
        return;
    }
    if let Some(t) = &r.token {
        f(Level::Key, key(t, ""));
    }
    if let Some(t) = &r.team_id {
        f(Level::Team, key(t, ""));
    }
    if let Some(o) = &r.organization_id {
        f(Level::Org, key(o, ""));
    }
    if let Some(u) = &r.user_id {
        f(Level::User, key(u, ""));
        if let Some(t) = &r.team_id {
            f(Level::TeamMember, key(t, u));
        }
        if let Some(o) = &r.organization_id {
            f(Level::OrgMember, key(o, u));
        }
    }
    if let Some(e) = &r.end_user {
        f(Level::EndUser, key(e, ""));
    }
}

impl Overlay {
    fn lock(&self) -> std::sync::MutexGuard<'_, [HashMap<String, f64>; Level::COUNT]> {
        self.by_level.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add(&self, r: &SpendRecord) {
        let mut m = self.lock();
        holders(r, |l, k| *m[l.index()].entry(k).or_insert(0.0) += r.spend);
    }

    /// Once applied: the records' spend is in the store now.
    pub fn remove<'a>(&self, recs: impl Iterator<Item = &'a SpendRecord>) {
        let mut m = self.lock();
        for r in recs {
            holders(r, |l, k| {
                let level = &mut m[l.index()];
                if let Some(v) = level.get_mut(&k) {
                    *v -= r.spend;
                    if *v <= 1e-12 {
                        level.remove(&k);
                    }
                }
            });
        }
    }

    /// The unapplied spend of one holder.
    pub fn get(&self, level: Level, a: &str, b: &str) -> f64 {
        let m = self.lock();
        let level = &m[level.index()];
        if level.is_empty() {
            return 0.0;
        }
        level.get(&key(a, b)).copied().unwrap_or(0.0)
    }

    /// Adds the unapplied spend to a loaded key's figures (key, team, org, user, memberships).
    pub fn add_to(&self, k: &mut KeyRow) {
        let m = self.lock();
        if m.iter().all(HashMap::is_empty) {
            return;
        }
        let get = |l: Level, a: &str, b: &str| {
            let level = &m[l.index()];
            if level.is_empty() {
                0.0
            } else {
                level.get(&key(a, b)).copied().unwrap_or(0.0)
            }
        };
        k.spend += get(Level::Key, &k.token, "");
        if let Some(t) = &mut k.team {
            t.spend += get(Level::Team, &t.id, "");
        }
        if let Some(o) = &mut k.org {
            o.spend += get(Level::Org, &o.id, "");
        }
        if let Some(u) = &mut k.user {
            u.spend += get(Level::User, &u.id, "");
        }
        let user = k.user_id.as_deref().unwrap_or_default();
        if let (Some(m), Some(t)) = (&mut k.team_member, &k.team_id) {
            m.spend += get(Level::TeamMember, t, user);
        }
        if let (Some(m), Some(o)) = (&mut k.org_member, &k.org) {
            m.spend += get(Level::OrgMember, &o.id, user);
        }
    }
}
