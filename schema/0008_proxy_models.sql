-- litegate schema, version 8 (issue 15 item 3): models managed at runtime (LiteLLM's
-- `store_model_in_db`, its LiteLLM_ProxyModelTable). Append-only: never edit once released.

-- One deployment added by /model/new. `litellm_params` is a JSON object whose string values
-- are encrypted as LiteLLM encrypts them (`crypt.rs`); `model_info` is plain JSON (its `id` is
-- `model_id`; `team_id` is copied to the column for the cascade).
CREATE TABLE proxy_models (
    model_id        TEXT PRIMARY KEY,
    model_name      TEXT NOT NULL,
    litellm_params  TEXT NOT NULL,
    model_info      TEXT NOT NULL DEFAULT '{}',
    team_id         TEXT REFERENCES teams(id) ON DELETE CASCADE,
    created_at      TEXT NOT NULL,
    created_by      TEXT,
    updated_at      TEXT NOT NULL,
    updated_by      TEXT
) WITHOUT ROWID;
CREATE INDEX proxy_models_team ON proxy_models(team_id);

-- The models' generation: bumped by every change of proxy_models (the triggers below, so a
-- team's deletion cascading to its models counts too). THE key check reads it (one more
-- scalar subquery on the primary key); an instance whose loaded catalog is older reloads
-- before it answers (several instances on one PostgreSQL, no TTL).
CREATE TABLE model_generation (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    generation  INTEGER NOT NULL
);
INSERT INTO model_generation (id, generation) VALUES (1, 0);
CREATE TRIGGER proxy_models_insert AFTER INSERT ON proxy_models
BEGIN UPDATE model_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER proxy_models_update AFTER UPDATE ON proxy_models
BEGIN UPDATE model_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER proxy_models_delete AFTER DELETE ON proxy_models
BEGIN UPDATE model_generation SET generation = generation + 1 WHERE id = 1; END;
