//! LiteLLM routes litegate does not serve, named (issue 15 item 5: "where LiteLLM has an
//! endpoint litegate lacks and a client would call, answer it or refuse it with a clear 404
//! naming what is not supported"). Consulted only when no route matches, before any key is
//! checked: the answer says what the path is and that litegate does not offer it, instead of a
//! bare "Route not found". README "LiteLLM compatibility" lists the same table.

/// (path prefix, what it is in LiteLLM). A prefix matches the path itself or the path
/// followed by `/…`; the OpenAI-style ones with and without `/v1`.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("/key/service-account", "service-account keys"),
    ("/key/bulk_update", "bulk key updates"),
    ("/team/key/bulk_update", "bulk key updates"),
    ("/key/aliases", "the key alias listing"),
    (
        "/key/access_group_assignment",
        "access-group assignment of keys",
    ),
    (
        "/spend/logs/v2",
        "the v2 spend-log listing (litegate has /spend/logs)",
    ),
    ("/auto_router", "the auto router"),
    ("/v1/images", "image generation and editing"),
    ("/images", "image generation and editing"),
    ("/v1/audio", "audio (speech, transcriptions, translations)"),
    ("/audio", "audio (speech, transcriptions, translations)"),
    ("/v1/moderations", "moderations"),
    ("/moderations", "moderations"),
    ("/v1/rerank", "rerank"),
    ("/v2/rerank", "rerank"),
    ("/rerank", "rerank"),
    ("/v1/responses", "OpenAI's Responses API"),
    ("/responses", "OpenAI's Responses API"),
    ("/v1/batches", "batches"),
    ("/batches", "batches"),
    ("/v1/files", "files"),
    ("/files", "files"),
    ("/v1/fine_tuning", "fine-tuning jobs"),
    ("/fine_tuning", "fine-tuning jobs"),
    ("/v1/assistants", "assistants"),
    ("/assistants", "assistants"),
    ("/v1/threads", "assistant threads"),
    ("/threads", "assistant threads"),
    ("/v1/realtime", "the Realtime API"),
    ("/realtime", "the Realtime API"),
    ("/v1/vector_stores", "vector stores"),
    ("/vector_stores", "vector stores"),
    ("/mcp", "MCP servers"),
    ("/v1/mcp", "MCP servers"),
    ("/mcp-rest", "MCP servers"),
    ("/guardrails", "guardrails"),
    ("/v1/guardrails", "guardrails"),
    (
        "/global/spend",
        "global spend reports (litegate has /spend/logs)",
    ),
    ("/spend/tags", "spend by tag"),
    ("/spend/calculate", "spend estimates"),
    ("/user/daily", "daily activity reports"),
    ("/team/daily", "daily activity reports"),
    ("/tag", "tags and tag budgets"),
    ("/sso", "single sign-on"),
    ("/credentials", "stored provider credentials"),
    ("/cache", "response caching"),
    (
        "/config",
        "configuration changes through the API (edit config.yaml)",
    ),
    (
        "/team/permissions_bulk_update",
        "bulk team permission updates (use /team/permissions_update)",
    ),
];

/// Paths that are unsupported as they are, not as prefixes (routes are served beneath them).
const UNSUPPORTED_EXACT: &[(&str, &str)] = &[(
    "/health",
    "model health checks (litegate has /health/readiness and /health/liveliness)",
)];

/// The 404's message for a path no route serves: what LiteLLM's route of that name is, when it
/// is one litegate does not offer; else the plain "Route not found".
pub fn not_found(path: &str) -> String {
    let exact = UNSUPPORTED_EXACT.iter().find(|(p, _)| *p == path);
    match exact.or_else(|| {
        UNSUPPORTED.iter().find(|(p, _)| {
            path.strip_prefix(p)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    }) {
        Some((_, what)) => format!(
            "Route not found: {path}. litegate does not support {what}; see README \
             \"LiteLLM compatibility\""
        ),
        None => format!("Route not found: {path}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_what_is_missing_only_for_known_prefixes() {
        assert!(not_found("/v1/images/generations").contains("image generation"));
        assert!(not_found("/v1/responses").contains("Responses API"));
        assert!(not_found("/health").contains("model health checks"));
        assert_eq!(not_found("/health/x"), "Route not found: /health/x");
        // A prefix matches whole segments only.
        assert_eq!(not_found("/healthz"), "Route not found: /healthz");
        assert_eq!(not_found("/tags"), "Route not found: /tags");
        assert_eq!(not_found("/nope"), "Route not found: /nope");
    }

    #[test]
    fn no_unsupported_prefix_shadows_a_route() {
        for (_, p, _) in super::super::routes::ROUTES {
            for (u, _) in UNSUPPORTED {
                let shadowed = p
                    .strip_prefix(u)
                    .is_some_and(|r| r.is_empty() || r.starts_with('/'));
                assert!(
                    !shadowed,
                    "{u} would name the served route {p} as unsupported"
                );
            }
        }
    }
}
