-- litegate's PostgreSQL schema, version 1 (issue 14). Append-only: never edit once released;
-- add 0002_*.sql. Equivalent to SQLite's schema/0001..0005 as they stand (a PostgreSQL store
-- starts empty, so none of SQLite's upgrade steps for older rows is needed here).
-- Types are chosen so that one SQL text serves both engines (src/db/sql.rs):
--   SQLite INTEGER -> BIGINT (flags stay 0/1 integers: `blocked <> 0` reads the same),
--   REAL -> DOUBLE PRECISION, TEXT -> TEXT (timestamps: ISO-8601 UTC text, sorting as text;
--   model lists and metadata: JSON text, decoded by litegate as on SQLite).
-- Text columns compare and sort byte-wise (COLLATE "C"), as SQLite's BINARY collation does, so
-- ORDER BY gives the same order on both engines whatever the database's locale.

CREATE TABLE budgets (
    id                    TEXT COLLATE "C" PRIMARY KEY,
    max_budget            DOUBLE PRECISION,
    soft_budget           DOUBLE PRECISION,
    tpm_limit             BIGINT,
    rpm_limit             BIGINT,
    max_parallel_requests BIGINT,
    budget_duration       TEXT,
    budget_reset_at       TEXT COLLATE "C",
    model_max_budget      TEXT,
    created_at            TEXT COLLATE "C" NOT NULL,
    updated_at            TEXT COLLATE "C" NOT NULL,
    created_by            TEXT,
    updated_by            TEXT
);

CREATE TABLE organizations (
    id          TEXT COLLATE "C" PRIMARY KEY,
    alias       TEXT COLLATE "C" NOT NULL,
    models      TEXT NOT NULL DEFAULT '[]',
    spend       DOUBLE PRECISION NOT NULL DEFAULT 0,
    budget_id   TEXT COLLATE "C" REFERENCES budgets(id) ON DELETE SET NULL,
    blocked     BIGINT NOT NULL DEFAULT 0,
    metadata    TEXT NOT NULL DEFAULT '{}',
    created_at  TEXT COLLATE "C" NOT NULL,
    updated_at  TEXT COLLATE "C" NOT NULL,
    created_by  TEXT,
    updated_by  TEXT
);
CREATE INDEX organizations_budget ON organizations(budget_id);

CREATE TABLE users (
    id                    TEXT COLLATE "C" PRIMARY KEY,
    email                 TEXT COLLATE "C",
    user_role             TEXT NOT NULL
        CHECK (user_role IN ('proxy_admin','proxy_admin_viewer','internal_user','internal_user_viewer')),
    password_hash         TEXT,
    models                TEXT NOT NULL DEFAULT '[]',
    spend                 DOUBLE PRECISION NOT NULL DEFAULT 0,
    max_budget            DOUBLE PRECISION,
    soft_budget           DOUBLE PRECISION,
    budget_duration       TEXT,
    budget_reset_at       TEXT COLLATE "C",
    tpm_limit             BIGINT,
    rpm_limit             BIGINT,
    max_parallel_requests BIGINT,
    metadata              TEXT NOT NULL DEFAULT '{}',
    created_at            TEXT COLLATE "C" NOT NULL,
    updated_at            TEXT COLLATE "C" NOT NULL
);
-- Email unique when present, compared case-insensitively.
CREATE UNIQUE INDEX users_email ON users(lower(email)) WHERE email IS NOT NULL;

CREATE TABLE organization_members (
    organization_id TEXT COLLATE "C" NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id         TEXT COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    user_role       TEXT NOT NULL
        CHECK (user_role IN ('org_admin','internal_user','internal_user_viewer')),
    spend           DOUBLE PRECISION NOT NULL DEFAULT 0,
    budget_id       TEXT COLLATE "C" REFERENCES budgets(id) ON DELETE SET NULL,
    created_at      TEXT COLLATE "C" NOT NULL,
    updated_at      TEXT COLLATE "C" NOT NULL,
    budget_rank     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (organization_id, user_id)
);
CREATE INDEX organization_members_user ON organization_members(user_id);
CREATE INDEX organization_members_budget ON organization_members(budget_id);

