-- The budget-reset thread looks for holders whose budget_reset_at has passed. Without these
-- partial indexes it scanned every key (1M in the benchmark) inside a write transaction every
-- minute; with them it reads only the rows that have a reset time.
CREATE INDEX api_keys_budget_reset ON api_keys(budget_reset_at) WHERE budget_reset_at IS NOT NULL;
CREATE INDEX teams_budget_reset ON teams(budget_reset_at) WHERE budget_reset_at IS NOT NULL;
CREATE INDEX users_budget_reset ON users(budget_reset_at) WHERE budget_reset_at IS NOT NULL;
CREATE INDEX budgets_budget_reset ON budgets(budget_reset_at) WHERE budget_reset_at IS NOT NULL;
