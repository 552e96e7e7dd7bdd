//! The model call: `/v1/chat/completions`, `/v1/completions`, `/v1/embeddings` and
//! Anthropic's `/v1/messages` (`messages`), from an authenticated caller and the body's bytes
//! to an answer and a spend record. `run` is the way of one call, in order:
//!
//! 1. the caller's role may call models, and the store can record spend (`run`);
//! 2. the body is parsed and checked once (`body::CallBody`);
//! 3. the end user the body's `user` names (`end_user`: one read, only then; blocked → 400);
//!    admission in API.md §7's order (`admit`; the key, team and organization were checked by
//!    authentication before): model access (aliases, then the one resolver), a deployment,
//!    budgets (`budget`: reserve the estimate from `estimate`; the end user's among them), rate
//!    limits (`limits`);
//! 4. the answer: the built-in mock provider (`mock`) or the deployment (`relay`: forwarding,
//!    and the SSE relay of a stream);
//! 5. settlement (`Call::settle`, the one place): the spend is recorded in one short
//!    transaction before the client gets its answer (for streams: before the final `[DONE]`),
//!    so an answered call's spend survives `kill -9`; tokens go to the rate limits; dropping
//!    the call gives back its reservation and parallel slot.
//!
//! A refusal in 1-3 consumes nothing. No database connection is held while the upstream works.
//! A stream outlives its handler: what it keeps (permit, reservation, deployment, ledger) is
//! owned through `Arc`s, not borrowed. Leaves HTTP (requests, replies, the SSE framing) to
//! `http::proxy` and authentication to `auth`.

pub mod admission;
mod anthropic;
mod bedrock;
pub mod body;
pub mod budget;
mod completion_id;
pub mod end_user;
pub mod estimate;
pub mod explain;
pub mod limits;
pub mod messages;
mod mock;
mod relay;
pub mod shared;

use crate::access::ModelViews;
use crate::auth::{Caller, Role};
use crate::config::{Config, Deployment};
use crate::db::spend::{SpendRecord, SpendWriter};
use crate::db::Pool;
use crate::error::{Error, Result};
use crate::upstream::{usage, Upstream};
use crate::util;
use admission::{Admission, Ticket};
use body::CallBody;
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[derive(Clone, Copy, PartialEq, Debug)]
pub enum CallType {
    Chat,
    Completion,
    Embedding,
    /// Anthropic's Messages API (`/v1/messages`): passed through to Anthropic deployments,
    /// translated to and from chat for the others (`messages`).
    Messages,
}

impl CallType {
    fn input_field(self) -> &'static str {
        match self {
            CallType::Chat | CallType::Messages => "messages",
            CallType::Completion => "prompt",
            CallType::Embedding => "input",
        }
    }
    fn endpoint(self) -> &'static str {
        match self {
            CallType::Chat => "chat/completions",
            CallType::Completion => "completions",
            CallType::Embedding => "embeddings",
            CallType::Messages => "messages",
        }
    }
    /// LiteLLM's `call_type` names in the spend log.
    fn log_name(self) -> &'static str {
        match self {
            CallType::Chat => "acompletion",
            CallType::Completion => "atext_completion",
            CallType::Embedding => "aembedding",
            CallType::Messages => "anthropic_messages",
        }
    }
}

/// What every model call shares; one per server.
pub struct Calls {
    pub upstream: Upstream,
    /// Budgets' reservations and rate limits: in memory (SQLite) or shared through PostgreSQL.
    pub admission: Admission,
    pub ledger: Arc<Ledger>,
}

impl Calls {
    /// `lease_ttl`: PostgreSQL's lease expiry (`LITEGATE_LEASE_SECS`; `admission`);
    /// `alerting`: budget alerts (`crate::alerts`, started here when a webhook is set).
    pub fn new(
        pool: Arc<Pool>,
        lease_ttl: Option<std::time::Duration>,
        alerting: &crate::config::Alerting,
    ) -> Calls {
        Calls {
            upstream: Upstream::new(),
            admission: Admission::for_pool(&pool, lease_ttl),
            ledger: Arc::new(Ledger {
                alerts: crate::alerts::Alerts::start(Arc::clone(&pool), alerting),
                pool,
                writer: SpendWriter::default(),
            }),
        }
    }
}

