//! Who set what (schema 0005): a key's reach and the ranks stamped on limits, blocks and
//! membership budgets, read and written by `access::authority`'s rules. One fn per query; management
//! routes only (THE key check reads `reach` in its own statement).

use rusqlite::{Connection, OptionalExtension};

const KEY_RANKS: &str = "SELECT reach, limits_rank FROM api_keys WHERE token = ?1";

/// (`reach` is `'calls'`, `limits_rank`) of a key.
pub fn key_ranks(c: &Connection, token: &str) -> rusqlite::Result<Option<(bool, i64)>> {
    c.prepare_cached(KEY_RANKS)?
        .query_row([token], |r| {
            Ok((r.get::<_, String>(0)? == "calls", r.get::<_, i64>(1)?))
        })
        .optional()
}

const SET_KEY_RANKS: &str = "UPDATE api_keys SET reach = ?2, limits_rank = ?3 WHERE token = ?1";

pub fn set_key_ranks(
    c: &Connection,
    token: &str,
    calls_only: bool,
    limits_rank: i64,
) -> rusqlite::Result<usize> {
    let reach = if calls_only { "calls" } else { "owner" };
    c.prepare_cached(SET_KEY_RANKS)?
        .execute(rusqlite::params![token, reach, limits_rank])
}

const SET_KEY_ISSUE: &str = "UPDATE api_keys SET reach = ?2, limits_rank = ?3, issued_by = ?4
    WHERE token = ?1";

/// Stamps a key just issued or regenerated: its reach, the rank of its limits, and (for a
/// calls-only key) who issued it and so holds the raw key.
pub fn set_key_issue(
    c: &Connection,
    token: &str,
    calls_only: bool,
    limits_rank: i64,
    issued_by: Option<&str>,
) -> rusqlite::Result<usize> {
    let (reach, by) = if calls_only {
        ("calls", issued_by)
    } else {
        ("owner", None)
    };
    c.prepare_cached(SET_KEY_ISSUE)?
        .execute(rusqlite::params![token, reach, limits_rank, by])
}

const DELETE_ISSUED_IN_TEAM: &str = "DELETE FROM api_keys WHERE issued_by = ?2 AND team_id = ?1";

/// Deletes the calls-only keys `issuer` issued in a team: they lost the admin role they
/// issued them under, and still hold the raw keys.
pub fn delete_issued_in_team(
    c: &Connection,
    team_id: &str,
    issuer: &str,
) -> rusqlite::Result<usize> {
    c.prepare_cached(DELETE_ISSUED_IN_TEAM)?
        .execute([team_id, issuer])
}

const DELETE_ISSUED_IN_ORG: &str = "DELETE FROM api_keys WHERE issued_by = ?2
    AND team_id IN (SELECT id FROM teams WHERE organization_id = ?1)
    AND team_id NOT IN (SELECT team_id FROM team_members WHERE user_id = ?2 AND role = 'admin')";

/// Deletes the calls-only keys `issuer` issued in the org's teams they do not administer
/// themselves: issued as the org's admin, a role now gone.
pub fn delete_issued_in_org(c: &Connection, org_id: &str, issuer: &str) -> rusqlite::Result<usize> {
    c.prepare_cached(DELETE_ISSUED_IN_ORG)?
        .execute([org_id, issuer])
}

const TEAM_RANKS: &str = "SELECT blocked_rank, limits_rank FROM teams WHERE id = ?1";

