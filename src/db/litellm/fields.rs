//! What `import-litellm` carries of LiteLLM's tables and columns, and what not and why: the
//! one list that the report (`Report::unmapped`) and README "Moving from LiteLLM" are made
//! from. A column that LiteLLM has and that is in neither list is reported as "unknown to
//! this importer" (a LiteLLM newer than this list), never silently dropped.

/// A LiteLLM table that is read, with the columns that are carried (into what).
pub struct Carried {
    pub table: &'static str,
    pub columns: &'static [&'static str],
}

/// The imported tables and the columns carried from each (the mapping is `map.rs`).
pub const CARRIED: &[Carried] = &[
    Carried {
        table: "LiteLLM_BudgetTable",
        columns: &[
            "budget_id",
            "max_budget",
            "soft_budget",
            "max_parallel_requests",
            "tpm_limit",
            "rpm_limit",
            "model_max_budget",
            "budget_duration",
            "budget_reset_at",
            "created_at",
            "created_by",
            "updated_at",
            "updated_by",
        ],
    },
    Carried {
        table: "LiteLLM_OrganizationTable",
        columns: &[
            "organization_id",
            "organization_alias",
            "budget_id",
            "metadata",
            "models",
            "spend",
            "created_at",
            "created_by",
            "updated_at",
            "updated_by",
        ],
    },
    Carried {
        table: "LiteLLM_OrganizationMembership",
        columns: &[
            "user_id",
            "organization_id",
            "user_role",
            "spend",
            "budget_id",
            "created_at",
            "updated_at",
        ],
    },
    Carried {
        table: "LiteLLM_TeamTable",
        columns: &[
            "team_id",
            "team_alias",
            "organization_id",
            "admins",
            "members",
            "members_with_roles",
            "metadata",
            "max_budget",
            "soft_budget",
            "spend",
            "models",
            "max_parallel_requests",
            "tpm_limit",
            "rpm_limit",
            "budget_duration",
            "budget_reset_at",
            "blocked",
            "created_at",
            "updated_at",
            "team_member_permissions",
            "model_id",
        ],
    },
    Carried {
        table: "LiteLLM_ModelTable",
        columns: &[
            "id",
            "aliases",
            "created_at",
            "created_by",
            "updated_at",
            "updated_by",
        ],
    },
    Carried {
        table: "LiteLLM_TeamMembership",
        columns: &["user_id", "team_id", "spend", "budget_id"],
    },
    Carried {
        table: "LiteLLM_UserTable",
        columns: &[
            "user_id",
            "user_alias",
            "teams",
            "user_role",
            "max_budget",
            "spend",
            "user_email",
            "models",
            "metadata",
            "max_parallel_requests",
            "tpm_limit",
            "rpm_limit",
            "budget_duration",
            "budget_reset_at",
            "created_at",
            "updated_at",
        ],
    },
    Carried {
        table: "LiteLLM_VerificationToken",
        columns: &[
            "token",
            "key_name",
            "key_alias",
            "spend",
            "expires",
            "models",
            "aliases",
            "user_id",
            "team_id",
            "max_parallel_requests",
            "metadata",
            "blocked",
            "tpm_limit",
            "rpm_limit",
            "max_budget",
            "budget_duration",
            "budget_reset_at",
            "budget_id",
            "organization_id",
            "created_at",
            "created_by",
            "updated_at",
            "updated_by",
        ],
    },
    Carried {
        table: "LiteLLM_EndUserTable",
        columns: &[
            "user_id",
            "alias",
            "spend",
            "allowed_model_region",
            "default_model",
            "budget_id",
            "blocked",
        ],
    },
    Carried {
        table: "LiteLLM_ProxyModelTable",
        columns: &[
            "model_id",
            "model_name",
            "litellm_params",
            "model_info",
            "created_at",
            "created_by",
            "updated_at",
            "updated_by",
        ],
    },
    Carried {
        table: "LiteLLM_SpendLogs",
        columns: &[
            "request_id",
            "call_type",
            "api_key",
            "spend",
            "total_tokens",
            "prompt_tokens",
            "completion_tokens",
            "startTime",
            "endTime",
            "model",
            "model_group",
            "user",
            "team_id",
            "organization_id",
            "end_user",
            "status",
            "request_tags",
            "model_id",
            "custom_llm_provider",
            "cache_hit",
        ],
    },
];