/// Where spend is recorded: on SQLite the spend journal (`db::journal`), on PostgreSQL the
/// group commit of spend records (leader/follower, no thread of its own).
pub struct Ledger {
    pool: Arc<Pool>,
    writer: SpendWriter,
    /// Budget alerts, told of each recorded call's holders (never waited for).
    alerts: Option<crate::alerts::Alerts>,
}

/// One call as the HTTP layer hands it over.
pub struct Input<'a> {
    pub kind: CallType,
    /// The body as it came (forwarded as it is when nothing in it changes).
    pub bytes: &'a [u8],
    pub request_id: &'a str,
    /// The caller's `anthropic-beta` header (Messages calls), forwarded to Anthropic.
    pub anthropic_beta: Option<&'a str>,
}

/// A call's answer.
pub enum Answer {
    /// A JSON answer we built (the mock provider).
    Json(Value),
    /// An upstream's JSON answer, as it came.
    Raw(Vec<u8>),
    /// Server-sent events: each `data:` event is produced as the answer goes (boxed once,
    /// here: the server's writer holds it as it is).
    Stream(Box<Stream>),
}

/// A streamed answer. `pump` writes its events through `emit` (which fails once the client is
/// gone) and settles the call before the final `[DONE]`.
pub enum Stream {
    Mock(mock::MockStream),
    Upstream(relay::UpstreamStream),
    /// A Messages call's stream (Anthropic events).
    Messages(messages::MessagesStream),
}

impl Stream {
    pub fn pump(self, emit: &mut dyn FnMut(&[u8]) -> std::io::Result<()>) {
        match self {
            Stream::Mock(s) => s.pump(emit),
            Stream::Upstream(s) => s.pump(emit),
            Stream::Messages(s) => s.pump(emit),
        }
    }
}

/// Runs one model call (see the module doc for the order).
pub fn run(
    calls: &Calls,
    cfg: &Config,
    models: &ModelViews,
    who: &Caller,
    input: Input<'_>,
) -> Result<Answer> {
    may_call(who)?;
    // A call the store could not record is refused before it costs anything upstream.
    calls.ledger.pool.writable()?;
    let started = util::now_iso();
    let kind = input.kind;
    let mut body = CallBody::parse(input.bytes, kind)?;
    // The end user the body names, read once (a call naming nobody reads nothing); a blocked
    // one is refused here.
    let end_user = match end_user::named(&body.fields)? {
        Some(id) => Some(end_user::EndUser::load(
            &calls.ledger.pool,
            &cfg.end_users,
            id,
        )?),
        None => None,
    };
    let admitted = admit(calls, cfg, models, who, &mut body, kind, end_user.as_ref())?;
    let translated = match admitted.dep.route.wire {
        w if w.is_anthropic() => Some("an Anthropic"),
        crate::provider::Wire::Bedrock => Some("a Bedrock"),
        _ => None,
    };
    if let (Some(what), CallType::Completion | CallType::Embedding) = (translated, kind) {
        return Err(Error::BadRequest {
            message: format!(
                "model {} is {what} deployment: only /v1/chat/completions and /v1/messages \
                 are supported for it",
                admitted.dep.model_name
            ),
            param: Some("model".into()),
        });
    }
    if let (Some(what), true) = (translated, body.n > 1) {
        // Messages and Converse answer one choice; n choices would be billed as one and lost.
        return Err(Error::BadRequest {
            message: format!(
                "model {} is {what} deployment: `n` must be 1",
                admitted.dep.model_name
            ),
            param: Some("n".into()),
        });
    }
    let k = who.key.as_deref();
    let call = Call {
        ledger: Arc::clone(&calls.ledger),
        record: SpendRecord {
            request_id: input.request_id.to_string(),
            token: k.map(|k| k.token.clone()),
            team_id: k.and_then(|k| k.team.as_ref().map(|t| t.id.clone())),
            organization_id: k.and_then(|k| k.org.as_ref().map(|o| o.id.clone())),
            user_id: who.user_id.clone(),
            key_alias: k.and_then(|k| k.key_alias.clone()),
            team_alias: k.and_then(|k| k.team.as_ref().and_then(|t| t.alias.clone())),
            end_user: end_user.map(|e| e.id),
            model: admitted.dep.model_name.clone(),
            call_type: kind.log_name().to_string(),
            start_time: started,
            ..SpendRecord::default()
        },
        dep: admitted.dep,
        kind,
        prompt_estimate: admitted.prompt_estimate,
        completion_cap: body.completion_cap,
        worst: admitted.worst,
        anthropic_beta: input.anthropic_beta.map(str::to_string),
        ticket: admitted.ticket,
    };
    if kind == CallType::Messages {
        return messages::answer(
            call,
            &calls.upstream,
            cfg,
            &admitted.model,
            body,
            input.bytes,
        );
    }
    if body.mock_response.is_some() || call.dep.provider() == "mock" {
        return mock::answer(call, &admitted.model, body);
    }
    relay::forward(
        call,
        &calls.upstream,
        cfg,
        &admitted.model,
        body,
        input.bytes,
    )
}