/// (`blocked_rank`, `limits_rank`) of a team; (0, 0) when it is gone.
pub fn team_ranks(c: &Connection, team_id: &str) -> rusqlite::Result<(i64, i64)> {
    Ok(c.prepare_cached(TEAM_RANKS)?
        .query_row([team_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or((0, 0)))
}

const SET_TEAM_RANKS: &str = "UPDATE teams SET blocked_rank = ?2, limits_rank = ?3 WHERE id = ?1";

pub fn set_team_ranks(
    c: &Connection,
    team_id: &str,
    blocked_rank: i64,
    limits_rank: i64,
) -> rusqlite::Result<usize> {
    c.prepare_cached(SET_TEAM_RANKS)?
        .execute(rusqlite::params![team_id, blocked_rank, limits_rank])
}

const TEAM_MEMBER_RANK: &str =
    "SELECT budget_rank FROM team_members WHERE team_id = ?1 AND user_id = ?2";

/// The rank that set a team membership's budget (0 when none or no such membership).
pub fn team_member_rank(c: &Connection, team_id: &str, user_id: &str) -> rusqlite::Result<i64> {
    Ok(c.prepare_cached(TEAM_MEMBER_RANK)?
        .query_row([team_id, user_id], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

const SET_TEAM_MEMBER_RANK: &str =
    "UPDATE team_members SET budget_rank = ?3 WHERE team_id = ?1 AND user_id = ?2";

pub fn set_team_member_rank(
    c: &Connection,
    team_id: &str,
    user_id: &str,
    rank: i64,
) -> rusqlite::Result<usize> {
    c.prepare_cached(SET_TEAM_MEMBER_RANK)?
        .execute(rusqlite::params![team_id, user_id, rank])
}

const ORG_MEMBER_RANK: &str =
    "SELECT budget_rank FROM organization_members WHERE organization_id = ?1 AND user_id = ?2";

/// The rank that set an organization membership's budget (0 when none).
pub fn org_member_rank(c: &Connection, org_id: &str, user_id: &str) -> rusqlite::Result<i64> {
    Ok(c.prepare_cached(ORG_MEMBER_RANK)?
        .query_row([org_id, user_id], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

const SET_ORG_MEMBER_RANK: &str = "UPDATE organization_members SET budget_rank = ?3
    WHERE organization_id = ?1 AND user_id = ?2";

pub fn set_org_member_rank(
    c: &Connection,
    org_id: &str,
    user_id: &str,
    rank: i64,
) -> rusqlite::Result<usize> {
    c.prepare_cached(SET_ORG_MEMBER_RANK)?
        .execute(rusqlite::params![org_id, user_id, rank])
}

/// Keys of `user_id` in the org's teams that the user is not a member of: what being that
/// org's admin let them hold.
const DELETE_ORG_ADMIN_KEYS: &str = "DELETE FROM api_keys WHERE user_id = ?2
    AND team_id IN (SELECT id FROM teams WHERE organization_id = ?1)
    AND team_id NOT IN (SELECT team_id FROM team_members WHERE user_id = ?2)";

/// Keys of `user_id` without a team whose own organization is the org: what membership of
/// the org let them hold.
const DELETE_ORG_PERSONAL_KEYS: &str = "DELETE FROM api_keys WHERE user_id = ?2
    AND team_id IS NULL AND organization_id = ?1";

/// Deletes the keys an organization membership gave `user_id`: the keys in its teams held
/// only as its admin (their own, and calls-only keys they issued there for others), and with
/// `membership_gone` their personal keys in the org too.
pub fn delete_org_keys(
    c: &Connection,
    org_id: &str,
    user_id: &str,
    membership_gone: bool,
) -> rusqlite::Result<usize> {
    let mut n = c
        .prepare_cached(DELETE_ORG_ADMIN_KEYS)?
        .execute([org_id, user_id])?;
    n += delete_issued_in_org(c, org_id, user_id)?;
    if membership_gone {
        n += c
            .prepare_cached(DELETE_ORG_PERSONAL_KEYS)?
            .execute([org_id, user_id])?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Upgrading a version-4 database: a key someone else minted for its owner (not the master
    /// key, not a proxy admin user) becomes calls-only; limits and blocks already there keep
    /// the highest rank.
    #[test]
    fn migration_5_limits_keys_minted_for_someone_else() {
        let c = Connection::open_in_memory().expect("open");
        for (_, sql) in &crate::db::migrate::MIGRATIONS[..4] {
            c.execute_batch(sql).expect("migrate 1-4");
        }
        let t = "'2026-01-01T00:00:00.000Z'";
        c.execute_batch(&format!(
            "INSERT INTO users (id, user_role, created_at, updated_at) VALUES
               ('admin', 'proxy_admin', {t}, {t}), ('ta', 'internal_user', {t}, {t}),
               ('m', 'internal_user', {t}, {t});
             INSERT INTO api_keys (token, key_name, user_id, created_by, blocked, created_at,
                                   updated_at) VALUES
               ('by-ta', 'k', 'm', 'ta', 0, {t}, {t}),
               ('by-self', 'k', 'm', 'm', 0, {t}, {t}),
               ('by-master', 'k', 'm', 'default_user_id', 1, {t}, {t}),
               ('by-admin', 'k', 'm', 'admin', 0, {t}, {t});"
        ))
        .expect("seed");
        c.execute_batch(crate::db::migrate::MIGRATIONS[4].1)
            .expect("migrate 5");
        let ranks = |tok: &str| key_ranks(&c, tok).expect("query").expect("row");
        assert_eq!(ranks("by-ta"), (true, 0));
        assert_eq!(ranks("by-self"), (false, 0));
        assert_eq!(ranks("by-master"), (false, 3));
        assert_eq!(ranks("by-admin"), (false, 0));
        let issuer = |tok: &str| -> Option<String> {
            c.query_row(
                "SELECT issued_by FROM api_keys WHERE token = ?1",
                [tok],
                |r| r.get(0),
            )
            .expect("issued_by")
        };
        assert_eq!(issuer("by-ta").as_deref(), Some("ta"));
        assert_eq!(issuer("by-self"), None);
    }
}
