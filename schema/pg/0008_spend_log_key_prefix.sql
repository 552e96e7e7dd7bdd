-- As SQLite's schema 0011 (issue 17, round 4): the spend log's key index on the first 8
-- characters of the key's hash; readers by key write
-- `substr(api_key, 1, 8) = substr(?, 1, 8) AND api_key = ?`. Append-only.
DROP INDEX spend_logs_key;
CREATE INDEX spend_logs_key ON spend_logs (substr(api_key, 1, 8), start_time);
