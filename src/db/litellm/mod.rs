//! `litegate import-litellm --from postgresql://…` (issue 15 item 2): a LiteLLM proxy's
//! database read (one read-only snapshot, `source.rs`) into litegate's store — the store the
//! config, `--db` or `DATABASE_URL` selects, SQLite or PostgreSQL — in ONE transaction.
//! Organizations with their budget rows, users, teams, memberships, keys by their SHA-256
//! token (every raw `sk-` key keeps working) and the spend at every level; the spend logs
//! with `--with-spend-logs`. A second run updates what it wrote the first time, never
//! duplicates, never deletes. `--dry-run` reads LiteLLM and prints the report without
//! opening the target. The report names every LiteLLM column and table not carried and why
//! (`fields.rs`), and every row changed or left out (`map.rs`, `keys.rs`). Models added in
//! LiteLLM (`LiteLLM_ProxyModelTable`) copy as they are, encrypted (`models.rs`).

mod fields;
mod keys;
mod map;
mod models;
mod rows;
mod source;
mod write;

pub use fields::{CARRIED, NOT_CARRIED, TABLES_NOT_IMPORTED};
pub use map::DEFAULT_MEMBER_PERMISSIONS;

use crate::config::DatabaseUrl;
use crate::db::Pool;
use source::{Source, Table};

/// What failed, and how the command exits.
#[derive(Debug)]
pub enum ImportError {
    /// Nothing was tried (not a LiteLLM database, a table too large): exit 2.
    Refused(String),
    /// Reading or writing failed; the target is unchanged (one transaction): exit 1.
    Failed(String),
}

impl ImportError {
    pub fn exit_code(&self) -> i32 {
        match self {
            ImportError::Refused(_) => 2,
            ImportError::Failed(_) => 1,
        }
    }
}

impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImportError::Refused(m) | ImportError::Failed(m) => f.write_str(m),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub dry_run: bool,
    pub with_spend_logs: bool,
    /// The configured master key's token: a LiteLLM key row with it is the master key itself
    /// (litegate checks the master key first), not imported.
    pub master_hash: Option<String>,
    /// The config's model names and access groups: a name in an imported model list that is
    /// none of them (nor a special name or a wildcard) is reported (its calls are refused
    /// until config.yaml serves it). `None`: not checked.
    pub known_models: Option<Vec<String>>,
    /// The config: its salt key (`LITELLM_SALT_KEY`, else the master key) must open each
    /// `LiteLLM_ProxyModelTable` row, and its reader read it (`models.rs`). `None`: those rows
    /// are not imported (a note says so).
    pub config: Option<crate::config::Config>,
}

/// The tables read into the plan, by field of `map::Src`.
const READ: &[&str] = &[
    "LiteLLM_BudgetTable",
    "LiteLLM_OrganizationTable",
    "LiteLLM_OrganizationMembership",
    "LiteLLM_TeamTable",
    "LiteLLM_ModelTable",
    "LiteLLM_TeamMembership",
    "LiteLLM_UserTable",
    "LiteLLM_VerificationToken",
    "LiteLLM_EndUserTable",
    "LiteLLM_ProxyModelTable",
];
const SPEND_LOGS: &str = "LiteLLM_SpendLogs";

/// Opens litegate's store (migrated, a SQLite file under its owner lock).
pub type OpenTarget<'a> = Box<dyn FnOnce() -> Result<Pool, String> + 'a>;

/// Imports LiteLLM's database at `from` into the store `open` opens (`None`: a dry run, the
/// target is never opened), only once the source is known to be LiteLLM's. Returns the
/// report's lines.
pub fn run(
    from: &DatabaseUrl,
    open: Option<OpenTarget<'_>>,
    opts: &Options,
) -> Result<Vec<String>, ImportError> {
    let mut src = Source::open(from.expose())?;
    let out = import(&mut src, from, open, opts);
    src.close();
    out
}

