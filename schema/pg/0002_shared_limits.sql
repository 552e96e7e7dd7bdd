-- litegate's PostgreSQL schema, version 2 (issue 14 item 3): budgets' reservations, rpm/tpm
-- windows and parallel leases shared by every litegate instance on this database. Append-only.
-- PostgreSQL only: on SQLite one process owns the file and keeps these in memory
-- (src/call/budget.rs, src/call/limits.rs), so SQLite has no twin of this migration.
--
-- `scope` is the level a budget or limit is set at: key, team, org, user, team_member,
-- org_member (`db::leases::code`); `holder` is its id (`team/user` and `org/user` for the
-- memberships). Timestamps and seconds are the database's clock: instances' clocks may differ.

-- What admitted calls hold while they run: a budget reservation (`amount` = the call's estimated
-- cost) on each budget that applies, a parallel slot (`amount` = 1) on each level with
-- `max_parallel_requests`. All rows of one call share its `id`; the call deletes them when it
-- ends. `expires_at` is pushed on by the instance that holds them (heartbeat), so the rows of
-- a crashed instance stop counting by themselves; expired rows are ignored and swept.
CREATE SEQUENCE litegate_call_ids;

CREATE TABLE litegate_leases (
    id          BIGINT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('budget', 'parallel')),
    scope       TEXT COLLATE "C" NOT NULL,
    holder      TEXT COLLATE "C" NOT NULL,
    amount      DOUBLE PRECISION NOT NULL,
    instance    TEXT NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX litegate_leases_holder ON litegate_leases (scope, holder, kind);
CREATE INDEX litegate_leases_id ON litegate_leases (id);
CREATE INDEX litegate_leases_expiry ON litegate_leases (expires_at);

-- Requests (rpm) and tokens (tpm) per one-second bucket of the database's clock; a window is
-- the 60 buckets up to now. Buckets older than the window are swept.
CREATE TABLE litegate_rates (
    scope   TEXT COLLATE "C" NOT NULL,
    holder  TEXT COLLATE "C" NOT NULL,
    kind    TEXT NOT NULL CHECK (kind IN ('rpm', 'tpm')),
    sec     BIGINT NOT NULL,
    n       BIGINT NOT NULL,
    PRIMARY KEY (scope, holder, kind, sec)
);

-- Whole seconds until the window of (scope, holder, kind) at second `now_s` holds less than
-- `cap` (1..60; 60 when nothing helps, as with cap 0): the in-memory limiter's `retry_after`.
CREATE FUNCTION litegate_retry_after(p_scope TEXT, p_holder TEXT, p_kind TEXT, now_s BIGINT,
                                     total BIGINT, cap BIGINT) RETURNS BIGINT
LANGUAGE plpgsql AS $$
DECLARE
    b RECORD;
    left_n BIGINT := total;
BEGIN
    FOR b IN SELECT r.sec, r.n FROM litegate_rates r
             WHERE r.scope = p_scope AND r.holder = p_holder AND r.kind = p_kind
               AND r.sec > now_s - 60 AND r.sec <= now_s
             ORDER BY r.sec LOOP
        left_n := left_n - b.n;
        IF left_n < cap THEN
            RETURN b.sec + 60 - now_s;
        END IF;
    END LOOP;
    RETURN 60;
END $$;

