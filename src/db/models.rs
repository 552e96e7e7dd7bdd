//! Models stored in the database (issue 15 item 3, LiteLLM's `LiteLLM_ProxyModelTable`, schema
//! 0008 / pg 0005): one fn per statement, on the engine-neutral `handle::Handle`. Rows are
//! stored as given (the `litellm_params` already encrypted by the handler, `crypt.rs`); every
//! change bumps `model_generation` through the schema's triggers, which THE key check reads.
//! Who may change a model, and what a row means, are `http::model_admin`'s and `config`'s.

use super::handle::{DbResult, Handle, Row};

/// The most models the database may hold (`/model/new`, a state file).
pub const MAX_MODELS: i64 = 10_000;
/// The most keys of one model's `litellm_params` / `model_info`.
pub const MAX_KEYS: usize = 64;
/// The longest value of `litellm_params` (service-account JSON is a few KiB), as JSON text.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// One stored model as its columns hold it (`litellm_params` and `model_info` are JSON text).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRow {
    pub model_id: String,
    pub model_name: String,
    pub litellm_params: String,
    pub model_info: String,
    pub team_id: Option<String>,
    pub created_at: String,
    pub created_by: Option<String>,
    pub updated_at: String,
    pub updated_by: Option<String>,
}

fn model_row(r: &Row<'_, '_>) -> DbResult<ModelRow> {
    Ok(ModelRow {
        model_id: r.get(0)?,
        model_name: r.get(1)?,
        litellm_params: r.get(2)?,
        model_info: r.get(3)?,
        team_id: r.get(4)?,
        created_at: r.get(5)?,
        created_by: r.get(6)?,
        updated_at: r.get(7)?,
        updated_by: r.get(8)?,
    })
}

/// Every stored model, oldest first (then by id: a stable order on both engines).
pub fn all<C: Handle + ?Sized>(c: &C) -> DbResult<Vec<ModelRow>> {
    const SQL: &str = concat!(
        "SELECT model_id, model_name, litellm_params, model_info, team_id, created_at, ",
        "created_by, updated_at, updated_by FROM proxy_models ORDER BY created_at, model_id"
    );
    c.all(SQL, &[], model_row)
}

/// One stored model by id.
pub fn get<C: Handle + ?Sized>(c: &C, model_id: &str) -> DbResult<Option<ModelRow>> {
    const SQL: &str = concat!(
        "SELECT model_id, model_name, litellm_params, model_info, team_id, created_at, ",
        "created_by, updated_at, updated_by FROM proxy_models WHERE model_id = ?1"
    );
    c.one(SQL, &[model_id.into()], model_row)
}

/// Inserts a row (a duplicate `model_id` is a UNIQUE violation: the caller's 409).
pub fn insert<C: Handle + ?Sized>(c: &C, m: &ModelRow) -> DbResult<()> {
    const SQL: &str = concat!(
        "INSERT INTO proxy_models (model_id, model_name, litellm_params, model_info, team_id, ",
        "created_at, created_by, updated_at, updated_by) ",
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    );
    c.exec(
        SQL,
        &[
            (&m.model_id).into(),
            (&m.model_name).into(),
            (&m.litellm_params).into(),
            (&m.model_info).into(),
            (&m.team_id).into(),
            (&m.created_at).into(),
            (&m.created_by).into(),
            (&m.updated_at).into(),
            (&m.updated_by).into(),
        ],
    )?;
    Ok(())
}

/// Replaces a row's contents (its id and creation stay).
pub fn update<C: Handle + ?Sized>(c: &C, m: &ModelRow) -> DbResult<usize> {
    const SQL: &str = "UPDATE proxy_models SET model_name = ?2, litellm_params = ?3, \
                       model_info = ?4, team_id = ?5, updated_at = ?6, updated_by = ?7 \
                       WHERE model_id = ?1";
    c.exec(
        SQL,
        &[
            (&m.model_id).into(),
            (&m.model_name).into(),
            (&m.litellm_params).into(),
            (&m.model_info).into(),
            (&m.team_id).into(),
            (&m.updated_at).into(),
            (&m.updated_by).into(),
        ],
    )
}

/// Deletes a row; the rows deleted (0 or 1).
pub fn delete<C: Handle + ?Sized>(c: &C, model_id: &str) -> DbResult<usize> {
    c.exec(
        "DELETE FROM proxy_models WHERE model_id = ?1",
        &[model_id.into()],
    )
}

/// How many models are stored (the cap on `/model/new`).
pub fn count<C: Handle + ?Sized>(c: &C) -> DbResult<i64> {
    Ok(
        c.one("SELECT COUNT(*) FROM proxy_models", &[], |r| r.get(0))?
            .unwrap_or(0),
    )
}

/// The models' generation (bumped by every change; THE key check reads it too).
pub fn generation<C: Handle + ?Sized>(c: &C) -> DbResult<i64> {
    Ok(c.one(
        "SELECT generation FROM model_generation WHERE id = 1",
        &[],
        |r| r.get(0),
    )?
    .unwrap_or(0))
}
