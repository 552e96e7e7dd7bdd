//! Model calls: `/v1/chat/completions`, `/v1/completions`, `/v1/embeddings` (and the paths
//! without `/v1`). Runs the checks in API.md §7's order — key valid, team/org not blocked
//! (authentication), model access (the one resolver), budgets (reserve an estimate), rate limits
//! — then answers from the built-in `mock/` provider or `mock_response`, or forwards to the
//! deployment. Spend is recorded in one short transaction before the client gets its response
//! (for streams: before the final `[DONE]`), so an answered call's spend survives `kill -9`.
//! No database connection is held while the upstream works.

use super::{call_body, Ctx, Reply, Req, StreamBody};
use crate::auth::{Caller, Role};
use crate::budget::Reservation;
use crate::config::Deployment;
use crate::db::key_check::KeyRow;
use crate::db::spend::SpendRecord;
use crate::error::{Error, Result};
use crate::limits::{Limit, Permit, Scope};
use crate::upstream::sse::{self, Line};
use crate::upstream::{self, usage, Upstream};
use crate::util;
use serde_json::{json, Map, Value};
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Clone, Copy, PartialEq, Debug)]
pub enum CallType {
    Chat,
    Completion,
    Embedding,
}

impl CallType {
    fn input_field(self) -> &'static str {
        match self {
            CallType::Chat => "messages",
            CallType::Completion => "prompt",
            CallType::Embedding => "input",
        }
    }
    fn endpoint(self) -> &'static str {
        match self {
            CallType::Chat => "chat/completions",
            CallType::Completion => "completions",
            CallType::Embedding => "embeddings",
        }
    }
    /// LiteLLM's `call_type` names in the spend log.
    fn log_name(self) -> &'static str {
        match self {
            CallType::Chat => "acompletion",
            CallType::Completion => "atext_completion",
            CallType::Embedding => "aembedding",
        }
    }
}

const MOCK_TEXT: &str = "This is a mock response from litegate.";
/// Completion tokens assumed for the budget reservation when the caller sets no `max_tokens`.
const DEFAULT_COMPLETION_ESTIMATE: u64 = 256;
/// After an upstream stream's `[DONE]`, at most this much more is read to reuse its connection.
const MAX_STREAM_DRAIN: u64 = 64 * 1024;
/// An upstream error body is read up to this much (the message is in its first bytes).
const MAX_UPSTREAM_ERROR_BODY: u64 = 1024 * 1024;
/// Events read but not yet sent are sent once they reach this much, even if more is buffered.
/// A stream's memory is one line ([`sse::MAX_LINE`]), a read buffer and at most this.
const MAX_STREAM_BATCH: usize = 64 * 1024;

