-- litegate schema, version 10 (issue 16 item 3): the audit log. One row per management write,
-- inserted in the write's own transaction (`src/audit.rs`). Column names follow LiteLLM's
-- LiteLLM_AuditLog where they exist. Never a secret: values are scrubbed before they are
-- stored. `organization_id`: the organization the object belongs to at write time, so that an
-- org admin's listing is one indexed query. Append-only: never edit once released.
CREATE TABLE audit_log (
    id                 TEXT PRIMARY KEY,
    updated_at         TEXT NOT NULL,
    changed_by         TEXT,
    changed_by_api_key TEXT,
    changed_by_role    TEXT NOT NULL,
    action             TEXT NOT NULL,
    table_name         TEXT NOT NULL,
    object_id          TEXT NOT NULL,
    organization_id    TEXT,
    before_value       TEXT,
    updated_values     TEXT
);
CREATE INDEX audit_log_time ON audit_log(updated_at, id);
CREATE INDEX audit_log_object ON audit_log(table_name, object_id, updated_at);
CREATE INDEX audit_log_org ON audit_log(organization_id, updated_at);
