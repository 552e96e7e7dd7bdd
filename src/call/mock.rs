//! The built-in mock provider: answers a call without any upstream, for deployments whose
//! provider is `mock` and for any call that sets `mock_response` (LiteLLM's testing aid). Its
//! answers have the shape of OpenAI's, usage included, and are settled like any other call.
//! Leaves admission and settlement to `call`.

use super::body::CallBody;
use super::estimate::{count_tokens, text_of};
use super::{Answer, Call, CallType, Stream};
use crate::error::Result;
use crate::util;
use serde_json::{json, Value};

const MOCK_TEXT: &str = "This is a mock response from litegate.";

/// The mock answer to an admitted call.
pub(super) fn answer(mut call: Call, model: &str, body: CallBody) -> Result<Answer> {
    let kind = call.kind;
    let prompt_tokens = call.prompt_estimate;
    let created = util::now_ms() / 1000;
    // The request id, as every completion's (`completion_id`, API.md §9).
    let id = call.record.request_id.clone();
    if kind == CallType::Embedding {
        let inputs: Vec<Value> = match body.fields.get("input") {
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
        return Ok(Answer::Json(json!({
            "object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        })));
    }
    let text = body.mock_response.unwrap_or_else(|| MOCK_TEXT.to_string());
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
    if body.stream {
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
        if body.include_usage {
            events.push(
                json!({"id": id, "object": object, "created": created, "model": model,
                       "choices": [], "usage": usage})
                .to_string(),
            );
        }
        return Ok(Answer::Stream(Box::new(Stream::Mock(MockStream {
            call,
            events,
            prompt_tokens,
            completion_tokens,
        }))));
    }
    call.settle(prompt_tokens, completion_tokens, "success")?;
    let choice = if kind == CallType::Chat {
        json!({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"})
    } else {
        json!({"index": 0, "text": text, "finish_reason": "stop"})
    };
    Ok(Answer::Json(json!({
        "id": id,
        "object": if kind == CallType::Chat { "chat.completion" } else { "text_completion" },
        "created": created,
        "model": model,
        "choices": [choice],
        "usage": usage,
    })))
}

/// A mock answer's events, sent one by one; the call is settled before `[DONE]`.
pub struct MockStream {
    call: Call,
    events: Vec<String>,
    prompt_tokens: u64,
    completion_tokens: u64,
}

impl MockStream {
    pub(super) fn pump(mut self, emit: &mut dyn FnMut(&[u8]) -> std::io::Result<()>) {
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
