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

/// Calls `f` with the holder key of (`a`, `b`): `a` itself, or `a\0b` written into
/// `scratch` (reused: a lookup allocates nothing, an insert copies the key once; issue 17).
fn with_key<T>(scratch: &mut String, a: &str, b: &str, f: impl FnOnce(&str) -> T) -> T {
    if b.is_empty() {
        f(a)
    } else {
        scratch.clear();
        scratch.push_str(a);
        scratch.push('\0');
        scratch.push_str(b);
        f(scratch)
    }
}

/// The holders a record's spend goes to (as `spend::record` adds it), each as (`a`, `b`).
fn holders(r: &SpendRecord, mut f: impl FnMut(Level, &str, &str)) {
    if r.spend <= 0.0 {
        return;
    }
    if let Some(t) = &r.token {
        f(Level::Key, t, "");
    }
    if let Some(t) = &r.team_id {
        f(Level::Team, t, "");
    }
    if let Some(o) = &r.organization_id {
        f(Level::Org, o, "");
    }
    if let Some(u) = &r.user_id {
        f(Level::User, u, "");
        if let Some(t) = &r.team_id {
            f(Level::TeamMember, t, u);
        }
        if let Some(o) = &r.organization_id {
            f(Level::OrgMember, o, u);
        }
    }
    if let Some(e) = &r.end_user {
        f(Level::EndUser, e, "");
    }
}

impl Overlay {
    fn lock(&self) -> std::sync::MutexGuard<'_, [HashMap<String, f64>; Level::COUNT]> {
        self.by_level.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add(&self, r: &SpendRecord) {
        let mut m = self.lock();
        let mut scratch = String::new();
        holders(r, |l, a, b| {
            with_key(&mut scratch, a, b, |k| {
                let level = &mut m[l.index()];
                match level.get_mut(k) {
                    Some(v) => *v += r.spend,
                    None => {
                        level.insert(k.to_owned(), r.spend);
                    }
                }
            })
        });
    }

    /// Once applied: the records' spend is in the store now.
    pub fn remove<'a>(&self, recs: impl Iterator<Item = &'a SpendRecord>) {
        let mut m = self.lock();
        let mut scratch = String::new();
        for r in recs {
            holders(r, |l, a, b| {
                with_key(&mut scratch, a, b, |k| {
                    let level = &mut m[l.index()];
                    if let Some(v) = level.get_mut(k) {
                        *v -= r.spend;
                        if *v <= 1e-12 {
                            level.remove(k);
                        }
                    }
                })
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
        with_key(&mut String::new(), a, b, |k| {
            level.get(k).copied().unwrap_or(0.0)
        })
    }

    /// Adds the unapplied spend to a loaded key's figures (key, team, org, user, memberships).
    pub fn add_to(&self, k: &mut KeyRow) {
        let m = self.lock();
        if m.iter().all(HashMap::is_empty) {
            return;
        }
        let mut scratch = String::new();
        let mut get = |l: Level, a: &str, b: &str| {
            let level = &m[l.index()];
            if level.is_empty() {
                0.0
            } else {
                with_key(&mut scratch, a, b, |k| level.get(k).copied().unwrap_or(0.0))
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The key as it was built before (one `String` per holder and call).
    fn old_key(a: &str, b: &str) -> String {
        if b.is_empty() {
            a.to_string()
        } else {
            format!("{a}\0{b}")
        }
    }

    fn id() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(proptest::sample::select(vec![
            "k1".to_string(),
            "k2".to_string(),
            "t1".to_string(),
            "a\0b".to_string(),
            String::new(),
        ]))
    }

    fn record() -> impl Strategy<Value = SpendRecord> {
        (id(), id(), id(), id(), id(), 0u32..4).prop_map(|(k, t, o, u, e, s)| SpendRecord {
            token: k,
            team_id: t,
            organization_id: o,
            user_id: u,
            end_user: e,
            spend: f64::from(s) * 0.25,
            ..SpendRecord::default()
        })
    }

    proptest! {
        /// Adding and removing records leaves the same spend per holder key as the old
        /// per-call `String` keys did, and every holder reads back through `get`.
        #[test]
        fn keys_and_amounts_as_before(
            recs in proptest::collection::vec(record(), 0..24),
            removed in 0usize..24,
        ) {
            let o = Overlay::default();
            let mut want: [HashMap<String, f64>; Level::COUNT] = Default::default();
            for r in &recs {
                o.add(r);
                holders(r, |l, a, b| *want[l.index()].entry(old_key(a, b)).or_insert(0.0) += r.spend);
            }
            let gone = &recs[..removed.min(recs.len())];
            o.remove(gone.iter());
            for r in gone {
                holders(r, |l, a, b| {
                    let k = old_key(a, b);
                    if let Some(v) = want[l.index()].get_mut(&k) {
                        *v -= r.spend;
                        if *v <= 1e-12 {
                            want[l.index()].remove(&k);
                        }
                    }
                });
            }
            let got = o.lock();
            for l in 0..Level::COUNT {
                prop_assert_eq!(&got[l], &want[l]);
            }
            drop(got);
            for r in &recs {
                holders(r, |l, a, b| {
                    let w = want[l.index()].get(&old_key(a, b)).copied().unwrap_or(0.0);
                    assert_eq!(o.get(l, a, b), w);
                });
            }
        }
    }
}
