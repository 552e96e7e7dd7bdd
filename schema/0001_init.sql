-- litegate schema, version 1. Append-only: never edit once released; add 0002_*.sql.
-- Timestamps are UTC ISO-8601 text ('2026-11-23T16:49:35.123Z'), so they sort as text.
-- Model lists are JSON arrays of strings; metadata is a JSON object.

-- Budgets: shared by organizations and memberships (LiteLLM's LiteLLM_BudgetTable).
CREATE TABLE budgets (
    id                    TEXT PRIMARY KEY,
    max_budget            REAL,
    soft_budget           REAL,
    tpm_limit             INTEGER,
    rpm_limit             INTEGER,
    max_parallel_requests INTEGER,
    budget_duration       TEXT,
    budget_reset_at       TEXT,
    model_max_budget      TEXT,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    created_by            TEXT,
    updated_by            TEXT
) WITHOUT ROWID;

CREATE TABLE organizations (
    id          TEXT PRIMARY KEY,
    alias       TEXT NOT NULL,
    models      TEXT NOT NULL DEFAULT '[]',
    spend       REAL NOT NULL DEFAULT 0,
    budget_id   TEXT REFERENCES budgets(id) ON DELETE SET NULL,
    blocked     INTEGER NOT NULL DEFAULT 0,
    metadata    TEXT NOT NULL DEFAULT '{}',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    created_by  TEXT,
    updated_by  TEXT
) WITHOUT ROWID;
CREATE INDEX organizations_budget ON organizations(budget_id);

CREATE TABLE users (
    id                    TEXT PRIMARY KEY,
    email                 TEXT,
    user_role             TEXT NOT NULL
        CHECK (user_role IN ('proxy_admin','proxy_admin_viewer','internal_user','internal_user_viewer')),
    password_hash         TEXT,
    models                TEXT NOT NULL DEFAULT '[]',
    spend                 REAL NOT NULL DEFAULT 0,
    max_budget            REAL,
    soft_budget           REAL,
    budget_duration       TEXT,
    budget_reset_at       TEXT,
    tpm_limit             INTEGER,
    rpm_limit             INTEGER,
    max_parallel_requests INTEGER,
    metadata              TEXT NOT NULL DEFAULT '{}',
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL
) WITHOUT ROWID;
-- Email unique when present, compared case-insensitively.
CREATE UNIQUE INDEX users_email ON users(lower(email)) WHERE email IS NOT NULL;

CREATE TABLE organization_members (
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    user_role       TEXT NOT NULL
        CHECK (user_role IN ('org_admin','internal_user','internal_user_viewer')),
    spend           REAL NOT NULL DEFAULT 0,
    budget_id       TEXT REFERENCES budgets(id) ON DELETE SET NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (organization_id, user_id)
) WITHOUT ROWID;
CREATE INDEX organization_members_user ON organization_members(user_id);
CREATE INDEX organization_members_budget ON organization_members(budget_id);

CREATE TABLE teams (
    id                    TEXT PRIMARY KEY,
    alias                 TEXT,
    organization_id       TEXT REFERENCES organizations(id) ON DELETE CASCADE,
    models                TEXT NOT NULL DEFAULT '[]',
    spend                 REAL NOT NULL DEFAULT 0,
    max_budget            REAL,
    soft_budget           REAL,
    budget_duration       TEXT,
    budget_reset_at       TEXT,
    tpm_limit             INTEGER,
    rpm_limit             INTEGER,
    max_parallel_requests INTEGER,
    blocked               INTEGER NOT NULL DEFAULT 0,
    metadata              TEXT NOT NULL DEFAULT '{}',
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    created_by            TEXT,
    updated_by            TEXT
) WITHOUT ROWID;
CREATE INDEX teams_org ON teams(organization_id);

CREATE TABLE team_members (
    team_id     TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role        TEXT NOT NULL CHECK (role IN ('admin','user')),
    spend       REAL NOT NULL DEFAULT 0,
    budget_id   TEXT REFERENCES budgets(id) ON DELETE SET NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (team_id, user_id)
) WITHOUT ROWID;
CREATE INDEX team_members_user ON team_members(user_id);
CREATE INDEX team_members_budget ON team_members(budget_id);

-- Virtual keys. token = lowercase hex SHA-256 of the raw key (LiteLLM's format); the raw key is
-- never stored. Deleting a team, an organization or a user deletes their keys. The parent tables
-- (organizations, teams, users, budgets) are WITHOUT ROWID so each join of the key check is one
-- B-tree search instead of two; api_keys keeps a rowid (cheap appends) with its token unique.
CREATE TABLE api_keys (
    token                 TEXT PRIMARY KEY,
    key_name              TEXT NOT NULL,
    key_alias             TEXT,
    models                TEXT NOT NULL DEFAULT '[]',
    aliases               TEXT NOT NULL DEFAULT '{}',
    team_id               TEXT REFERENCES teams(id) ON DELETE CASCADE,
    user_id               TEXT REFERENCES users(id) ON DELETE CASCADE,
    organization_id       TEXT REFERENCES organizations(id) ON DELETE CASCADE,
    expires               TEXT,
    blocked               INTEGER NOT NULL DEFAULT 0,
    spend                 REAL NOT NULL DEFAULT 0,
    max_budget            REAL,
    soft_budget           REAL,
    budget_duration       TEXT,
    budget_reset_at       TEXT,
    tpm_limit             INTEGER,
    rpm_limit             INTEGER,
    max_parallel_requests INTEGER,
    metadata              TEXT NOT NULL DEFAULT '{}',
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    created_by            TEXT,
    updated_by            TEXT
);
CREATE UNIQUE INDEX api_keys_alias ON api_keys(key_alias) WHERE key_alias IS NOT NULL;
CREATE INDEX api_keys_team ON api_keys(team_id);
CREATE INDEX api_keys_user ON api_keys(user_id);
CREATE INDEX api_keys_org ON api_keys(organization_id);

-- One row per model call. Ids are copied, not referenced: spend history outlives deleted keys.
CREATE TABLE spend_logs (
    id                INTEGER PRIMARY KEY,
    request_id        TEXT NOT NULL UNIQUE,
    api_key           TEXT,
    team_id           TEXT,
    organization_id   TEXT,
    user_id           TEXT,
    model             TEXT NOT NULL,
    call_type         TEXT NOT NULL,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    total_tokens      INTEGER NOT NULL DEFAULT 0,
    spend             REAL NOT NULL DEFAULT 0,
    start_time        TEXT NOT NULL,
    end_time          TEXT NOT NULL,
    status            TEXT NOT NULL,
    metadata          TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX spend_logs_key ON spend_logs(api_key, start_time);
CREATE INDEX spend_logs_team ON spend_logs(team_id, start_time);
CREATE INDEX spend_logs_org ON spend_logs(organization_id, start_time);
CREATE INDEX spend_logs_user ON spend_logs(user_id, start_time);
CREATE INDEX spend_logs_time ON spend_logs(start_time);

-- Settings the server keeps for itself (e.g. the hash of a generated master key).
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