-- One admission, in one round trip and one transaction (the caller runs it as a statement of
-- its own). Arrays: the budgets that apply (b_*: scope, holder, the ids to find its spend by,
-- max budget) and the rate limits (l_*: scope, holder, rpm, tpm, max parallel; NULL = none).
--
-- 1. An advisory lock per (scope, holder) of both lists, in sorted order (no deadlocks),
--    held until the end of this transaction: admissions on a common holder run one at a time
--    across all instances.
-- 2. Budgets: for each, recorded spend + live reservations, read by ONE statement (one snapshot:
--    a call's spend is committed before its reservation is deleted, so a snapshot sees one of
--    them, never neither); the first at or over its max refuses.
-- 3. Limits: requests and tokens in the last 60 s, live parallel leases; of the limits that
--    refuse, the one with the longest wait is reported (as in memory).
-- 4. Admitted: a reservation per budget (when p_estimate > 0), a parallel lease per level
--    with a parallel limit, one request in each rpm window.
--
-- Returns one row: lease = the call's id when rows were inserted (the caller deletes them at
-- the end), refused = NULL or 'budget' | 'rpm' | 'tpm' | 'parallel' with idx (1-based, into
-- b_* or l_*), spend (a budget's recorded spend), retry_after (seconds).
CREATE FUNCTION litegate_admit(
    p_instance TEXT, p_ttl DOUBLE PRECISION, p_estimate DOUBLE PRECISION,
    b_scope TEXT[], b_holder TEXT[], b_a TEXT[], b_b TEXT[], b_max DOUBLE PRECISION[],
    l_scope TEXT[], l_holder TEXT[], l_rpm BIGINT[], l_tpm BIGINT[], l_parallel BIGINT[])
RETURNS TABLE (lease BIGINT, refused TEXT, idx INTEGER, spend DOUBLE PRECISION,
               retry_after BIGINT)
LANGUAGE plpgsql
SET lock_timeout = '5s'
AS $$
DECLARE
    k INTEGER;
    r RECORD;
    t TIMESTAMPTZ;
    now_s BIGINT;
    ra BIGINT;
    worst TEXT := NULL;
    worst_i INTEGER;
    worst_ra BIGINT := 0;
    v_lease BIGINT := NULL;
    n_rows BIGINT;
BEGIN
    FOR k IN SELECT DISTINCT hashtext(x.s || ':' || x.h)
             FROM unnest(b_scope || l_scope, b_holder || l_holder) AS x(s, h) ORDER BY 1 LOOP
        PERFORM pg_advisory_xact_lock(26983, k);
    END LOOP;
    t := clock_timestamp();
    now_s := floor(extract(epoch FROM t))::BIGINT;

    FOR r IN
        SELECT i,
            CASE b_scope[i]
                WHEN 'key' THEN (SELECT x.spend FROM api_keys x WHERE x.token = b_a[i])
                WHEN 'team' THEN (SELECT x.spend FROM teams x WHERE x.id = b_a[i])
                WHEN 'org' THEN (SELECT x.spend FROM organizations x WHERE x.id = b_a[i])
                WHEN 'user' THEN (SELECT x.spend FROM users x WHERE x.id = b_a[i])
                WHEN 'team_member' THEN (SELECT x.spend FROM team_members x
                                         WHERE x.team_id = b_a[i] AND x.user_id = b_b[i])
                WHEN 'org_member' THEN (SELECT x.spend FROM organization_members x
                                        WHERE x.organization_id = b_a[i] AND x.user_id = b_b[i])
            END AS spent,
            (SELECT COALESCE(sum(l.amount), 0) FROM litegate_leases l
             WHERE l.scope = b_scope[i] AND l.holder = b_holder[i] AND l.kind = 'budget'
               AND l.expires_at > t) AS reserved
        FROM generate_subscripts(b_scope, 1) AS i
        ORDER BY i
    LOOP
        IF COALESCE(r.spent, 0) + r.reserved >= b_max[r.i] THEN
            RETURN QUERY SELECT NULL::BIGINT, 'budget'::TEXT, r.i, COALESCE(r.spent, 0), 0::BIGINT;
            RETURN;
        END IF;
    END LOOP;

    FOR r IN
        SELECT i,
            (SELECT COALESCE(sum(x.n), 0)::BIGINT FROM litegate_rates x
             WHERE x.scope = l_scope[i] AND x.holder = l_holder[i] AND x.kind = 'rpm'
               AND x.sec > now_s - 60 AND x.sec <= now_s) AS requests,
            (SELECT COALESCE(sum(x.n), 0)::BIGINT FROM litegate_rates x
             WHERE x.scope = l_scope[i] AND x.holder = l_holder[i] AND x.kind = 'tpm'
               AND x.sec > now_s - 60 AND x.sec <= now_s) AS tokens,
            (SELECT count(*) FROM litegate_leases l
             WHERE l.scope = l_scope[i] AND l.holder = l_holder[i] AND l.kind = 'parallel'
               AND l.expires_at > t) AS in_flight
        FROM generate_subscripts(l_scope, 1) AS i
        ORDER BY i
    LOOP
        IF l_rpm[r.i] IS NOT NULL AND r.requests >= l_rpm[r.i] THEN
            ra := litegate_retry_after(l_scope[r.i], l_holder[r.i], 'rpm', now_s, r.requests,
                                       l_rpm[r.i]);
            IF worst IS NULL OR ra > worst_ra THEN
                worst := 'rpm'; worst_i := r.i; worst_ra := ra;
            END IF;
        END IF;
        IF l_tpm[r.i] IS NOT NULL AND r.tokens >= l_tpm[r.i] THEN
            ra := litegate_retry_after(l_scope[r.i], l_holder[r.i], 'tpm', now_s, r.tokens,
                                       l_tpm[r.i]);
            IF worst IS NULL OR ra > worst_ra THEN
                worst := 'tpm'; worst_i := r.i; worst_ra := ra;
            END IF;
        END IF;
        IF l_parallel[r.i] IS NOT NULL AND r.in_flight >= l_parallel[r.i] THEN
            -- Slots free when calls end, which no window predicts.
            IF worst IS NULL OR 1 > worst_ra THEN
                worst := 'parallel'; worst_i := r.i; worst_ra := 1;
            END IF;
        END IF;
    END LOOP;
    IF worst IS NOT NULL THEN
        RETURN QUERY SELECT NULL::BIGINT, worst, worst_i, NULL::DOUBLE PRECISION, worst_ra;
        RETURN;
    END IF;

    IF p_estimate > 0 AND cardinality(b_scope) > 0 THEN
        v_lease := nextval('litegate_call_ids');
        INSERT INTO litegate_leases (id, kind, scope, holder, amount, instance, expires_at)
        SELECT v_lease, 'budget', b_scope[i], b_holder[i], p_estimate, p_instance,
               t + p_ttl * interval '1 second'
        FROM generate_subscripts(b_scope, 1) AS i;
    END IF;
    SELECT count(*) INTO n_rows FROM unnest(l_parallel) AS p WHERE p IS NOT NULL;
    IF n_rows > 0 THEN
        IF v_lease IS NULL THEN
            v_lease := nextval('litegate_call_ids');
        END IF;
        INSERT INTO litegate_leases (id, kind, scope, holder, amount, instance, expires_at)
        SELECT v_lease, 'parallel', l_scope[i], l_holder[i], 1, p_instance,
               t + p_ttl * interval '1 second'
        FROM generate_subscripts(l_scope, 1) AS i
        WHERE l_parallel[i] IS NOT NULL;
    END IF;
    INSERT INTO litegate_rates AS x (scope, holder, kind, sec, n)
    SELECT l_scope[i], l_holder[i], 'rpm', now_s, 1
    FROM generate_subscripts(l_scope, 1) AS i
    WHERE l_rpm[i] IS NOT NULL
    ORDER BY 1, 2
    ON CONFLICT (scope, holder, kind, sec) DO UPDATE SET n = x.n + 1;

    RETURN QUERY SELECT v_lease, NULL::TEXT, NULL::INTEGER, NULL::DOUBLE PRECISION, NULL::BIGINT;
END $$;
