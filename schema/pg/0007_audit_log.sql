-- litegate's PostgreSQL schema, version 7 (issue 16 item 3): the audit log (the twin of
-- SQLite's schema/0010_audit_log.sql). Append-only.
CREATE TABLE audit_log (
    id                 TEXT COLLATE "C" PRIMARY KEY,
    updated_at         TEXT COLLATE "C" NOT NULL,
    changed_by         TEXT COLLATE "C",
    changed_by_api_key TEXT COLLATE "C",
    changed_by_role    TEXT COLLATE "C" NOT NULL,
    action             TEXT COLLATE "C" NOT NULL,
    table_name         TEXT COLLATE "C" NOT NULL,
    object_id          TEXT COLLATE "C" NOT NULL,
    organization_id    TEXT COLLATE "C",
    before_value       TEXT,
    updated_values     TEXT
);
CREATE INDEX audit_log_time ON audit_log(updated_at, id);
CREATE INDEX audit_log_object ON audit_log(table_name, object_id, updated_at);
CREATE INDEX audit_log_org ON audit_log(organization_id, updated_at);
