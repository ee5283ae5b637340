//! `db copy`: every table of one store into another (SQLite ⇄ PostgreSQL), in one write
//! transaction on the target, then the row counts compared table by table.

use crate::sql::{Connection, OptionalExtension, Value};
use crate::{SqlContext, Store};
use color_eyre::eyre::{Result, bail};

/// Parents before children, so foreign keys hold at every insert. Tables a later migration
/// adds and this list does not name are copied after these, in name order.
const ORDER: &[&str] = &[
    "servers",
    "server_events",
    "server_sudo",
    "server_health",
    "server_leases",
    "jobs",
    "job_logs",
    "deployments",
    "incidents",
    "incident_events",
    "incident_acks",
    "maintenance",
    "health_samples",
    "health_hourly",
    "singleton_leases",
    "audit_log",
    "audit_chain",
];

const PAGE: i64 = 2000;

/// What was copied: each table and its row count (equal in both stores).
#[derive(Debug, Clone, PartialEq)]
pub struct CopyReport {
    pub tables: Vec<(String, i64)>,
}

fn tables(c: &Connection<'_>) -> Result<Vec<String>> {
    let sql = if c.is_postgres() {
        "SELECT table_name FROM information_schema.tables
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name <> 'ptui_schema'"
    } else {
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    };
    let mut names: Vec<String> = c
        .prepare(sql)
        .sql()?
        .query_map([], |r| r.get(0))
        .sql()?
        .collect::<crate::sql::Result<_>>()
        .sql()?;
    names.sort_by_key(|n| {
        (
            ORDER.iter().position(|o| o == n).unwrap_or(ORDER.len()),
            n.clone(),
        )
    });
    Ok(names)
}

fn count(c: &Connection<'_>, table: &str) -> Result<i64> {
    c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .sql()
}

fn columns(c: &Connection<'_>, table: &str) -> Result<Vec<String>> {
    let sql = if c.is_postgres() {
        "SELECT column_name FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = ?1 ORDER BY ordinal_position"
    } else {
        "SELECT name FROM pragma_table_info(?1) ORDER BY cid"
    };
    c.prepare(sql)
        .sql()?
        .query_map([table], |r| r.get(0))
        .sql()?
        .collect::<crate::sql::Result<_>>()
        .sql()
}

/// A PostgreSQL table whose `id` is an integer (an identity to move on after copied rows).
fn integer_id(c: &Connection<'_>, table: &str) -> Result<bool> {
    let ty: Option<String> = c
        .query_row(
            "SELECT data_type FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = ?1 AND column_name = 'id'",
            [table],
            |r| r.get(0),
        )
        .optional()
        .sql()?;
    Ok(ty.as_deref() == Some("bigint"))
}

fn quoted(col: &str) -> String {
    format!("\"{}\"", col.replace('"', "\"\""))
}

