//! `db`: which database this is, and copying it to another backend.

use super::exit;
use super::out::{self, outln};
use clap::Subcommand;
use color_eyre::eyre::Result;
use ptui_engine::Engine;

#[derive(Subcommand, Debug)]
pub enum DbCmd {
    /// The backend, where it is (a PostgreSQL URL without its password) and the schema version.
    Info {
        #[arg(long)]
        json: bool,
    },
    /// Copy every table to another database (postgres://… or a SQLite file), then compare
    /// row counts. A non-empty target is refused unless --replace.
    Copy {
        /// The target: postgres://USER@HOST:PORT/DB (password from PGPASSFILE or PGPASSWORD)
        /// or the path of a SQLite file.
        #[arg(long, value_name = "URL|PATH")]
        to: String,
        /// Empty a non-empty target first (in the same transaction as the copy).
        #[arg(long)]
        replace: bool,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(engine: &Engine, cmd: DbCmd) -> Result<i32> {
    match cmd {
        DbCmd::Info { json } => {
            let i = engine.database_info()?;
            if json {
                out::json_pretty(&i)?;
            } else {
                outln!(
                    "{} {} (schema v{})",
                    i.backend,
                    i.location,
                    i.schema_version
                );
            }
        }
        DbCmd::Copy { to, replace, json } => {
            let r = engine.copy_database(&to, replace)?;
            if json {
                out::json_pretty(&r)?;
            } else {
                for (t, n) in &r.tables {
                    outln!("{t:<20} {n:>10}");
                }
                let rows: i64 = r.tables.iter().map(|(_, n)| n).sum();
                outln!(
                    "copied {} tables, {rows} rows, from {} to {}; row counts match",
                    r.tables.len(),
                    r.from,
                    r.to
                );
            }
        }
    }
    Ok(exit::OK)
}
