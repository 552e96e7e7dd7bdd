//! Model calls: `/v1/chat/completions`, `/v1/completions`, `/v1/embeddings` (and the paths
//! without `/v1`). Runs the checks in API.md §7's order — key valid, team/org not blocked
//! (authentication), model access (the one resolver), budgets (reserve an estimate), rate limits
//! — then answers from the built-in `mock/` provider or `mock_response`, or forwards to the
//! deployment. Spend is recorded in one short transaction before the client gets its response
//! (for streams: before the final `[DONE]`), so an answered call's spend survives `kill -9`.
//! No database connection is held while the upstream works.

use super::{Ctx, Reply, Req, StreamBody};
use crate::auth::{Caller, KeyRow, Role};
use crate::budget::Reservation;
use crate::config::Deployment;
use crate::db::spend::SpendRecord;
use crate::error::{Error, Result};
use crate::limits::{Limit, Permit, Scope};
use crate::upstream::{self, Upstream};
use crate::util;
use serde_json::{json, Map, Value};
use std::io::{BufRead, Read};
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
/// Upstream JSON responses larger than this are refused (502).
const MAX_UPSTREAM_BODY: u64 = 64 * 1024 * 1024;

/// Rough token count for the mock provider and for upstreams that report no usage: one token
/// per 4 characters, at least 1 for non-empty text.
pub fn count_tokens(s: &str) -> u64 {
    if s.is_empty() {
        0
    } else {
        (s.chars().count() as u64).div_ceil(4).max(1)
    }
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
    permit: Option<Permit<'static>>,
    _reservation: Option<Reservation<'static>>,
}

impl Call {
    /// Records the call's spend (one transaction). Failure to record is logged, never hidden
    /// behind a success: the caller decides what the client sees.
    fn settle(&mut self, prompt: u64, completion: u64, status: &str) -> Result<()> {
        self.record.prompt_tokens = prompt;
        self.record.completion_tokens = completion;
        self.record.spend = cost(self.dep, prompt, completion);
        self.record.end_time = util::now_iso();
        self.record.status = status.to_string();
        if let Some(p) = &self.permit {
            p.add_tokens(prompt + completion);
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
    let stream = body.opt_bool("stream")?.unwrap_or(false) && kind != CallType::Embedding;
    let mock_response = body.opt_str("mock_response")?;
    let max_tokens = body
        .opt_u64("max_tokens")?
        .or(body.opt_u64("max_completion_tokens")?);
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

fn usage_of(v: &Value) -> Option<(u64, u64)> {
    v.get("usage").and_then(usage_counts)
}

/// (prompt, completion) tokens of a `usage` object.
fn usage_counts(u: &Value) -> Option<(u64, u64)> {
    if !u.is_object() {
        return None;
    }
    let p = u.get("prompt_tokens").and_then(Value::as_u64).unwrap_or(0);
    let c = u
        .get("completion_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    Some((p, c))
}

fn completion_text(v: &Value) -> String {
    let mut s = String::new();
    if let Some(choices) = v.get("choices").and_then(Value::as_array) {
        for c in choices {
            for path in [
                &["message", "content"][..],
                &["delta", "content"],
                &["text"],
            ] {
                let mut cur = c;
                let mut ok = true;
                for p in path {
                    match cur.get(*p) {
                        Some(x) => cur = x,
                        None => {
                            ok = false;
                            break;
                        }
                    }
                }
                if ok {
                    if let Some(t) = cur.as_str() {
                        s.push_str(t);
                    }
                }
            }
        }
    }
    s
}

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
    if status >= 400 || (!stream && status != 200) {
        let mut b = resp.into_body();
        let bytes = b
            .with_config()
            .limit(1024 * 1024)
            .read_to_vec()
            .unwrap_or_default();
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
    let bytes = match resp
        .into_body()
        .with_config()
        .limit(MAX_UPSTREAM_BODY)
        .read_to_vec()
    {
        Ok(b) => b,
        Err(e) => {
            let _ = call.settle(0, 0, "failure");
            return Err(upstream::map_fault(dep, &e));
        }
    };
    // Only `usage` is read into memory (the rest is checked for syntax and skipped); the
    // whole answer is parsed only when it has no usage and the completion must be counted.
    #[derive(serde::Deserialize)]
    struct UsageOnly {
        usage: Option<Value>,
    }
    let usage = match serde_json::from_slice::<UsageOnly>(&bytes) {
        Ok(u) => u.usage.as_ref().and_then(usage_counts),
        Err(_) => {
            let _ = call.settle(0, 0, "failure");
            return Err(Error::Upstream {
                status: 502,
                message: format!("upstream {} answered with invalid JSON", dep.model_name),
            });
        }
    };
    let (p, c) = match usage {
        Some(pc) => pc,
        None => {
            let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            (call.prompt_estimate, count_tokens(&completion_text(&v)))
        }
    };
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
        let mut line = String::new();
        let mut usage: Option<(u64, u64)> = None;
        let mut produced = String::new();
        let mut finished = false;
        let mut done = false;
        let mut broken: Option<String> = None;
        let mut client_gone = false;
        // Events read but not yet sent. They go out when nothing more is buffered, i.e. right
        // before a read that may wait: one `send` for all the events that arrived together
        // (under load several do), and still at once for an event that arrived alone.
        let mut out: Vec<u8> = Vec::new();
        loop {
            if !out.is_empty() && reader.buffer().is_empty() {
                if emit(&out).is_err() {
                    client_gone = true;
                    break;
                }
                out.clear();
            }
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    let timed_out = matches!(
                        e.kind(),
                        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                    ) || e.to_string().contains("timeout");
                    broken = Some(if timed_out {
                        "the upstream stream timed out".into()
                    } else {
                        format!(
                            "the upstream stream broke: {}",
                            upstream::scrub(dep, &e.to_string())
                        )
                    });
                    break;
                }
            }
            let Some(data) = line.trim_end().strip_prefix("data:") else {
                continue;
            };
            let data = data.trim_start();
            if data == "[DONE]" {
                done = true;
                break;
            }
            let mut forward_it = true;
            if let Ok(v) = serde_json::from_str::<Value>(data) {
                if let Some(u) = usage_of(&v) {
                    usage = Some(u);
                    let no_choices = v
                        .get("choices")
                        .and_then(Value::as_array)
                        .is_none_or(|c| c.is_empty());
                    if no_choices && !self.caller_wants_usage {
                        forward_it = false;
                    }
                }
                produced.push_str(&completion_text(&v));
                if v.get("choices")
                    .and_then(Value::as_array)
                    .is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c.get("finish_reason").is_some_and(|f| !f.is_null()))
                    })
                {
                    finished = true;
                }
            }
            if forward_it {
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(data.as_bytes());
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
        let (p, c) = usage.unwrap_or((self.call.prompt_estimate, count_tokens(&produced)));
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
