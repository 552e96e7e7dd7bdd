-- litegate schema, version 5: authority never grows (issue 11). Append-only: never edit once
-- released. Ranks: 0 = member/owner, 1 = team admin, 2 = org admin, 3 = proxy admin.

-- reach: 'owner' = the key acts as its owner (issued by the owner, or by a proxy admin);
-- 'calls' = issued or regenerated for its owner by someone else below proxy admin, who saw the
-- raw key: it makes model calls within its team and reads itself, nothing else.
ALTER TABLE api_keys ADD COLUMN reach TEXT NOT NULL DEFAULT 'owner'
    CHECK (reach IN ('owner', 'calls'));
-- For a calls-only key: who issued (or last regenerated) it and so holds the raw key. The key
-- goes when that user is deleted, and when they lose the team or org admin role it was issued
-- under (`http::grant`). NULL for keys that act as their owner.
ALTER TABLE api_keys ADD COLUMN issued_by TEXT REFERENCES users(id) ON DELETE CASCADE;
CREATE INDEX api_keys_issued_by ON api_keys(issued_by) WHERE issued_by IS NOT NULL;
-- The rank of the highest admin who set the key's limits (blocked, expiry, budgets, rate limits,
-- models): a lower rank may only tighten them.
ALTER TABLE api_keys ADD COLUMN limits_rank INTEGER NOT NULL DEFAULT 0;
-- Who blocked the team (a lower rank may not unblock it), and who set its models, budgets and
-- limits (a lower rank may only tighten them).
ALTER TABLE teams ADD COLUMN blocked_rank INTEGER NOT NULL DEFAULT 0;
ALTER TABLE teams ADD COLUMN limits_rank INTEGER NOT NULL DEFAULT 0;
-- Who set a membership's budget (`max_budget_in_team` / `max_budget_in_organization`).
ALTER TABLE team_members ADD COLUMN budget_rank INTEGER NOT NULL DEFAULT 0;
ALTER TABLE organization_members ADD COLUMN budget_rank INTEGER NOT NULL DEFAULT 0;

-- Rows written before this version: who set them is unknown, so assume the highest rank (only a
-- proxy admin lifts what was there before the upgrade; anyone may still tighten it).
UPDATE api_keys SET limits_rank = 3
    WHERE blocked <> 0 OR expires IS NOT NULL OR max_budget IS NOT NULL
       OR budget_duration IS NOT NULL OR tpm_limit IS NOT NULL OR rpm_limit IS NOT NULL
       OR max_parallel_requests IS NOT NULL;
UPDATE teams SET blocked_rank = 3 WHERE blocked <> 0;
UPDATE teams SET limits_rank = 3
    WHERE models <> '[]' OR max_budget IS NOT NULL OR budget_duration IS NOT NULL
       OR tpm_limit IS NOT NULL OR rpm_limit IS NOT NULL OR max_parallel_requests IS NOT NULL;
UPDATE team_members SET budget_rank = 3 WHERE budget_id IS NOT NULL;
UPDATE organization_members SET budget_rank = 3 WHERE budget_id IS NOT NULL;
-- Keys an earlier version let someone else mint for their owner (neither the owner nor the
-- master key nor a proxy admin user): they act for model calls only from now on. A regenerate
-- by someone else left no trace and cannot be found here.
UPDATE api_keys SET reach = 'calls'
    WHERE user_id IS NOT NULL AND created_by IS NOT NULL AND created_by <> user_id
      AND created_by <> 'default_user_id'
      AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = api_keys.created_by
                                              AND u.user_role = 'proxy_admin');
UPDATE api_keys SET issued_by = created_by
    WHERE reach = 'calls' AND EXISTS (SELECT 1 FROM users u WHERE u.id = api_keys.created_by);