/// Columns of the imported tables that are NOT carried, and why ("*" = every table).
pub const NOT_CARRIED: &[(&str, &str, &str)] = &[
    ("*", "object_permission_id", "object permissions (MCP servers, vector stores) are not a litegate feature"),
    ("*", "model_spend", "per-model spend counters: litegate keeps spend per key/team/org/user, the spend logs keep the model"),
    ("*", "model_max_budget", "per-model budgets are not enforced by litegate (a budget row's model_max_budget text is kept, unenforced)"),
    ("*", "allowed_cache_controls", "cache-control restrictions: litegate has no response cache"),
    ("*", "budget_limits", "multi-window budgets (LiteLLM 1.109): litegate has one budget window per level"),
    ("*", "access_group_ids", "LiteLLM 1.109's DB access groups: litegate's access groups are model_info.access_groups in the config"),
    ("*", "project_id", "projects (LiteLLM 1.109) are not a litegate level"),
    ("LiteLLM_BudgetTable", "tpd_limit", "tokens-per-day limits are not a litegate limit"),
    ("LiteLLM_BudgetTable", "allowed_models", "model scope on a membership budget is not a litegate feature (the team's models govern)"),
    ("LiteLLM_BudgetTable", "temp_budget_increase", "temporary budget increases are not a litegate feature"),
    ("LiteLLM_BudgetTable", "temp_budget_expiry", "temporary budget increases are not a litegate feature"),
    ("LiteLLM_TeamMembership", "total_spend", "litegate keeps one spend counter per membership (`spend`, carried)"),
    ("LiteLLM_TeamTable", "default_team_member_models", "litegate gives new members no model list of their own; the team's models govern"),
    ("LiteLLM_UserTable", "password", "LiteLLM stores an unsalted SHA-256 of the password; litegate stores argon2id only: users get a new password from an admin (/user/update)"),
    ("LiteLLM_UserTable", "sso_user_id", "litegate has no SSO login"),
    ("LiteLLM_UserTable", "team_id", "legacy single-team field; team memberships are imported from TeamMembership, members_with_roles and teams[]"),
    ("LiteLLM_UserTable", "organization_id", "legacy single-org field; organization memberships come from OrganizationMembership"),
    ("LiteLLM_VerificationToken", "soft_budget_cooldown", "alert state of LiteLLM's soft-budget e-mails: litegate sends no alerts"),
    ("LiteLLM_VerificationToken", "config", "per-key litellm config overrides are not a litegate feature"),
    ("LiteLLM_VerificationToken", "permissions", "per-key permission flags (e.g. get_spend_routes) are not a litegate feature"),
    ("LiteLLM_VerificationToken", "allowed_routes", "litegate decides routes by role and key reach, not per key"),
    ("LiteLLM_VerificationToken", "key_type", "LiteLLM 1.109 key types: a litegate key is a normal key"),
    ("LiteLLM_VerificationToken", "rotation_count", "automatic key rotation is not a litegate feature"),
    ("LiteLLM_VerificationToken", "auto_rotate", "automatic key rotation is not a litegate feature"),
    ("LiteLLM_VerificationToken", "rotation_interval", "automatic key rotation is not a litegate feature"),
    ("LiteLLM_VerificationToken", "last_rotation_at", "automatic key rotation is not a litegate feature"),
    ("LiteLLM_VerificationToken", "key_rotation_at", "automatic key rotation is not a litegate feature"),
    ("LiteLLM_VerificationToken", "last_active", "last-use time is not kept by litegate"),
    ("LiteLLM_SpendLogs", "completionStartTime", "time to first token is not kept in litegate's spend logs"),
    ("LiteLLM_SpendLogs", "api_base", "upstream URLs are not kept in litegate's spend logs"),
    ("LiteLLM_SpendLogs", "cache_key", "litegate has no response cache"),
    ("LiteLLM_SpendLogs", "requester_ip_address", "client addresses are not kept in spend logs"),
    ("LiteLLM_SpendLogs", "messages", "request bodies are never stored by litegate"),
    ("LiteLLM_SpendLogs", "response", "response bodies are never stored by litegate"),
    ("LiteLLM_SpendLogs", "proxy_server_request", "request bodies are never stored by litegate"),
    ("LiteLLM_SpendLogs", "session_id", "sessions are not a litegate notion"),
    ("LiteLLM_SpendLogs", "mcp_namespaced_tool_name", "MCP is not a litegate feature"),
];