impl Store {
    /// Copies everything into `target` (whose schema is at the same version: both were
    /// migrated when opened). A target holding any row is refused unless `replace`, which
    /// empties it first, in the same transaction.
    pub fn copy_into(&self, target: &Store, replace: bool) -> Result<CopyReport> {
        let (from_v, to_v) = (self.schema_version()?, target.schema_version()?);
        if from_v != to_v {
            bail!(
                "schema versions differ ({from_v} here, {to_v} in the target); open both with this binary first"
            );
        }
        let names = self.read(tables)?;
        target.write(|tx| {
            let target_tables = tables(tx)?;
            let mut held = Vec::new();
            for t in &target_tables {
                let n = count(tx, t)?;
                if n > 0 {
                    held.push(format!("{t} ({n})"));
                }
            }
            if !held.is_empty() && !replace {
                bail!(
                    "the target {} is not empty: {}; pass --replace to empty it first",
                    target.location(),
                    held.join(", ")
                );
            }
            for t in target_tables.iter().rev() {
                tx.execute(&format!("DELETE FROM {t}"), []).sql()?;
            }
            for t in &names {
                if !target_tables.contains(t) {
                    bail!("the target has no table {t}: it was made by another version");
                }
                let cols = self.read(|c| columns(c, t))?;
                let list = cols.iter().map(|c| quoted(c)).collect::<Vec<_>>().join(", ");
                let marks = (1..=cols.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
                let insert = format!("INSERT INTO {t} ({list}) VALUES ({marks})");
                let mut offset = 0;
                loop {
                    let page = self.read(|c| {
                        c.query_all(
                            &format!("SELECT {list} FROM {t} ORDER BY 1, 2 LIMIT {PAGE} OFFSET {offset}"),
                            [],
                        )
                        .sql()
                    })?;
                    for row in &page {
                        let values: Vec<Value> = row.clone().into_values();
                        tx.execute(&insert, values).sql()?;
                    }
                    if (page.len() as i64) < PAGE {
                        break;
                    }
                    offset += PAGE;
                }
                if tx.is_postgres() && integer_id(tx, t)? {
                    // Rows came with their ids: the identity must continue after them.
                    tx.query_all(
                        &format!(
                            "SELECT setval(pg_get_serial_sequence('{t}', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM {t}
                             WHERE pg_get_serial_sequence('{t}', 'id') IS NOT NULL"
                        ),
                        [],
                    )
                    .sql()?;
                }
            }
            Ok(())
        })?;
        let mut report = CopyReport { tables: Vec::new() };
        for t in &names {
            let (a, b) = (self.read(|c| count(c, t))?, target.read(|c| count(c, t))?);
            if a != b {
                bail!(
                    "{t}: {a} rows here but {b} in the target after the copy; the copy is incomplete (another process wrote meanwhile?)"
                );
            }
            report.tables.push((t.clone(), a));
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use crate::Store;
    use ptui_types::server::ServerStatus;

    fn filled(store: &Store) {
        let s = crate::test_server(store, "web-01", ServerStatus::Ready);
        crate::test_server(store, "web-02", ServerStatus::InUse);
        store.audit("tester", "server.add", "web-01", "").unwrap();
        store
            .maintenance_on(Some(s.id), Some(9), "patching", "tester")
            .unwrap();
    }

    #[test]
    fn sqlite_to_sqlite_copies_every_row_and_refuses_a_full_target() {
        let (_a, from) = crate::test_store();
        filled(&from);
        let dir = tempfile::tempdir().unwrap();
        let to = Store::open(&dir.path().join("copy.db")).unwrap();
        let report = from.copy_into(&to, false).unwrap();
        let servers = report.tables.iter().find(|(t, _)| t == "servers").unwrap();
        assert_eq!(servers.1, 2);
        assert_eq!(
            to.server_by_name("web-02").unwrap().unwrap().status,
            ServerStatus::InUse
        );
        let err = from.copy_into(&to, false).unwrap_err();
        assert!(format!("{err:#}").contains("--replace"), "{err:#}");
        // Replacing empties the target first: still two servers, not four.
        from.copy_into(&to, true).unwrap();
        assert_eq!(to.list_servers().unwrap().len(), 2);
        // New rows get ids after the copied ones.
        let s3 = crate::test_server(&to, "web-03", ServerStatus::Ready);
        assert!(s3.id > 2, "{}", s3.id);
    }

    #[test]
    fn sqlite_to_postgres_and_back() {
        let (_a, from) = crate::test_store();
        filled(&from);
        let pg = crate::testing::fresh_postgres_store().unwrap();
        let there = from.copy_into(&pg, false).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let back = Store::open(&dir.path().join("back.db")).unwrap();
        let again = pg.copy_into(&back, false).unwrap();
        assert_eq!(there, again);
        let s3 = crate::test_server(&pg, "web-03", ServerStatus::Ready);
        assert!(
            s3.id > 2,
            "PostgreSQL identity continues after copied ids: {}",
            s3.id
        );
        assert_eq!(back.server_by_name("web-01").unwrap().unwrap().host, "h");
    }
}
