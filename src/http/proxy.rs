//! Model calls over HTTP: `/v1/chat/completions`, `/v1/completions`, `/v1/embeddings` (and the
//! paths without `/v1`). HTTP in and out only: the request's bytes go to `call::run`, which
//! does the work (admission in API.md §7's order, the provider, settlement), and its answer
//! becomes a reply. A streamed answer is pumped by the server's SSE writer (`respond_sse`),
//! and settles itself before its final `[DONE]`.

use super::{Ctx, Reply, Req, StreamBody};
use crate::auth::Caller;
use crate::call::{self, Answer, CallType, Input};
use crate::error::Result;

fn run(ctx: &Ctx, who: &Caller, req: &Req, kind: CallType) -> Result<Reply> {
    let input = Input {
        kind,
        bytes: &req.body,
        request_id: &req.request_id,
    };
    Ok(
        match call::run(&ctx.calls, &ctx.cfg, &ctx.catalog, who, input)? {
            Answer::Json(v) => Reply::Json(200, v),
            Answer::Raw(bytes) => Reply::Raw(200, "application/json", bytes),
            Answer::Stream(s) => Reply::Sse(s),
        },
    )
}

/// A call's event stream, as the server's SSE writer drives it.
impl StreamBody for call::Stream {
    fn pump(self: Box<Self>, emit: &mut dyn FnMut(&[u8]) -> std::io::Result<()>) {
        call::Stream::pump(*self, emit)
    }
}

pub fn chat(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    run(ctx, who, req, CallType::Chat)
}

pub fn completions(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    run(ctx, who, req, CallType::Completion)
}

pub fn embeddings(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    run(ctx, who, req, CallType::Embedding)
}
