-- litegate schema, version 2: indexes for the budget-reset thread (issue 6). Without them
-- `reset_due` scanned every key (1M rows, ~400 MB through the memory map) once a minute inside
-- a write transaction, stalling every spend write meanwhile. Partial: most rows have no reset.
CREATE INDEX api_keys_budget_reset ON api_keys(budget_reset_at) WHERE budget_reset_at IS NOT NULL;
CREATE INDEX teams_budget_reset ON teams(budget_reset_at) WHERE budget_reset_at IS NOT NULL;
CREATE INDEX users_budget_reset ON users(budget_reset_at) WHERE budget_reset_at IS NOT NULL;
CREATE INDEX budgets_budget_reset ON budgets(budget_reset_at) WHERE budget_reset_at IS NOT NULL;
