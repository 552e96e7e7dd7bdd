//! The LiteLLM side of `litegate import-litellm`: one read-only REPEATABLE READ transaction on
//! LiteLLM's PostgreSQL database (one consistent snapshot; nothing is ever written there).
//! Tables are read whatever LiteLLM version made them: every row as `to_jsonb(row)`, so a
//! column LiteLLM added or dropped between versions is simply there or not, and the mapping
//! (`map.rs`) reports every column present that it does not carry. Owns no mapping.

use super::ImportError;
use postgres::fallible_iterator::FallibleIterator;
use serde_json::{Map, Value};

/// One LiteLLM row: column name → value as `to_jsonb` gives it (arrays as JSON arrays,
/// timestamps as `2025-01-02T03:04:05.678` text, numbers as numbers).
pub type Rec = Map<String, Value>;

/// A table as read: its columns (empty when the table does not exist) and its rows.
#[derive(Debug, Default, Clone)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Rec>,
}

/// The rows an import reads at most from one table (the spend logs are streamed instead):
/// a bound, so a wrong `--from` cannot exhaust memory.
pub const MAX_ROWS: usize = 2_000_000;

/// The LiteLLM database, inside its read-only transaction.
pub struct Source {
    c: postgres::Client,
}

fn failed(what: &str, e: postgres::Error) -> ImportError {
    ImportError::Failed(format!("{what}: {}", crate::db::pg::describe(&e)))
}

impl Source {
    /// Connects (the URL is never repeated in a message) and starts the snapshot.
    pub fn open(url: &str) -> Result<Source, ImportError> {
        let mut c = crate::db::pg::connect(url).map_err(ImportError::Failed)?;
        c.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .map_err(|e| failed("cannot start a read-only transaction", e))?;
        Ok(Source { c })
    }

    /// Every table of the current schema whose name starts with `LiteLLM_`.
    pub fn tables(&mut self) -> Result<Vec<String>, ImportError> {
        let rows = self
            .c
            .query(
                "SELECT table_name::text FROM information_schema.tables
                 WHERE table_schema = current_schema() AND table_name LIKE 'LiteLLM\\_%'
                 ORDER BY 1",
                &[],
            )
            .map_err(|e| failed("cannot list LiteLLM's tables", e))?;
        Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
    }

    /// The columns of `table` in their order; empty when there is no such table.
    pub fn columns(&mut self, table: &str) -> Result<Vec<String>, ImportError> {
        let rows = self
            .c
            .query(
                "SELECT column_name::text FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name = $1
                 ORDER BY ordinal_position",
                &[&table],
            )
            .map_err(|e| failed(&format!("cannot read the columns of {table}"), e))?;
        Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
    }

    /// Every row of `table` (which must be one of `tables()`: its name is quoted, never a
    /// value), up to `MAX_ROWS`.
    pub fn read(&mut self, table: &str) -> Result<Table, ImportError> {
        let columns = self.columns(table)?;
        if columns.is_empty() {
            return Ok(Table::default());
        }
        let mut rows = Vec::new();
        self.each(table, &mut |r| {
            if rows.len() >= MAX_ROWS {
                return Err(ImportError::Refused(format!(
                    "{table} has more than {MAX_ROWS} rows; this importer reads at most that many"
                )));
            }
            rows.push(r);
            Ok(())
        })?;
        Ok(Table { columns, rows })
    }

    /// Every row of `table` to `f`, streamed (the spend logs can be millions of rows).
    pub fn each(
        &mut self,
        table: &str,
        f: &mut dyn FnMut(Rec) -> Result<(), ImportError>,
    ) -> Result<(), ImportError> {
        let sql = format!(
            "SELECT to_jsonb(t)::text FROM \"{}\" t",
            table.replace('"', "")
        );
        let mut it = self
            .c
            .query_raw(sql.as_str(), std::iter::empty::<&str>())
            .map_err(|e| failed(&format!("cannot read {table}"), e))?;
        while let Some(row) = it
            .next()
            .map_err(|e| failed(&format!("cannot read {table}"), e))?
        {
            let text: String = row
                .try_get(0)
                .map_err(|e| failed(&format!("cannot read {table}"), e))?;
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(m)) => f(m)?,
                _ => {
                    return Err(ImportError::Failed(format!(
                        "{table}: a row did not read as a JSON object"
                    )))
                }
            }
        }
        Ok(())
    }

    /// How many rows `table` (one of `tables()`) holds.
    pub fn count(&mut self, table: &str) -> Result<i64, ImportError> {
        let sql = format!("SELECT count(*) FROM \"{}\"", table.replace('"', ""));
        let row = self
            .c
            .query_one(sql.as_str(), &[])
            .map_err(|e| failed(&format!("cannot count {table}"), e))?;
        Ok(row.get(0))
    }

    /// Ends the snapshot (it wrote nothing).
    pub fn close(mut self) {
        let _ = self.c.batch_execute("ROLLBACK");
    }
}
