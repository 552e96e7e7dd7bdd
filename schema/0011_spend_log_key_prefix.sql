-- litegate schema, version 11 (issue 17, round 4): the spend log's key index on the first 8
-- characters of the key's hash instead of all 64. Every model call inserts one entry into
-- this index; a whole hash made each entry ~100 bytes (~40 per page), the prefix ~40 (~100
-- per page): fewer pages to read and split (a row still dirties its key's leaf). Readers write
-- `substr(api_key, 1, 8) = substr(?, 1, 8) AND api_key = ?` (`db::spend::logs`): the index
-- finds the prefix's rows newest first and the exact test keeps the key's own (8 hex
-- characters: 2^32 values, so with a million keys a key shares its prefix with another one
-- ~0.02 % of the time; such a key's listing also walks the other one's entries, dropped by the
-- exact test). Append-only: never edit once released.
DROP INDEX spend_logs_key;
CREATE INDEX spend_logs_key ON spend_logs(substr(api_key, 1, 8), start_time);
