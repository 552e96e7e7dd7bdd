-- litegate schema, version 7 (issue 15 item 4): end users (LiteLLM's customers,
-- LiteLLM_EndUserTable). Append-only: never edit once released.

-- An end user is who a model call's `user` field names: a customer of the caller, not a litegate
-- user (no login, no keys). `spend` is what calls naming them cost; the budget and rate limits
-- that apply to them are their budget row's (`budget_id`, LiteLLM's LiteLLM_BudgetTable), else
-- the config's defaults (`litellm_settings.max_end_user_budget`, `max_end_user_budget_id`).
-- A call naming an unknown end user creates the row with its first spend (as LiteLLM does).
-- `allowed_model_region` ('eu' | 'us') and `default_model` are stored as LiteLLM stores them.
CREATE TABLE end_users (
    id                   TEXT PRIMARY KEY,
    alias                TEXT,
    spend                REAL NOT NULL DEFAULT 0,
    allowed_model_region TEXT,
    default_model        TEXT,
    budget_id            TEXT REFERENCES budgets(id) ON DELETE SET NULL,
    blocked              INTEGER NOT NULL DEFAULT 0,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX end_users_budget ON end_users(budget_id);
