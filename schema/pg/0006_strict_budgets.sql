-- litegate's PostgreSQL schema, version 7 (issue 16 item 2): budget alerts sent, so that each
-- crossing of a threshold or soft budget is alerted once per budget period by exactly one
-- instance (the twin of SQLite's schema/0009_budget_alerts.sql). Append-only.
--
-- Strict budgets need no function of their own: `call::shared` asks `litegate_admit`
-- (0002) with each max lowered by the call's worst-case cost and reserves that cost.
CREATE TABLE budget_alerts (
    scope    TEXT COLLATE "C" NOT NULL,
    holder   TEXT COLLATE "C" NOT NULL,
    period   TEXT COLLATE "C" NOT NULL,
    mark     TEXT COLLATE "C" NOT NULL,
    sent_at  TEXT NOT NULL,
    PRIMARY KEY (scope, holder, period, mark)
);
