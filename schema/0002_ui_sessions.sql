-- litegate schema, version 2: web UI sessions. Append-only: never edit once released.
-- A session is created by `POST /ui/login` and named by a cookie holding 32 random bytes;
-- only the SHA-256 (lowercase hex) of that cookie value is stored, as for keys.
-- A master-key session has no user and records the hash of the master key it was opened with,
-- so rotating the master key ends those sessions. A user session takes the user's *current*
-- role at every request (joined at lookup), and goes with the user (ON DELETE CASCADE).
CREATE TABLE ui_sessions (
    token_hash  TEXT PRIMARY KEY,
    user_id     TEXT REFERENCES users(id) ON DELETE CASCADE,
    is_master   INTEGER NOT NULL DEFAULT 0 CHECK (is_master IN (0, 1)),
    master_hash TEXT,
    -- The role at login (for the record; authorization uses the user's current role).
    role        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    CHECK ((is_master = 1 AND user_id IS NULL AND master_hash IS NOT NULL)
        OR (is_master = 0 AND user_id IS NOT NULL))
) WITHOUT ROWID;
CREATE INDEX ui_sessions_user ON ui_sessions(user_id);
CREATE INDEX ui_sessions_expires ON ui_sessions(expires_at);