/// May this caller's role call models at all? (Read-only admins may not.)
fn may_call(who: &Caller) -> Result<()> {
    if who.role == Role::ProxyAdminViewer {
        return Err(Error::Forbidden(
            "proxy_admin_viewer may not call models".into(),
        ));
    }
    Ok(())
}

static ROUND_ROBIN: AtomicUsize = AtomicUsize::new(0);

/// What admission decided and holds.
struct Admitted {
    /// The model called (after aliases).
    model: String,
    dep: Arc<Deployment>,
    prompt_estimate: u64,
    /// Strict enforcement: the worst case reserved (settlement bills at most this).
    worst: Option<estimate::WorstCase>,
    ticket: Option<Ticket>,
}

/// Admission, in API.md §7's order, after authentication: model access, a deployment,
/// budgets, rate limits. A refusal consumes nothing (a reservation made before a rate-limit
/// refusal is given back on drop).
fn admit(
    calls: &Calls,
    cfg: &Config,
    models: &ModelViews,
    who: &Caller,
    body: &mut CallBody,
    kind: CallType,
    end_user: Option<&end_user::EndUser>,
) -> Result<Admitted> {
    let (model, dep) = resolve(cfg, models, who, std::mem::take(&mut body.model))?;
    let (prompt_estimate, cost_estimate) = estimate::before_call(&dep, kind, body);
    let k = who.key.as_deref();
    let (ticket, worst) = match (k, end_user) {
        // The master key naming no end user: no budget, no limits. (Naming one, its end
        // user's budget and limits apply, as in LiteLLM, which checks end users before keys.)
        (None, None) => (None, None),
        (k, e) if cfg.strict_budgets && !budget::budgets_of_call(k, e).is_empty() => {
            let worst = strict_worst_case(&dep, kind, body)?;
            (
                Some(calls.admission.admit(k, e, worst.cost, true)?),
                Some(worst),
            )
        }
        (k, e) => (
            Some(calls.admission.admit(k, e, cost_estimate, false)?),
            None,
        ),
    };
    Ok(Admitted {
        model,
        dep,
        prompt_estimate,
        worst,
        ticket,
    })
}

/// A strict call's worst case (README "Budgets that never overshoot"). Without `max_tokens`
/// the model's output limit is the bound and is sent upstream as `max_tokens` (the body is
/// then rewritten; otherwise its bytes go as they came). A priced completion with no bound
/// at all is refused: its cost could not be bounded.
fn strict_worst_case(
    dep: &Deployment,
    kind: CallType,
    body: &mut CallBody,
) -> Result<estimate::WorstCase> {
    let body_bytes = body.len;
    if kind == CallType::Embedding {
        return Ok(estimate::worst_case(dep, body_bytes, 0));
    }
    if body.max_tokens.is_none() {
        match estimate::output_limit(dep) {
            Some(limit) => {
                body.max_tokens = Some(limit);
                body.completion_cap = Some(limit.saturating_mul(body.n));
                body.fields.insert("max_tokens".into(), limit.into());
                body.rewritten = true;
            }
            None if dep.output_cost_per_token > 0.0 => {
                return Err(Error::bad_param(
                    "max_tokens",
                    format!(
                        "budget_enforcement is strict and model {} has no known output limit: \
                         set max_tokens",
                        dep.model_name
                    ),
                ))
            }
            // Unpriced output: any length costs nothing.
            None => {}
        }
    }
    let completion = body.completion_cap.unwrap_or(0);
    // n choices of a mock or unpriced completion without a bound: billed at most 0 × price.
    Ok(estimate::worst_case(dep, body_bytes, completion))
}