/// LiteLLM tables that are not imported at all, and why. A `LiteLLM_*` table in no list is
/// reported as "unknown to this importer".
pub const TABLES_NOT_IMPORTED: &[(&str, &str)] = &[
    ("LiteLLM_CredentialsTable", "stored provider credentials (encrypted with LITELLM_SALT_KEY): put them in config.yaml as os.environ/ values"),
    ("LiteLLM_DeprecatedVerificationToken", "old hashes of regenerated keys: their grace period is not carried, the regenerated key is"),
    ("LiteLLM_Config", "DB-stored general_settings: put them in config.yaml"),
    ("LiteLLM_TagTable", "tag budgets are not a litegate feature"),
    ("LiteLLM_ObjectPermissionTable", "object permissions (MCP, vector stores) are not a litegate feature"),
    ("LiteLLM_AccessGroupTable", "DB access groups: declare them as model_info.access_groups in config.yaml"),
    ("LiteLLM_ProjectTable", "projects are not a litegate level"),
    ("LiteLLM_BudgetWindowSpend", "multi-window budget state: litegate has one window per level (its spend, carried)"),
    ("LiteLLM_MCPServerTable", "MCP is not a litegate feature"),
    ("LiteLLM_AgentsTable", "agents are not a litegate feature"),
    ("LiteLLM_ErrorLogs", "error history: not carried"),
    ("LiteLLM_UserNotifications", "model access requests: not a litegate feature"),
    ("LiteLLM_InvitationLink", "invitation links: create users in litegate and set their passwords"),
    ("LiteLLM_AuditLog", "history only (and its object_id may hold raw keys): not carried"),
    ("LiteLLM_DeletedVerificationToken", "history of deleted keys: not carried"),
    ("LiteLLM_DeletedTeamTable", "history of deleted teams: not carried"),
    ("LiteLLM_DailyUserSpend", "daily spend roll-ups: the current counters are carried; --with-spend-logs carries the per-call history"),
    ("LiteLLM_DailyTeamSpend", "daily spend roll-ups: see LiteLLM_DailyUserSpend"),
    ("LiteLLM_DailyOrganizationSpend", "daily spend roll-ups: see LiteLLM_DailyUserSpend"),
    ("LiteLLM_DailyEndUserSpend", "daily spend roll-ups: see LiteLLM_DailyUserSpend"),
    ("LiteLLM_DailyTagSpend", "daily spend roll-ups: see LiteLLM_DailyUserSpend"),
    ("LiteLLM_CronJob", "LiteLLM's own job scheduling"),
    ("LiteLLM_ManagedFileTable", "files API state: not a litegate feature"),
    ("LiteLLM_ManagedObjectTable", "batch and fine-tuning jobs: not a litegate feature"),
    ("LiteLLM_ManagedVectorStoresTable", "vector stores: not a litegate feature"),
    ("LiteLLM_ManagedVectorStoreIndexTable", "vector stores: not a litegate feature"),
    ("LiteLLM_GuardrailsTable", "guardrails: not a litegate feature"),
    ("LiteLLM_PromptTable", "prompt management: not a litegate feature"),
    ("LiteLLM_HealthCheckTable", "model health-check history: not carried"),
    ("LiteLLM_SearchToolsTable", "search tools: not a litegate feature"),
    ("LiteLLM_SSOConfig", "litegate has no SSO login"),
    ("LiteLLM_CacheConfig", "litegate has no response cache"),
];

/// Why `column` of `table` is not carried, or `None` when it is carried.
pub fn why_not(table: &str, column: &str) -> Option<&'static str> {
    let carried = CARRIED
        .iter()
        .find(|c| c.table == table)
        .is_some_and(|c| c.columns.contains(&column));
    if carried {
        return None;
    }
    let why = NOT_CARRIED
        .iter()
        .find(|(t, c, _)| *t == table && *c == column)
        .or_else(|| {
            NOT_CARRIED
                .iter()
                .find(|(t, c, _)| *t == "*" && *c == column)
        })
        .map(|(_, _, w)| *w);
    Some(why.unwrap_or("unknown to this importer (a newer LiteLLM?): not carried"))
}

/// Why a `LiteLLM_*` table is not imported, or `None` when it is.
pub fn table_not_imported(table: &str) -> Option<&'static str> {
    if CARRIED.iter().any(|c| c.table == table) {
        return None;
    }
    Some(
        TABLES_NOT_IMPORTED
            .iter()
            .find(|(t, _)| *t == table)
            .map_or(
                "unknown to this importer (a newer LiteLLM?): not imported",
                |(_, w)| w,
            ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_do_not_overlap_and_every_reason_is_said() {
        for c in CARRIED {
            assert!(table_not_imported(c.table).is_none());
            assert!(
                TABLES_NOT_IMPORTED.iter().all(|(t, _)| *t != c.table),
                "{}",
                c.table
            );
            for col in c.columns {
                assert!(why_not(c.table, col).is_none());
                assert!(
                    NOT_CARRIED
                        .iter()
                        .all(|(t, n, _)| !(*t == c.table && n == col)),
                    "{}.{col} both carried and not",
                    c.table
                );
            }
        }
        assert!(why_not("LiteLLM_UserTable", "password").is_some_and(|w| w.contains("argon2id")));
        assert!(why_not("LiteLLM_TeamTable", "model_spend").is_some_and(|w| w.contains("spend")));
        assert!(why_not("LiteLLM_TeamTable", "brand_new").is_some_and(|w| w.contains("unknown")));
        assert!(table_not_imported("LiteLLM_Future").is_some_and(|w| w.contains("unknown")));
        assert!(table_not_imported("LiteLLM_AuditLog").is_some_and(|w| w.contains("raw keys")));
    }
}