fn import(
    src: &mut Source,
    from: &DatabaseUrl,
    open: Option<OpenTarget<'_>>,
    opts: &Options,
) -> Result<Vec<String>, ImportError> {
    let present = src.tables()?;
    if !present.iter().any(|t| t == "LiteLLM_VerificationToken") {
        return Err(ImportError::Refused(format!(
            "{} holds no LiteLLM tables (no \"LiteLLM_VerificationToken\" in its current \
             schema): not a LiteLLM proxy database",
            from.safe()
        )));
    }
    let mut read: Vec<Table> = Vec::with_capacity(READ.len());
    for t in READ {
        read.push(src.read(t)?);
    }
    let mut it = read.into_iter();
    let mut next = || it.next().unwrap_or_default();
    let s = map::Src {
        budgets: next(),
        orgs: next(),
        org_members: next(),
        teams: next(),
        model_table: next(),
        team_members: next(),
        users: next(),
        keys: next(),
        end_users: next(),
        proxy_models: next(),
    };
    let pool = match open {
        Some(open) => Some(open().map_err(ImportError::Failed)?),
        None => None,
    };
    let target = pool.as_ref();
    let mut report = Vec::new();
    let unmapped = unmapped_lines(src, &present, &s, opts)?;
    let mut plan = map::plan(&s);
    models::plan_models(&s.proxy_models, opts.config.as_ref(), &mut plan);
    if let Some(h) = &opts.master_hash {
        let before = plan.rows.len();
        plan.rows.retain(|o| {
            !(o.table == "api_keys" && o.get("token") == Some(&rows::V::Text(h.clone())))
        });
        if plan.rows.len() < before {
            plan.note(
                "a LiteLLM key row holding the configured master key: not imported (the \
                master key is litegate's own)"
                    .into(),
            );
        }
    }
    if let Some(known) = &opts.known_models {
        // The models imported count as served (under their public name in their team).
        let mut known = known.clone();
        for o in plan.rows.iter().filter(|o| o.table == "proxy_models") {
            known.extend(
                o.get("model_name")
                    .and_then(rows::V::as_text)
                    .map(str::to_string),
            );
            let info = o
                .get("model_info")
                .and_then(rows::V::as_text)
                .unwrap_or("{}");
            if let Some(n) = crate::db::json_obj(info)["team_public_model_name"].as_str() {
                known.push(n.to_string());
            }
        }
        unknown_models(&mut plan, &known);
    }
    let mut notes = plan.notes.clone();
    let target_name = target.map(|p| p.engine());
    report.push(match target_name {
        None => format!(
            "dry run: read {} (read-only); nothing was written, the target was not opened",
            from.safe()
        ),
        Some(e) => format!(
            "imported {} into the {e} store in one transaction",
            from.safe()
        ),
    });
    let Some(pool) = target else {
        for t in [
            "budgets",
            "organizations",
            "users",
            "organization_members",
            "teams",
            "team_members",
            "api_keys",
            "end_users",
            "proxy_models",
        ] {
            report.push(format!("  {t:<22}{:>8} would be imported", plan.count(t)));
        }
        if opts.with_spend_logs {
            report.push(format!(
                "  {:<22}{:>8} would be imported",
                "spend_logs",
                src.count(SPEND_LOGS)?
            ));
        }
        finish(&mut report, &s, notes, unmapped);
        return Ok(report);
    };
    let mut failure: Option<ImportError> = None;
    let wrote = pool.write_db(|db| {
        let res = (|| -> Result<write::Counts, ImportError> {
            let mut counts = write::Counts::new();
            for row in plan.rows.iter().cloned() {
                write::put(db, row, &mut counts, &mut notes).map_err(written)?;
            }
            if opts.with_spend_logs {
                let mut bad = 0u64;
                let mut batch = Vec::with_capacity(write::BATCH);
                src.each(SPEND_LOGS, &mut |r| {
                    match keys::spend_log(&r) {
                        Some(o) => batch.push(o),
                        None => bad += 1,
                    }
                    if batch.len() >= write::BATCH {
                        write::put_many(db, &batch, &mut counts).map_err(written)?;
                        batch.clear();
                    }
                    Ok(())
                })?;
                write::put_many(db, &batch, &mut counts).map_err(written)?;
                if bad > 0 {
                    notes.push(format!(
                        "{bad} spend log rows without a request_id or startTime: not imported"
                    ));
                }
            }
            Ok(counts)
        })();
        res.map_err(|e| {
            failure = Some(e);
            crate::error::Error::Internal("import failed".into())
        })
    });
    let counts = match (wrote, failure) {
        (Ok(c), _) => c,
        (Err(_), Some(e)) => return Err(e),
        (Err(e), None) => {
            return Err(ImportError::Failed(format!(
                "the target transaction failed, nothing was written: {e}"
            )))
        }
    };
    for (t, (new, upd)) in &counts {
        report.push(format!("  {t:<22}{new:>8} new {upd:>8} updated"));
    }
    finish(&mut report, &s, notes, unmapped);
    Ok(report)
}