/// The model called (aliases applied) and the deployment that answers it, if the caller may
/// call it: the model-access part of admission, also all that `count_tokens` needs.
fn resolve(
    cfg: &Config,
    models: &ModelViews,
    who: &Caller,
    requested: String,
) -> Result<(String, Arc<Deployment>)> {
    let (model, deps) = candidates(cfg, models, who, requested)?;
    let dep = Arc::clone(deps[ROUND_ROBIN.fetch_add(1, Ordering::Relaxed) % deps.len()]);
    if let Some(why) = crate::access::registry::unusable_reason(&dep) {
        return Err(Error::Unavailable(format!(
            "model {model} (id {}) is unusable: {why}",
            dep.id
        )));
    }
    Ok((model, dep))
}

/// The model called (aliases applied) and every deployment that may answer it (at least one),
/// if the caller may call it: `resolve` picks one of them; `/access/explain` stops here.
fn candidates<'m>(
    cfg: &Config,
    models: &'m ModelViews,
    who: &Caller,
    requested: String,
) -> Result<(String, Vec<&'m Arc<Deployment>>)> {
    let model = called_model(cfg, who, requested);
    // The chain picks the view (a team's models only for its keys, issue 15 item 3).
    let chain = who.chain();
    let catalog = chain.catalog(models);
    chain.check(catalog, &model)?;
    let deps = catalog.route(&model);
    if deps.is_empty() {
        return Err(Error::bad_param(
            "model",
            format!("Invalid model name passed in model={model}"),
        ));
    }
    Ok((model, deps))
}

/// The model a call of `requested` calls: the team's `model_aliases`, then the key's aliases
/// on the result (LiteLLM's order in `add_litellm_data_to_request`: team, then key), else the
/// config's, applied before the access check; the check is on the model actually called
/// (which replaces the one asked for: no copy). README "LiteLLM compatibility".
fn called_model(cfg: &Config, who: &Caller, requested: String) -> String {
    match who.key.as_ref() {
        Some(k) => {
            let team = k.team_alias_for(&requested);
            let asked = team.as_deref().unwrap_or(&requested);
            k.alias_for(asked).or(team)
        }
        None => None,
    }
    .or_else(|| cfg.aliases.get(&requested).cloned())
    .unwrap_or(requested)
}

/// Everything a call carries from its admission to its spend record.
struct Call {
    ledger: Arc<Ledger>,
    dep: Arc<Deployment>,
    kind: CallType,
    record: SpendRecord,
    prompt_estimate: u64,
    /// The most completion tokens the request allowed (`max_tokens` × `n`), if it said.
    completion_cap: Option<u64>,
    /// Strict enforcement: the worst case reserved; settlement bills at most its tokens.
    worst: Option<estimate::WorstCase>,
    /// The caller's `anthropic-beta` header, sent to Anthropic deployments (Messages calls).
    anthropic_beta: Option<String>,
    /// The call's reservations and rate-limit slots, given back when the call drops.
    ticket: Option<Ticket>,
}

