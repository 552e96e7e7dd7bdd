//! budgets endpoints (API.md §6). Not built yet: every handler answers 501-like 404.
use super::{Ctx, Reply, Req};
use crate::auth::Caller;
use crate::error::{Error, Result};

pub fn create(_ctx: &Ctx, _who: &Caller, _req: &Req) -> Result<Reply> {
    Err(Error::NotFound("not implemented yet".into()))
}

pub fn delete(_ctx: &Ctx, _who: &Caller, _req: &Req) -> Result<Reply> {
    Err(Error::NotFound("not implemented yet".into()))
}

pub fn info(_ctx: &Ctx, _who: &Caller, _req: &Req) -> Result<Reply> {
    Err(Error::NotFound("not implemented yet".into()))
}

pub fn list(_ctx: &Ctx, _who: &Caller, _req: &Req) -> Result<Reply> {
    Err(Error::NotFound("not implemented yet".into()))
}

pub fn update(_ctx: &Ctx, _who: &Caller, _req: &Req) -> Result<Reply> {
    Err(Error::NotFound("not implemented yet".into()))
}