/// Notes each model name of the imported lists that the config does not serve, with who
/// names it.
fn unknown_models(plan: &mut map::Plan, known: &[String]) {
    const SPECIAL: &[&str] = &[
        "all-proxy-models",
        "all-team-models",
        "all-org-models",
        "no-default-models",
        "*",
    ];
    let mut by_model: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for o in &plan.rows {
        let who = match o.table {
            "organizations" => "organization",
            "teams" => "team",
            "users" => "user",
            "api_keys" => "key",
            _ => continue,
        };
        let id = match o.table {
            "api_keys" => o.get("key_name"),
            _ => o.get("id"),
        };
        let id = id.and_then(rows::V::as_text).unwrap_or("");
        let Some(list) = o.get("models").and_then(rows::V::as_text) else {
            continue;
        };
        let names: Vec<String> = serde_json::from_str(list).unwrap_or_default();
        for m in names {
            if SPECIAL.contains(&m.as_str()) || m.contains('*') || known.contains(&m) {
                continue;
            }
            by_model.entry(m).or_default().push(format!("{who} {id}"));
        }
    }
    for (m, who) in by_model {
        plan.note(format!(
            "model {m} (in the model list of {}) is not in this config's model_list or access \
             groups: calls to it are refused until config.yaml serves it",
            who.join(", ")
        ));
    }
}

fn written(e: crate::db::handle::DbError) -> ImportError {
    ImportError::Failed(format!(
        "writing into litegate's store failed, nothing was written: {e}"
    ))
}

/// The spend carried, the notes, and the fields and tables not carried.
fn finish(report: &mut Vec<String>, s: &map::Src, notes: Vec<String>, unmapped: Vec<String>) {
    let sum = |t: &Table| -> f64 {
        t.rows
            .iter()
            .filter_map(|r| rows::get_f64(r, "spend"))
            .fold(0.0, |a, b| a + b)
    };
    report.push(format!(
        "spend carried (LiteLLM's counters): keys {}, teams {}, organizations {}, users {}, \
         team memberships {}, organization memberships {}, end users {}",
        sum(&s.keys),
        sum(&s.teams),
        sum(&s.orgs),
        sum(&s.users),
        sum(&s.team_members),
        sum(&s.org_members),
        sum(&s.end_users)
    ));
    if !notes.is_empty() {
        report.push(format!(
            "{} rows or values changed or left out:",
            notes.len()
        ));
        report.extend(notes.into_iter().map(|n| format!("  - {n}")));
    }
    report.push("not carried (README \"Moving from LiteLLM\"):".into());
    report.extend(unmapped.into_iter().map(|n| format!("  - {n}")));
}

/// Every column present in a read table that is not carried (with how many rows set it),
/// and every other `LiteLLM_*` table (with its rows), each with why.
fn unmapped_lines(
    src: &mut Source,
    present: &[String],
    s: &map::Src,
    opts: &Options,
) -> Result<Vec<String>, ImportError> {
    let tables = [
        &s.budgets,
        &s.orgs,
        &s.org_members,
        &s.teams,
        &s.model_table,
        &s.team_members,
        &s.users,
        &s.keys,
        &s.end_users,
        &s.proxy_models,
    ];
    let mut out = Vec::new();
    for (name, t) in READ.iter().zip(tables) {
        for col in &t.columns {
            if let Some(why) = fields::why_not(name, col) {
                let set = t
                    .rows
                    .iter()
                    .filter(|r| r.get(col).is_some_and(rows::is_set))
                    .count();
                out.push(format!("{name}.{col} ({set} rows set): {why}"));
            }
        }
    }
    if opts.with_spend_logs {
        for col in src.columns(SPEND_LOGS)? {
            if let Some(why) = fields::why_not(SPEND_LOGS, &col) {
                out.push(format!("{SPEND_LOGS}.{col}: {why}"));
            }
        }
    }
    for t in present {
        if READ.contains(&t.as_str()) || (opts.with_spend_logs && t == SPEND_LOGS) {
            continue;
        }
        let why = if t == SPEND_LOGS {
            "per-call history: not imported without --with-spend-logs (the spend counters are)"
        } else {
            fields::table_not_imported(t).unwrap_or("not imported")
        };
        out.push(format!("{t} ({} rows): {why}", src.count(t)?));
    }
    Ok(out)
}