CREATE TABLE teams (
    id                    TEXT COLLATE "C" PRIMARY KEY,
    alias                 TEXT COLLATE "C",
    organization_id       TEXT COLLATE "C" REFERENCES organizations(id) ON DELETE CASCADE,
    models                TEXT NOT NULL DEFAULT '[]',
    spend                 DOUBLE PRECISION NOT NULL DEFAULT 0,
    max_budget            DOUBLE PRECISION,
    soft_budget           DOUBLE PRECISION,
    budget_duration       TEXT,
    budget_reset_at       TEXT COLLATE "C",
    tpm_limit             BIGINT,
    rpm_limit             BIGINT,
    max_parallel_requests BIGINT,
    blocked               BIGINT NOT NULL DEFAULT 0,
    metadata              TEXT NOT NULL DEFAULT '{}',
    created_at            TEXT COLLATE "C" NOT NULL,
    updated_at            TEXT COLLATE "C" NOT NULL,
    created_by            TEXT,
    updated_by            TEXT,
    blocked_rank          BIGINT NOT NULL DEFAULT 0,
    limits_rank           BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX teams_org ON teams(organization_id);

CREATE TABLE team_members (
    team_id     TEXT COLLATE "C" NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    user_id     TEXT COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role        TEXT NOT NULL CHECK (role IN ('admin','user')),
    spend       DOUBLE PRECISION NOT NULL DEFAULT 0,
    budget_id   TEXT COLLATE "C" REFERENCES budgets(id) ON DELETE SET NULL,
    created_at  TEXT COLLATE "C" NOT NULL,
    updated_at  TEXT COLLATE "C" NOT NULL,
    budget_rank BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user ON team_members(user_id);
CREATE INDEX team_members_budget ON team_members(budget_id);

-- Virtual keys. token = lowercase hex SHA-256 of the raw key (LiteLLM's format); the raw key is
-- never stored. Deleting a team, an organization or a user deletes their keys.
CREATE TABLE api_keys (
    token                 TEXT COLLATE "C" PRIMARY KEY,
    key_name              TEXT NOT NULL,
    key_alias             TEXT COLLATE "C",
    models                TEXT NOT NULL DEFAULT '[]',
    aliases               TEXT NOT NULL DEFAULT '{}',
    team_id               TEXT COLLATE "C" REFERENCES teams(id) ON DELETE CASCADE,
    user_id               TEXT COLLATE "C" REFERENCES users(id) ON DELETE CASCADE,
    organization_id       TEXT COLLATE "C" REFERENCES organizations(id) ON DELETE CASCADE,
    expires               TEXT,
    blocked               BIGINT NOT NULL DEFAULT 0,
    spend                 DOUBLE PRECISION NOT NULL DEFAULT 0,
    max_budget            DOUBLE PRECISION,
    soft_budget           DOUBLE PRECISION,
    budget_duration       TEXT,
    budget_reset_at       TEXT COLLATE "C",
    tpm_limit             BIGINT,
    rpm_limit             BIGINT,
    max_parallel_requests BIGINT,
    metadata              TEXT NOT NULL DEFAULT '{}',
    created_at            TEXT COLLATE "C" NOT NULL,
    updated_at            TEXT COLLATE "C" NOT NULL,
    created_by            TEXT,
    updated_by            TEXT,
    -- schema 0005 on SQLite (authority, issue 11): see schema/0005_authority.sql.
    reach                 TEXT NOT NULL DEFAULT 'owner' CHECK (reach IN ('owner', 'calls')),
    issued_by             TEXT COLLATE "C" REFERENCES users(id) ON DELETE CASCADE,
    limits_rank           BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX api_keys_alias ON api_keys(key_alias) WHERE key_alias IS NOT NULL;
CREATE INDEX api_keys_team ON api_keys(team_id);
CREATE INDEX api_keys_user ON api_keys(user_id);
CREATE INDEX api_keys_org ON api_keys(organization_id);
CREATE INDEX api_keys_issued_by ON api_keys(issued_by) WHERE issued_by IS NOT NULL;

-- One row per model call. Ids are copied, not referenced: spend history outlives deleted keys.
CREATE TABLE spend_logs (
    id                BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    request_id        TEXT COLLATE "C" NOT NULL UNIQUE,
    api_key           TEXT COLLATE "C",
    team_id           TEXT COLLATE "C",
    organization_id   TEXT COLLATE "C",
    user_id           TEXT COLLATE "C",
    model             TEXT NOT NULL,
    call_type         TEXT NOT NULL,
    prompt_tokens     BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    total_tokens      BIGINT NOT NULL DEFAULT 0,
    spend             DOUBLE PRECISION NOT NULL DEFAULT 0,
    start_time        TEXT COLLATE "C" NOT NULL,
    end_time          TEXT COLLATE "C" NOT NULL,
    status            TEXT NOT NULL,
    metadata          TEXT NOT NULL DEFAULT '{}'
);
-- As SQLite after schema 0004: by key (and a user's keys) and by time.
CREATE INDEX spend_logs_key ON spend_logs(api_key, start_time);
CREATE INDEX spend_logs_time ON spend_logs(start_time);

-- Settings the server keeps for itself (e.g. the hash of a generated master key).
CREATE TABLE settings (
    name  TEXT COLLATE "C" PRIMARY KEY,
    value TEXT NOT NULL
);

-- Web UI sessions (SQLite schema 0002).
CREATE TABLE ui_sessions (
    token_hash  TEXT COLLATE "C" PRIMARY KEY,
    user_id     TEXT COLLATE "C" REFERENCES users(id) ON DELETE CASCADE,
    is_master   BIGINT NOT NULL DEFAULT 0 CHECK (is_master IN (0, 1)),
    master_hash TEXT,
    role        TEXT NOT NULL,
    created_at  TEXT COLLATE "C" NOT NULL,
    expires_at  TEXT COLLATE "C" NOT NULL,
    CHECK ((is_master = 1 AND user_id IS NULL AND master_hash IS NOT NULL)
        OR (is_master = 0 AND user_id IS NOT NULL))
);
CREATE INDEX ui_sessions_user ON ui_sessions(user_id);
CREATE INDEX ui_sessions_expires ON ui_sessions(expires_at);

-- Budget resets (SQLite schema 0003): only the rows that have a reset time.
CREATE INDEX api_keys_budget_reset ON api_keys(budget_reset_at) WHERE budget_reset_at IS NOT NULL;
CREATE INDEX teams_budget_reset ON teams(budget_reset_at) WHERE budget_reset_at IS NOT NULL;
CREATE INDEX users_budget_reset ON users(budget_reset_at) WHERE budget_reset_at IS NOT NULL;
CREATE INDEX budgets_budget_reset ON budgets(budget_reset_at) WHERE budget_reset_at IS NOT NULL;
