//! A batch of spend records as one PostgreSQL transaction that takes its row locks in one
//! global order: every holder table in a fixed order (keys, teams, organizations, users, team
//! members, organization members, end users), ids sorted within each, each row once with the
//! batch's sum, then the spend-log rows. Several instances commit spend on one database at the
//! same time; record by record, two batches touching two shared rows (two keys of one team, or
//! one end user called through two keys) in opposite orders deadlock, and PostgreSQL aborts one
//! of them. In one order they cannot. SQLite has one writer and needs no order, but its spend
//! journal's applier (`journal::apply`) uses the same sums: one UPDATE per distinct holder per
//! batch instead of one per record (issue 17).

use super::spend::{
    insert_logs, SpendRecord, ADD_END_USER, ADD_KEY, ADD_ORG, ADD_ORG_MEMBER, ADD_TEAM,
    ADD_TEAM_MEMBER, ADD_USER, NEW_END_USER,
};
use super::sql::{Arg, Exec};
use std::collections::BTreeMap;

/// Records `batch` (the same rows and sums as `spend::record` on each record in turn).
pub fn record_all<C: Exec + ?Sized>(c: &mut C, batch: &[&SpendRecord]) -> Result<(), C::E> {
    // By table, in lock order; within each the BTreeMap's id order.
    let mut single: [BTreeMap<&str, f64>; 4] = Default::default();
    let mut pairs: [BTreeMap<(&str, &str), f64>; 2] = Default::default();
    // End user → (spend, the first record's time, for a row made now).
    let mut end_users: BTreeMap<&str, (f64, &str)> = BTreeMap::new();
    for r in batch {
        if r.spend > 0.0 {
            let holders = [&r.token, &r.team_id, &r.organization_id, &r.user_id];
            for (rows, id) in single.iter_mut().zip(holders) {
                if let Some(id) = id {
                    *rows.entry(id.as_str()).or_default() += r.spend;
                }
            }
            if let Some(u) = &r.user_id {
                for (i, group) in [&r.team_id, &r.organization_id].into_iter().enumerate() {
                    if let Some(g) = group {
                        *pairs[i].entry((g.as_str(), u.as_str())).or_default() += r.spend;
                    }
                }
            }
        }
        if let Some(e) = &r.end_user {
            let entry = end_users.entry(e.as_str()).or_insert((0.0, &r.end_time));
            entry.0 += r.spend.max(0.0);
        }
    }
    for (sql, rows) in [ADD_KEY, ADD_TEAM, ADD_ORG, ADD_USER]
        .into_iter()
        .zip(&single)
    {
        for (id, spend) in rows {
            c.exec(sql, &[(*id).into(), Arg::Real(*spend)])?;
        }
    }
    for (sql, rows) in [ADD_TEAM_MEMBER, ADD_ORG_MEMBER].into_iter().zip(&pairs) {
        for ((group, user), spend) in rows {
            c.exec(sql, &[(*group).into(), (*user).into(), Arg::Real(*spend)])?;
        }
    }
    for (id, (spend, at)) in &end_users {
        if *spend > 0.0 {
            c.exec(
                ADD_END_USER,
                &[(*id).into(), Arg::Real(*spend), (*at).into()],
            )?;
        } else {
            c.exec(NEW_END_USER, &[(*id).into(), (*at).into()])?;
        }
    }
    insert_logs(c, batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records every statement instead of running it.
    #[derive(Default)]
    struct Log(Vec<String>);

    impl Exec for Log {
        type E = ();
        fn exec(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<usize, ()> {
            let table = sql
                .split_whitespace()
                .nth(if sql.starts_with("INSERT") { 2 } else { 1 });
            let first = match args.first() {
                Some(Arg::Text(t)) => t.to_string(),
                _ => String::new(),
            };
            let amount = args.iter().find_map(|a| match a {
                Arg::Real(x) => Some(*x),
                _ => None,
            });
            if table == Some("spend_logs") {
                // A multi-row INSERT: a line per row (`LOG_ARGS` arguments each).
                for row in args.chunks(15) {
                    let id = match row.first() {
                        Some(Arg::Text(t)) => t.to_string(),
                        _ => String::new(),
                    };
                    let spend = row.iter().find_map(|a| match a {
                        Arg::Real(x) => Some(*x),
                        _ => None,
                    });
                    self.0.push(format!("spend_logs {id} {spend:?}"));
                }
                return Ok(args.len() / 15);
            }
            self.0
                .push(format!("{} {first} {amount:?}", table.unwrap_or("")));
            Ok(1)
        }
    }

    fn rec(id: &str, key: &str, team: &str, end_user: Option<&str>, spend: f64) -> SpendRecord {
        SpendRecord {
            request_id: id.into(),
            token: Some(key.into()),
            team_id: Some(team.into()),
            user_id: Some("u".into()),
            end_user: end_user.map(str::to_string),
            spend,
            end_time: "t".into(),
            ..SpendRecord::default()
        }
    }

    #[test]
    fn rows_are_locked_in_one_order_each_once_with_the_batchs_sum() {
        let (a, b, c) = (
            rec("r1", "k2", "t", Some("cust"), 1.0),
            rec("r2", "k1", "t", Some("cust"), 2.0),
            rec("r3", "k2", "t", Some("free"), 0.0),
        );
        let mut log = Log::default();
        record_all(&mut log, &[&a, &b, &c]).expect("recorded");
        assert_eq!(
            log.0,
            [
                "api_keys k1 Some(2.0)",
                "api_keys k2 Some(1.0)",
                "teams t Some(3.0)",
                "users u Some(3.0)",
                "team_members t Some(3.0)",
                "end_users cust Some(3.0)",
                "end_users free None",
                "spend_logs r1 Some(1.0)",
                "spend_logs r2 Some(2.0)",
                "spend_logs r3 Some(0.0)",
            ]
        );
    }
}