impl Call {
    /// The (prompt, completion) tokens to bill from what the upstream reported
    /// (`usage::billable`: lies are estimated or clamped, never billed as they are). The
    /// prompt's cache reads and writes are kept in the record for `settle` (priced there at
    /// the cache prices).
    fn billable(
        &mut self,
        reported: Option<usage::Reported>,
        completion_estimate: impl FnOnce() -> u64,
    ) -> (u64, u64) {
        let bounds = usage::Bounds {
            prompt_estimate: self.prompt_estimate,
            completion_cap: self.completion_cap,
            embedding: self.kind == CallType::Embedding,
        };
        /// Names the call in a warning, formatted only if one is logged.
        struct What<'a>(&'a str, &'a str);
        impl std::fmt::Display for What<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "request {} to {}", self.0, self.1)
            }
        }
        let what = What(&self.record.request_id, &self.dep.model_name);
        let b = usage::billable(reported, &bounds, completion_estimate, &what);
        self.record.cache_read_tokens = b.cache_read;
        self.record.cache_write_tokens = b.cache_write;
        (b.prompt, b.completion)
    }

    /// Strict enforcement: the billed tokens clamped to the worst case reserved, so recorded
    /// spend never passes the reservation (and so never `max_budget`), whatever the upstream
    /// reports. A clamp is logged: it means the bound did not hold for this call (e.g. an
    /// image given by URL) and less was recorded than the provider may charge.
    fn within_worst_case(
        &self,
        w: estimate::WorstCase,
        prompt: u64,
        completion: u64,
    ) -> (u64, u64) {
        // An unbounded completion of an unpriced output costs nothing whatever its length.
        let completion_bound = if w.completion == 0 && self.dep.output_cost_per_token == 0.0 {
            completion
        } else {
            w.completion
        };
        let (p, c) = (prompt.min(w.prompt), completion.min(completion_bound));
        if (p, c) != (prompt, completion) {
            log::warn!(
                "request {} to {}: {prompt} prompt + {completion} completion tokens are more than \
                 the worst case reserved ({} + {}); billed {p} + {c} (budget_enforcement: strict)",
                self.record.request_id,
                self.dep.model_name,
                w.prompt,
                w.completion
            );
        }
        (p, c)
    }

    /// Settlement: records the call's spend (one transaction) and adds its tokens to the rate
    /// limits. Failure to record is logged, never hidden behind a success: the caller decides
    /// what the client sees.
    fn settle(&mut self, prompt: u64, completion: u64, status: &str) -> Result<()> {
        let (prompt, completion) = match self.worst {
            Some(w) => self.within_worst_case(w, prompt, completion),
            None => (prompt, completion),
        };
        // Cache figures kept by `billable`, bounded by the prompt billed now.
        let cache_read = self.record.cache_read_tokens.min(prompt);
        let cache_write = self.record.cache_write_tokens.min(prompt - cache_read);
        let billed = usage::Billed {
            prompt,
            completion,
            cache_read,
            cache_write,
        };
        self.record.prompt_tokens = prompt;
        self.record.completion_tokens = completion;
        self.record.cache_read_tokens = cache_read;
        self.record.cache_write_tokens = cache_write;
        self.record.spend = estimate::cost_of(&self.dep, &billed);
        self.record.end_time = util::now_iso();
        self.record.status = status.to_string();
        if let Some(t) = &self.ticket {
            t.add_tokens(prompt.saturating_add(completion));
        }
        crate::metrics::METRICS.usage(&self.dep.model_name, prompt, completion, self.record.spend);
        // A call settles once: the record moves to the journal's queue instead of being
        // cloned there (issue 17); the call keeps its request id (the stream's warnings).
        let rec = std::mem::take(&mut self.record);
        self.record.request_id.clone_from(&rec.request_id);
        let touched = self.ledger.alerts.as_ref().map(|a| (a, holders(&rec)));
        // SQLite: one write to the spend journal (applied off this thread; issue 17);
        // PostgreSQL: the group commit (several instances need the rows).
        match self.ledger.pool.lite().filter(|l| l.journal_on()) {
            Some(lite) => lite.record_spend(rec),
            None => self.ledger.writer.record(&self.ledger.pool, &rec),
        }
        .inspect_err(|e| {
            log::error!(
                "request {}: spend not recorded: {e}",
                self.record.request_id
            )
        })?;
        if let Some((a, h)) = touched {
            a.touched(h);
        }
        Ok(())
    }
}

/// The budget holders a recorded call's spend went to, for the alerts: its key, team,
/// organization and user, and the memberships of the user in them.
fn holders(rec: &SpendRecord) -> Vec<crate::alerts::Holder> {
    use crate::alerts::Holder;
    use crate::hierarchy::Level;
    let one = |level, id: &str, label: String| Holder {
        level,
        id: id.to_string(),
        a: id.to_string(),
        b: String::new(),
        label,
    };
    let member = |level, group: &str, user: &str| Holder {
        level,
        id: format!("{group}/{user}"),
        a: group.to_string(),
        b: user.to_string(),
        label: format!("{user} in {group}"),
    };
    let mut v = Vec::with_capacity(6);
    if let Some(t) = &rec.token {
        // The key by its alias, else by the start of its hash (never the raw key).
        let label = rec
            .key_alias
            .clone()
            .unwrap_or_else(|| format!("with hash {}…", t.get(..12).unwrap_or(t)));
        v.push(one(Level::Key, t, label));
    }
    if let Some(t) = &rec.team_id {
        let label = rec.team_alias.clone().unwrap_or_else(|| t.clone());
        v.push(one(Level::Team, t, label));
    }
    if let Some(o) = &rec.organization_id {
        v.push(one(Level::Org, o, o.clone()));
    }
    if let Some(u) = &rec.user_id {
        v.push(one(Level::User, u, u.clone()));
        if let Some(t) = &rec.team_id {
            v.push(member(Level::TeamMember, t, u));
        }
        if let Some(o) = &rec.organization_id {
            v.push(member(Level::OrgMember, o, u));
        }
    }
    if let Some(e) = &rec.end_user {
        v.push(one(Level::EndUser, e, e.clone()));
    }
    v
}
