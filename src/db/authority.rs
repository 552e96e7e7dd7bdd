//! Who set what (schema 0005): a key's reach and the ranks stamped on limits, blocks and
//! membership budgets, read and written by `access::authority`'s rules. One fn per query; management
//! routes only (THE key check reads `reach` in its own statement).

use super::handle::{DbResult, Handle};

const KEY_RANKS: &str = "SELECT reach, limits_rank FROM api_keys WHERE token = ?1";

/// (`reach` is `'calls'`, `limits_rank`) of a key.
pub fn key_ranks<C: Handle + ?Sized>(c: &C, token: &str) -> DbResult<Option<(bool, i64)>> {
    c.one(KEY_RANKS, &[token.into()], |r| {
        Ok((r.get::<String>(0)? == "calls", r.get::<i64>(1)?))
    })
}

const SET_KEY_RANKS: &str = "UPDATE api_keys SET reach = ?2, limits_rank = ?3 WHERE token = ?1";

pub fn set_key_ranks<C: Handle + ?Sized>(
    c: &C,
    token: &str,
    calls_only: bool,
    limits_rank: i64,
) -> DbResult<usize> {
    let reach = if calls_only { "calls" } else { "owner" };
    c.exec(
        SET_KEY_RANKS,
        &[token.into(), reach.into(), limits_rank.into()],
    )
}

const SET_KEY_ISSUE: &str = "UPDATE api_keys SET reach = ?2, limits_rank = ?3, issued_by = ?4
    WHERE token = ?1";

/// Stamps a key just issued or regenerated: its reach, the rank of its limits, and (for a
/// calls-only key) who issued it and so holds the raw key.
pub fn set_key_issue<C: Handle + ?Sized>(
    c: &C,
    token: &str,
    calls_only: bool,
    limits_rank: i64,
    issued_by: Option<&str>,
) -> DbResult<usize> {
    let (reach, by) = if calls_only {
        ("calls", issued_by)
    } else {
        ("owner", None)
    };
    c.exec(
        SET_KEY_ISSUE,
        &[token.into(), reach.into(), limits_rank.into(), by.into()],
    )
}

const DELETE_ISSUED_IN_TEAM: &str = "DELETE FROM api_keys WHERE issued_by = ?2 AND team_id = ?1";

/// Deletes the calls-only keys `issuer` issued in a team: they lost the admin role they
/// issued them under, and still hold the raw keys.
pub fn delete_issued_in_team<C: Handle + ?Sized>(
    c: &C,
    team_id: &str,
    issuer: &str,
) -> DbResult<usize> {
    c.exec(DELETE_ISSUED_IN_TEAM, &[team_id.into(), issuer.into()])
}

const DELETE_ISSUED_IN_ORG: &str = "DELETE FROM api_keys WHERE issued_by = ?2
    AND team_id IN (SELECT id FROM teams WHERE organization_id = ?1)
    AND team_id NOT IN (SELECT team_id FROM team_members WHERE user_id = ?2 AND role = 'admin')";

/// Deletes the calls-only keys `issuer` issued in the org's teams they do not administer
/// themselves: issued as the org's admin, a role now gone.
pub fn delete_issued_in_org<C: Handle + ?Sized>(
    c: &C,
    org_id: &str,
    issuer: &str,
) -> DbResult<usize> {
    c.exec(DELETE_ISSUED_IN_ORG, &[org_id.into(), issuer.into()])
}

const TEAM_RANKS: &str = "SELECT blocked_rank, limits_rank FROM teams WHERE id = ?1";

/// (`blocked_rank`, `limits_rank`) of a team; (0, 0) when it is gone.
pub fn team_ranks<C: Handle + ?Sized>(c: &C, team_id: &str) -> DbResult<(i64, i64)> {
    Ok(c.one(TEAM_RANKS, &[team_id.into()], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?
    .unwrap_or((0, 0)))
}

const SET_TEAM_RANKS: &str = "UPDATE teams SET blocked_rank = ?2, limits_rank = ?3 WHERE id = ?1";

pub fn set_team_ranks<C: Handle + ?Sized>(
    c: &C,
    team_id: &str,
    blocked_rank: i64,
    limits_rank: i64,
) -> DbResult<usize> {
    c.exec(
        SET_TEAM_RANKS,
        &[team_id.into(), blocked_rank.into(), limits_rank.into()],
    )
}

const TEAM_MEMBER_RANK: &str =
    "SELECT budget_rank FROM team_members WHERE team_id = ?1 AND user_id = ?2";

/// The rank that set a team membership's budget (0 when none or no such membership).
pub fn team_member_rank<C: Handle + ?Sized>(c: &C, team_id: &str, user_id: &str) -> DbResult<i64> {
    Ok(
        c.one(TEAM_MEMBER_RANK, &[team_id.into(), user_id.into()], |r| {
            r.get(0)
        })?
        .unwrap_or(0),
    )
}

const SET_TEAM_MEMBER_RANK: &str =
    "UPDATE team_members SET budget_rank = ?3 WHERE team_id = ?1 AND user_id = ?2";

pub fn set_team_member_rank<C: Handle + ?Sized>(
    c: &C,
    team_id: &str,
    user_id: &str,
    rank: i64,
) -> DbResult<usize> {
    c.exec(
        SET_TEAM_MEMBER_RANK,
        &[team_id.into(), user_id.into(), rank.into()],
    )
}

const ORG_MEMBER_RANK: &str =
    "SELECT budget_rank FROM organization_members WHERE organization_id = ?1 AND user_id = ?2";

/// The rank that set an organization membership's budget (0 when none).
pub fn org_member_rank<C: Handle + ?Sized>(c: &C, org_id: &str, user_id: &str) -> DbResult<i64> {
    Ok(
        c.one(ORG_MEMBER_RANK, &[org_id.into(), user_id.into()], |r| {
            r.get(0)
        })?
        .unwrap_or(0),
    )
}

const SET_ORG_MEMBER_RANK: &str = "UPDATE organization_members SET budget_rank = ?3
    WHERE organization_id = ?1 AND user_id = ?2";

pub fn set_org_member_rank<C: Handle + ?Sized>(
    c: &C,
    org_id: &str,
    user_id: &str,
    rank: i64,
) -> DbResult<usize> {
    c.exec(
        SET_ORG_MEMBER_RANK,
        &[org_id.into(), user_id.into(), rank.into()],
    )
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
pub fn delete_org_keys<C: Handle + ?Sized>(
    c: &C,
    org_id: &str,
    user_id: &str,
    membership_gone: bool,
) -> DbResult<usize> {
    let mut n = c.exec(DELETE_ORG_ADMIN_KEYS, &[org_id.into(), user_id.into()])?;
    n += delete_issued_in_org(c, org_id, user_id)?;
    if membership_gone {
        n += c.exec(DELETE_ORG_PERSONAL_KEYS, &[org_id.into(), user_id.into()])?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

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
