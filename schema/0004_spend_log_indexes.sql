-- Issue 6: every model call inserts one spend-log row, and every index on spend_logs is one
-- more page written to the WAL per call. `/spend/logs` reads by request id, by key (and the
-- keys of a user) and by time; team, organization and user filters walk the time index.
-- Request ids are UUID v7 from here on, so the request_id index grows at its right edge.
DROP INDEX spend_logs_team;
DROP INDEX spend_logs_org;
DROP INDEX spend_logs_user;
