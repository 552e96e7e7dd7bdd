-- litegate schema, version 10 (issue 16 item 2): budget alerts sent, so that each crossing of a
-- threshold or soft budget is alerted once per budget period, across restarts (and, on
-- PostgreSQL, instances: schema/pg/0007). Append-only: never edit once released.
--
-- scope: key, team, org, user, team_member, org_member; holder: the holder's id
-- (`team/user`, `org/user` for memberships); period: the holder's budget_reset_at when the
-- crossing happened ('' for a budget that never resets); mark: `max:<fraction>` or `soft`.
CREATE TABLE budget_alerts (
    scope    TEXT NOT NULL,
    holder   TEXT NOT NULL,
    period   TEXT NOT NULL,
    mark     TEXT NOT NULL,
    sent_at  TEXT NOT NULL,
    PRIMARY KEY (scope, holder, period, mark)
) WITHOUT ROWID;