/// Rough token count for the mock provider and for upstreams that report no usage: one token
/// per 4 characters, at least 1 for non-empty text.
pub fn count_tokens(s: &str) -> u64 {
    usage::tokens_of_chars(s.chars().count() as u64)
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(text_of).collect::<Vec<_>>().join(" "),
        Value::Object(o) => o
            .get("content")
            .or_else(|| o.get("text"))
            .map(text_of)
            .unwrap_or_default(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn cost(dep: &Deployment, prompt: u64, completion: u64) -> f64 {
    prompt as f64 * dep.input_cost_per_token + completion as f64 * dep.output_cost_per_token
}

static ROUND_ROBIN: AtomicUsize = AtomicUsize::new(0);

/// The rate limits that apply to a key (API.md §7).
fn limits_of(k: &KeyRow) -> Vec<Limit> {
    let mut v = Vec::with_capacity(4);
    let lim = |scope, id: &str, rpm, tpm, parallel| Limit {
        scope,
        id: id.to_string(),
        rpm,
        tpm,
        parallel,
    };
    if k.rpm_limit.is_some() || k.tpm_limit.is_some() || k.max_parallel_requests.is_some() {
        v.push(lim(
            Scope::Key,
            &k.token,
            k.rpm_limit,
            k.tpm_limit,
            k.max_parallel_requests,
        ));
    }
    if let Some(t) = &k.team {
        if t.rpm_limit.is_some() || t.tpm_limit.is_some() || t.max_parallel_requests.is_some() {
            v.push(lim(
                Scope::Team,
                &t.id,
                t.rpm_limit,
                t.tpm_limit,
                t.max_parallel_requests,
            ));
        }
    }
    if let Some(o) = &k.org {
        if o.rpm_limit.is_some() || o.tpm_limit.is_some() || o.max_parallel_requests.is_some() {
            v.push(lim(
                Scope::Org,
                &o.id,
                o.rpm_limit,
                o.tpm_limit,
                o.max_parallel_requests,
            ));
        }
    }
    if let Some(u) = &k.user {
        if u.rpm_limit.is_some() || u.tpm_limit.is_some() || u.max_parallel_requests.is_some() {
            v.push(lim(
                Scope::User,
                &u.id,
                u.rpm_limit,
                u.tpm_limit,
                u.max_parallel_requests,
            ));
        }
    }
    v
}

/// Everything a call carries from its checks to its spend record.
struct Call {
    ctx: &'static Ctx,
    dep: &'static Deployment,
    kind: CallType,
    record: SpendRecord,
    prompt_estimate: u64,
    /// The most completion tokens the request allowed (`max_tokens` × `n`), if it said.
    completion_cap: Option<u64>,
    permit: Option<Permit<'static>>,
    _reservation: Option<Reservation<'static>>,
}

impl Call {
    /// Records the call's spend (one transaction). Failure to record is logged, never hidden
    /// behind a success: the caller decides what the client sees.
    /// The (prompt, completion) tokens to bill from what the upstream reported
    /// (`usage::billable`: lies are estimated or clamped, never billed as they are).
    fn billable(
        &self,
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
        usage::billable(reported, &bounds, completion_estimate, &what)
    }

    fn settle(&mut self, prompt: u64, completion: u64, status: &str) -> Result<()> {
        self.record.prompt_tokens = prompt;
        self.record.completion_tokens = completion;
        self.record.spend = cost(self.dep, prompt, completion);
        self.record.end_time = util::now_iso();
        self.record.status = status.to_string();
        if let Some(p) = &self.permit {
            p.add_tokens(prompt.saturating_add(completion));
        }
        crate::metrics::METRICS.usage(&self.dep.model_name, prompt, completion, self.record.spend);
        let rec = &self.record;
        self.ctx
            .spend
            .record(&self.ctx.pool, rec)
            .inspect_err(|e| log::error!("request {}: spend not recorded: {e}", rec.request_id))
    }
}

fn check_role(who: &Caller) -> Result<()> {
    if who.role == Role::ProxyAdminViewer {
        return Err(Error::Forbidden(
            "proxy_admin_viewer may not call models".into(),
        ));
    }
    Ok(())
}

pub fn call(ctx: &'static Ctx, who: &Caller, req: &Req, kind: CallType) -> Result<Reply> {
    check_role(who)?;
    // A call the store could not record is refused before it costs anything upstream.
    ctx.pool.writable()?;
    let started = util::now_iso();
    let body = req.json()?;
    let requested = body.req_str("model")?;
    let field = kind.input_field();
    if !body.given(field) {
        return Err(Error::bad_param(field, format!("`{field}` is required")));
    }
    // The shape of every field that matters, before anything goes upstream (400 naming it).
    let shape = call_body::check(&body.0, kind)?;
    let stream = body.opt_bool("stream")?.unwrap_or(false) && kind != CallType::Embedding;
    let mock_response = body.opt_str("mock_response")?;
    let max_tokens = body
        .opt_u64("max_tokens")?
        .or(body.opt_u64("max_completion_tokens")?);
    let completion_cap = max_tokens.map(|m| m.saturating_mul(shape.n));
    // Key aliases, then the config's, apply before the access check; the check is on the
    // model actually called.
    let model = who
        .key
        .as_ref()
        .and_then(|k| k.alias_for(&requested))
        .or_else(|| ctx.cfg.aliases.get(&requested).cloned())
        .unwrap_or(requested);
    who.chain().check(&ctx.catalog, &model)?;
    let deps = ctx.catalog.route(&model);
    if deps.is_empty() {
        return Err(Error::bad_param(
            "model",
            format!("Invalid model name passed in model={model}"),
        ));
    }
    let dep: &'static Deployment = deps[ROUND_ROBIN.fetch_add(1, Ordering::Relaxed) % deps.len()];
    let prompt_estimate = count_tokens(&text_of(body.raw(field).unwrap_or(&Value::Null)));
    let completion_estimate = if kind == CallType::Embedding {
        0
    } else {
        max_tokens.unwrap_or(DEFAULT_COMPLETION_ESTIMATE)
    };
    // Budgets, then rate limits (API.md §7); a refusal here consumes nothing.
    let (reservation, permit) = match &who.key {
        Some(k) => {
            let r = ctx
                .budgets
                .reserve(k, cost(dep, prompt_estimate, completion_estimate))?;
            let p = ctx.limiter.admit(&limits_of(k))?;
            (Some(r), Some(p))
        }
        None => (None, None),
    };
    let k = who.key.as_deref();
    let call = Call {
        ctx,
        dep,
        kind,
        record: SpendRecord {
            request_id: req.request_id.clone(),
            token: k.map(|k| k.token.clone()),
            team_id: k.and_then(|k| k.team.as_ref().map(|t| t.id.clone())),
            organization_id: k.and_then(|k| k.org.as_ref().map(|o| o.id.clone())),
            user_id: who.user_id.clone(),
            model: dep.model_name.clone(),
            call_type: kind.log_name().to_string(),
            start_time: started,
            ..SpendRecord::default()
        },
        prompt_estimate,
        completion_cap,
        permit,
        _reservation: reservation,
    };
    if mock_response.is_some() || dep.provider() == "mock" {
        return mock(call, &model, &body.0, mock_response, stream, req);
    }
    forward(call, &model, body.0, stream, req)
}

// ---------------------------------------------------------------------------------------------
// The mock provider

fn mock(
    mut call: Call,
    model: &str,
    body: &Map<String, Value>,
    mock_response: Option<String>,
    stream: bool,
    req: &Req,
) -> Result<Reply> {
    let kind = call.kind;
    let prompt_tokens = call.prompt_estimate;
    let created = util::now_ms() / 1000;
    let id = format!("chatcmpl-{}", req.request_id);
    if kind == CallType::Embedding {
        let inputs: Vec<Value> = match body.get("input") {
            Some(Value::Array(a)) => a.clone(),
            Some(v) => vec![v.clone()],
            None => Vec::new(),
        };
        let data: Vec<Value> = inputs
            .iter()
            .enumerate()
            .map(|(i, inp)| {
                let h = crate::auth::hash_key(&text_of(inp));
                let emb: Vec<f64> = h
                    .as_bytes()
                    .chunks(8)
                    .map(|c| (c.iter().map(|&x| x as u32).sum::<u32>() % 1000) as f64 / 1000.0)
                    .collect();
                json!({"object": "embedding", "index": i, "embedding": emb})
            })
            .collect();
        call.settle(prompt_tokens, 0, "success")?;
        return Reply::ok(json!({
            "object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        }));
    }
    let text = mock_response.unwrap_or_else(|| MOCK_TEXT.to_string());
    let completion_tokens = count_tokens(&text);
    let usage = json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    });
    let object = if kind == CallType::Chat {
        "chat.completion.chunk"
    } else {
        "text_completion"
    };
    if stream {
        let include_usage = body
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let mut events: Vec<String> = Vec::new();
        for w in text.split_inclusive(' ') {
            let choice = if kind == CallType::Chat {
                json!({"index": 0, "delta": {"content": w}, "finish_reason": null})
            } else {
                json!({"index": 0, "text": w, "finish_reason": null})
            };
            events.push(
                json!({"id": id, "object": object, "created": created, "model": model,
                       "choices": [choice]})
                .to_string(),
            );
        }
        let end = if kind == CallType::Chat {
            json!({"index": 0, "delta": {}, "finish_reason": "stop"})
        } else {
            json!({"index": 0, "text": "", "finish_reason": "stop"})
        };
        events.push(
            json!({"id": id, "object": object, "created": created, "model": model,
                   "choices": [end]})
            .to_string(),
        );
        if include_usage {
            events.push(
                json!({"id": id, "object": object, "created": created, "model": model,
                       "choices": [], "usage": usage})
                .to_string(),
            );
        }
        return Ok(Reply::Sse(Box::new(MockStream {
            call,
            events,
            prompt_tokens,
            completion_tokens,
        })));
    }
    call.settle(prompt_tokens, completion_tokens, "success")?;
    let choice = if kind == CallType::Chat {
        json!({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"})
    } else {
        json!({"index": 0, "text": text, "finish_reason": "stop"})
    };
    Reply::ok(json!({
        "id": id,
        "object": if kind == CallType::Chat { "chat.completion" } else { "text_completion" },
        "created": created,
        "model": model,
        "choices": [choice],
        "usage": usage,
    }))
}

struct MockStream {
    call: Call,
    events: Vec<String>,
    prompt_tokens: u64,
    completion_tokens: u64,
}

impl StreamBody for MockStream {
    fn pump(mut self: Box<Self>, emit: &mut dyn FnMut(&[u8]) -> std::io::Result<()>) {
        for e in &self.events {
            if emit(format!("data: {e}\n\n").as_bytes()).is_err() {
                let _ = self
                    .call
                    .settle(self.prompt_tokens, 0, "client_disconnected");
                return;
            }
        }
        let (p, c) = (self.prompt_tokens, self.completion_tokens);
        let _ = self.call.settle(p, c, "success");
        let _ = emit(b"data: [DONE]\n\n");
    }
}

// ---------------------------------------------------------------------------------------------
// Forwarding

fn forward(
    mut call: Call,
    model: &str,
    mut body: Map<String, Value>,
    stream: bool,
    req: &Req,
) -> Result<Reply> {
    let dep = call.dep;
    let caller_wants_usage = body
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    // The caller's bytes go upstream as they came when nothing in them changes (issue 6: a
    // long conversation was parsed and written out again on every call); otherwise the
    // parsed body, changed, is written out.
    let as_sent = (!stream || caller_wants_usage)
        && !req.duplicate_keys.get()
        && Upstream::body_unchanged(dep, model, &body);
    if stream && !caller_wants_usage {
        // Ask the upstream for usage; the extra chunk is stripped before the caller sees it.
        let mut opts = body
            .get("stream_options")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        opts.insert("include_usage".into(), Value::Bool(true));
        body.insert("stream_options".into(), Value::Object(opts));
    }
    let payload: std::borrow::Cow<'_, [u8]> = if as_sent {
        std::borrow::Cow::Borrowed(&req.body)
    } else {
        std::borrow::Cow::Owned(Upstream::body(dep, model, body))
    };
    let sent = std::time::Instant::now();
    let resp = call
        .ctx
        .upstream
        .post(dep, call.kind.endpoint(), &payload, stream);
    crate::metrics::METRICS.upstream(&dep.model_name, sent.elapsed());
    let resp = match resp {
        Ok(r) => r,
        Err(e) => {
            let _ = call.settle(0, 0, "failure");
            return Err(e);
        }
    };
    let status = resp.status().as_u16();
    // A stream is any 2xx, an answer only 200; a redirect (never followed) is a fault too.
    if (stream && !(200..300).contains(&status)) || (!stream && status != 200) {
        let bytes = if (300..400).contains(&status) {
            Vec::new()
        } else {
            resp.into_body()
                .with_config()
                .limit(MAX_UPSTREAM_ERROR_BODY)
                .read_to_vec()
                .unwrap_or_default()
        };
        let _ = call.settle(0, 0, "failure");
        return Err(Upstream::status_error(dep, status, &bytes));
    }
    if stream {
        return Ok(Reply::Sse(Box::new(UpstreamStream {
            call,
            body: Some(resp.into_body()),
            caller_wants_usage,
        })));
    }
    // The whole answer is held (its `usage` comes last and spend is recorded before the
    // client gets it), so this cap times `--workers` bounds the memory of such answers.
    let cap = call.ctx.cfg.max_upstream_body_bytes;
    let bytes = match resp.into_body().with_config().limit(cap).read_to_vec() {
        Ok(b) => b,
        Err(ureq::Error::BodyExceedsLimit(_)) => {
            let _ = call.settle(0, 0, "failure");
            return Err(Error::Upstream {
                status: 502,
                message: format!(
                    "upstream {} answered with more than {cap} bytes",
                    dep.model_name
                ),
            });
        }
        Err(e) => {
            let _ = call.settle(0, 0, "failure");
            return Err(upstream::map_fault(dep, &e));
        }
    };
    // Only `usage` is read (the rest is checked for syntax and skipped, no tree is built);
    // the completion text is counted, in a second pass, only when its figure is needed.
    let reported = match serde_json::from_slice::<usage::UsageOnly>(&bytes) {
        Ok(u) => u.usage.map(|r| r.0),
        Err(_) => {
            let _ = call.settle(0, 0, "failure");
            return Err(Error::Upstream {
                status: 502,
                message: format!("upstream {} answered with invalid JSON", dep.model_name),
            });
        }
    };
    let (p, c) = call.billable(reported, || {
        let chars = serde_json::from_slice::<usage::ChoicesOnly>(&bytes)
            .ok()
            .and_then(|c| c.choices)
            .map_or(0, |c| c.0);
        usage::tokens_of_chars(chars)
    });
    call.settle(p, c, "success")?;
    // The upstream's answer as it came (its `model` field names the upstream model).
    Ok(Reply::Raw(200, "application/json", bytes))
}

struct UpstreamStream {
    call: Call,
    body: Option<ureq::Body>,
    caller_wants_usage: bool,
}

impl StreamBody for UpstreamStream {
    fn pump(mut self: Box<Self>, emit: &mut dyn FnMut(&[u8]) -> std::io::Result<()>) {
        let dep = self.call.dep;
        let Some(body) = self.body.take() else {
            return;
        };
        let mut reader = std::io::BufReader::new(body.into_reader());
        let mut line: Vec<u8> = Vec::new();
        let mut reported: Option<usage::Reported> = None;
        // Characters of completion text seen, for a stream without usage (a count, not the
        // text: an endless stream must not grow memory).
        let mut produced_chars = 0u64;
        let mut finished = false;
        let mut done = false;
        let mut broken: Option<String> = None;
        let mut client_gone = false;
        // Events read but not yet sent. They go out when nothing more is buffered, i.e. right
        // before a read that may wait: one `send` for all the events that arrived together
        // (under load several do), and still at once for an event that arrived alone; and at
        // the latest once they reach `MAX_STREAM_BATCH`.
        let mut out: Vec<u8> = Vec::new();
        loop {
            if !out.is_empty() && (reader.buffer().is_empty() || out.len() >= MAX_STREAM_BATCH) {
                if emit(&out).is_err() {
                    client_gone = true;
                    break;
                }
                out.clear();
            }
            match sse::read_line_capped(&mut reader, &mut line, sse::MAX_LINE) {
                Ok(Line::Eof) => break,
                Ok(Line::Got) => {}
                Ok(Line::TooLong) => {
                    log::warn!(
                        "request {}: upstream {} sent an event line over {} bytes",
                        self.call.record.request_id,
                        dep.model_name,
                        sse::MAX_LINE
                    );
                    broken = Some(format!(
                        "the upstream sent an event longer than {} bytes",
                        sse::MAX_LINE
                    ));
                    break;
                }
                Err(e) => {
                    let timed_out = matches!(
                        e.kind(),
                        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                    ) || e.to_string().contains("timeout");
                    log::warn!(
                        "request {}: upstream {} stream: {}",
                        self.call.record.request_id,
                        dep.model_name,
                        upstream::scrub(dep, &e.to_string())
                    );
                    broken = Some(if timed_out {
                        "the upstream stream timed out".into()
                    } else {
                        "the upstream stream broke".into()
                    });
                    break;
                }
            }
            let Ok(text) = std::str::from_utf8(&line) else {
                broken = Some("the upstream stream is not UTF-8".into());
                break;
            };
            let Some(data) = text.trim_end().strip_prefix("data:") else {
                continue;
            };
            let data = data.trim_start();
            if data == "[DONE]" {
                done = true;
                break;
            }
            let mut forward_it = true;
            let mut scrubbed = None;
            if let Ok(v) = serde_json::from_str::<Value>(data) {
                if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
                    reported = Some(usage::Reported::of_value(u));
                    let no_choices = v
                        .get("choices")
                        .and_then(Value::as_array)
                        .is_none_or(|c| c.is_empty());
                    if no_choices && !self.caller_wants_usage {
                        forward_it = false;
                    }
                }
                // An upstream's own error event may echo its URL or our key.
                if v.get("error").is_some() {
                    scrubbed = Some(upstream::scrub(dep, data));
                }
                produced_chars = produced_chars.saturating_add(usage::completion_chars(&v));
                if v.get("choices")
                    .and_then(Value::as_array)
                    .is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c.get("finish_reason").is_some_and(|f| !f.is_null()))
                    })
                {
                    finished = true;
                }
            } else {
                // Not JSON: an upstream's plain-text complaint, which may name it.
                scrubbed = Some(upstream::scrub(dep, data));
            }
            if forward_it {
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(scrubbed.as_deref().unwrap_or(data).as_bytes());
                out.extend_from_slice(b"\n\n");
            }
        }
        if !client_gone && !out.is_empty() && emit(&out).is_err() {
            client_gone = true;
        }
        // Stop the upstream call now (closes its connection) unless it ended with `[DONE]`:
        // then the rest of its body (the chunked terminator) is read after our `[DONE]`, so
        // ureq returns the connection to its pool instead of closing it.
        let finished_reader = if done {
            Some(reader)
        } else {
            drop(reader);
            None
        };
        let (p, c) = self
            .call
            .billable(reported, || usage::tokens_of_chars(produced_chars));
        if client_gone {
            let _ = self.call.settle(p, c, "client_disconnected");
            return;
        }
        if broken.is_none() && !done && !finished {
            broken = Some("the upstream closed the stream before it finished".into());
        }
        match broken {
            None => {
                let _ = self.call.settle(p, c, "success");
                let _ = emit(b"data: [DONE]\n\n");
                if let Some(r) = finished_reader {
                    let _ = std::io::copy(&mut r.take(MAX_STREAM_DRAIN), &mut std::io::sink());
                }
            }
            Some(msg) => {
                let _ = self.call.settle(p, c, "failure");
                let err = Error::Upstream {
                    status: 502,
                    message: msg,
                };
                let _ = emit(format!("data: {}\n\n", err.body()).as_bytes());
                let _ = emit(b"data: [DONE]\n\n");
            }
        }
    }
}

pub fn chat(ctx: &'static Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    call(ctx, who, req, CallType::Chat)
}

pub fn completions(ctx: &'static Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    call(ctx, who, req, CallType::Completion)
}

pub fn embeddings(ctx: &'static Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    call(ctx, who, req, CallType::Embedding)
}
