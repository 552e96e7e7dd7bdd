-- litegate's PostgreSQL schema, version 5 (issue 15 item 3): models managed at runtime. Twin
-- of schema/0008_proxy_models.sql (read its comments). Append-only.

CREATE TABLE proxy_models (
    model_id        TEXT COLLATE "C" PRIMARY KEY,
    model_name      TEXT COLLATE "C" NOT NULL,
    litellm_params  TEXT NOT NULL,
    model_info      TEXT NOT NULL DEFAULT '{}',
    team_id         TEXT COLLATE "C" REFERENCES teams(id) ON DELETE CASCADE,
    created_at      TEXT NOT NULL,
    created_by      TEXT,
    updated_at      TEXT NOT NULL,
    updated_by      TEXT
);
CREATE INDEX proxy_models_team ON proxy_models(team_id);

CREATE TABLE model_generation (
    id          BIGINT PRIMARY KEY CHECK (id = 1),
    generation  BIGINT NOT NULL
);
INSERT INTO model_generation (id, generation) VALUES (1, 0);

CREATE FUNCTION litegate_models_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE model_generation SET generation = generation + 1 WHERE id = 1;
    RETURN NULL;
END $$;
CREATE TRIGGER proxy_models_bump AFTER INSERT OR UPDATE OR DELETE ON proxy_models
    FOR EACH STATEMENT EXECUTE FUNCTION litegate_models_bump();
