-- litegate's PostgreSQL schema, version 4 (issue 15 item 4): end users (LiteLLM's customers,
-- LiteLLM_EndUserTable). Twin of schema/0007_end_users.sql, plus `litegate_admit` taught the
-- end user's budget (scope 'end_user'). Append-only.

-- An end user is who a model call's `user` field names: a customer of the caller, not a litegate
-- user (no login, no keys). `spend` is what calls naming them cost; the budget and rate limits
-- that apply to them are their budget row's (`budget_id`, LiteLLM's LiteLLM_BudgetTable), else
-- the config's defaults (`litellm_settings.max_end_user_budget`, `max_end_user_budget_id`).
-- A call naming an unknown end user creates the row with its first spend (as LiteLLM does).
-- `allowed_model_region` ('eu' | 'us') and `default_model` are stored as LiteLLM stores them.
CREATE TABLE end_users (
    id                   TEXT COLLATE "C" PRIMARY KEY,
    alias                TEXT,
    spend                DOUBLE PRECISION NOT NULL DEFAULT 0,
    allowed_model_region TEXT,
    default_model        TEXT,
    budget_id            TEXT COLLATE "C" REFERENCES budgets(id) ON DELETE SET NULL,
    blocked              BIGINT NOT NULL DEFAULT 0,
    created_at           TEXT COLLATE "C" NOT NULL,
    updated_at           TEXT COLLATE "C" NOT NULL
);
CREATE INDEX end_users_budget ON end_users (budget_id);

-- `litegate_admit` of version 2, unchanged but for one more scope in its CASE: an end user's
-- budget holder is the end user's id (`end_user`), its spend the end_users row's (none yet: 0).
CREATE OR REPLACE FUNCTION litegate_admit(
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
                WHEN 'end_user' THEN (SELECT x.spend FROM end_users x WHERE x.id = b_a[i])
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
