-- litegate schema, version 6 (issue 15 item 5): LiteLLM's team `model_aliases` and
-- `team_member_permissions`. Append-only: never edit once released.

-- A JSON object alias -> model: a key of the team calling the alias calls the model (applied
-- before the key's own aliases, as LiteLLM does; the access check is on the target).
ALTER TABLE teams ADD COLUMN model_aliases TEXT NOT NULL DEFAULT '{}';
-- A JSON list of key-management routes a plain member (role `user`) may call on the team's
-- keys. NULL = never set: litegate's rules before this version hold (a member manages their own
-- keys); a list (even []) = LiteLLM's rules (`access::authority::member_gate`).
ALTER TABLE teams ADD COLUMN member_permissions TEXT;
