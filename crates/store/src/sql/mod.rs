//! One SQL interface over both backends. The store's queries are written once, against this
//! small lookalike of rusqlite's API (`execute`, `query_row`, `prepare`/`query_map`,
//! `optional`, `params!`); a [`Connection`] runs them on SQLite, or on PostgreSQL after
//! [`dialect::to_postgres`] rewrote them. Values cross as [`Value`]s, SQLite's five types,
//! so a row reads the same from either backend.

pub mod dialect;
pub mod pg;
pub mod pg_config;
mod value;

pub use value::{FromSql, ToSql, Value};

use std::fmt;
use std::sync::Arc;

/// What a query or a conversion can fail with.
#[derive(Debug)]
pub enum Error {
    Sqlite(rusqlite::Error),
    Postgres(tokio_postgres::Error),
    /// The query returned no row where one was expected (`query_row`).
    NoRows,
    /// A column held a value of a type the caller did not ask for.
    Conversion {
        column: usize,
        message: String,
    },
    /// The PostgreSQL connection is gone (its task ended) or could not be made.
    Connection(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Sqlite(e) => write!(f, "{e}"),
            Error::Postgres(e) => match e.as_db_error() {
                Some(db) => write!(f, "{} ({})", db.message(), db.code().code()),
                None => write!(f, "{e}"),
            },
            Error::NoRows => write!(f, "query returned no rows"),
            Error::Conversion { column, message } => write!(f, "column {column}: {message}"),
            Error::Connection(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::QueryReturnedNoRows => Error::NoRows,
            e => Error::Sqlite(e),
        }
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        Error::Postgres(e)
    }
}

impl Error {
    /// PostgreSQL's SQLSTATE, when the server sent one.
    pub fn pg_code(&self) -> Option<&str> {
        match self {
            Error::Postgres(e) => e.as_db_error().map(|d| d.code().code()),
            _ => None,
        }
    }

    pub fn sqlite_code(&self) -> Option<rusqlite::ErrorCode> {
        match self {
            Error::Sqlite(e) => e.sqlite_error_code(),
            _ => None,
        }
    }

    /// Advice for an operator reading the error, by what went wrong rather than by backend.
    pub fn hint(&self) -> &'static str {
        use rusqlite::ErrorCode as C;
        match (self.sqlite_code(), self.pg_code()) {
            (Some(C::DiskFull), _) | (_, Some("53100")) => {
                "free some disk space and retry; nothing was written"
            }
            (Some(C::DatabaseBusy | C::DatabaseLocked), _) | (_, Some("55P03" | "40P01")) => {
                "another process holds the database for too long; retry"
            }
            (Some(C::ReadOnly | C::CannotOpen), _) => {
                "check the permissions of the database file and its directory"
            }
            (_, Some("25006")) => {
                "the PostgreSQL server is read-only (a standby?): point --db at the primary"
            }
            (_, Some("42501")) => {
                "the PostgreSQL role lacks a privilege: see docs/MULTI-BASTION.md for the grants"
            }
            _ if matches!(self, Error::Connection(_)) => {
                "check that PostgreSQL runs and that --db / PROVISION_TUI_DB points at it"
            }
            _ => "the change was rolled back",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `.optional()` on a single-row result: no row is `None`, not an error.
pub trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(Error::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// One result row; columns by position, as in rusqlite.
#[derive(Debug, Clone)]
pub struct Row {
    values: Vec<Value>,
    names: Arc<[String]>,
}

/// A column position (or name) for [`Row::get`].
pub trait RowIndex {
    fn index(&self, row: &Row) -> Result<usize>;
}

impl RowIndex for usize {
    fn index(&self, row: &Row) -> Result<usize> {
        if *self < row.values.len() {
            Ok(*self)
        } else {
            Err(Error::Conversion {
                column: *self,
                message: format!("no such column (the row has {})", row.values.len()),
            })
        }
    }
}

impl RowIndex for &str {
    fn index(&self, row: &Row) -> Result<usize> {
        row.names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(self))
            .ok_or_else(|| Error::Conversion {
                column: 0,
                message: format!("no column named {self}"),
            })
    }
}

impl Row {
    pub(crate) fn new(values: Vec<Value>, names: Arc<[String]>) -> Self {
        Row { values, names }
    }

    pub fn get<I: RowIndex, T: FromSql>(&self, idx: I) -> Result<T> {
        let i = idx.index(self)?;
        T::from_value(&self.values[i]).map_err(|message| Error::Conversion { column: i, message })
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn into_values(self) -> Vec<Value> {
        self.values
    }
}

/// Bound parameters, as rusqlite's `Params`: `params![..]`, `[a, b]`, `[]`, `params_from_iter`.
pub trait Params {
    fn values(self) -> Vec<Value>;
}

impl Params for [&dyn ToSql; 0] {
    fn values(self) -> Vec<Value> {
        Vec::new()
    }
}

impl Params for &[&dyn ToSql] {
    fn values(self) -> Vec<Value> {
        self.iter().map(|v| v.to_value()).collect()
    }
}

impl Params for Vec<Value> {
    fn values(self) -> Vec<Value> {
        self
    }
}

macro_rules! params_for_arrays {
    ($($n:literal)*) => {$(
        impl<T: ToSql> Params for [T; $n] {
            fn values(self) -> Vec<Value> {
                self.iter().map(|v| v.to_value()).collect()
            }
        }
        impl<T: ToSql + ?Sized> Params for &[&T; $n] {
            fn values(self) -> Vec<Value> {
                self.iter().map(|v| v.to_value()).collect()
            }
        }
    )*};
}
params_for_arrays!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16);

/// Parameters from an iterator (rusqlite's `params_from_iter`).
pub fn params_from_iter<I>(iter: I) -> Vec<Value>
where
    I: IntoIterator,
    I::Item: ToSql,
{
    iter.into_iter().map(|v| v.to_value()).collect()
}

/// `params![a, b, c]`: a slice of `&dyn ToSql`, as in rusqlite.
#[macro_export]
macro_rules! params {
    () => { &[] as &[&dyn $crate::sql::ToSql] };
    ($($p:expr),+ $(,)?) => { &[$(&$p as &dyn $crate::sql::ToSql),+] as &[&dyn $crate::sql::ToSql] };
}
pub use crate::params;

/// A connection (or an open transaction) on either backend. Store code receives `&Connection`
/// in its read and write closures; what it runs is committed or rolled back by the store.
pub enum Connection<'a> {
    Sqlite(&'a rusqlite::Connection),
    Postgres(&'a pg::PgClient),
}

/// The store's write closures receive the same type: a transaction is a connection inside one.
pub type Transaction<'a> = Connection<'a>;

impl Connection<'_> {
    pub fn is_postgres(&self) -> bool {
        matches!(self, Connection::Postgres(_))
    }

    /// Runs a statement; returns the number of rows it changed.
    pub fn execute<P: Params>(&self, sql: &str, params: P) -> Result<usize> {
        let values = params.values();
        match self {
            Connection::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                Ok(st.execute(rusqlite::params_from_iter(values.iter()))?)
            }
            Connection::Postgres(c) => Ok(c.execute(sql, &values)? as usize),
        }
    }

    /// Runs an INSERT and returns the new row's `id` (`RETURNING id`, on both backends).
    pub fn insert<P: Params>(&self, sql: &str, params: P) -> Result<i64> {
        self.query_row(&format!("{sql} RETURNING id"), params, |r| r.get(0))
    }

    /// Runs several statements, without parameters (migrations, tests).
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match self {
            Connection::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Connection::Postgres(c) => c.batch(&dialect::to_postgres(sql)),
        }
    }

    /// Every row of a query, read at once.
    pub fn query_all<P: Params>(&self, sql: &str, params: P) -> Result<Vec<Row>> {
        let values = params.values();
        match self {
            Connection::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                let names: Arc<[String]> = st.column_names().map(|s| s.to_string()).collect();
                let width = names.len();
                let mut rows = st.query(rusqlite::params_from_iter(values.iter()))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    let mut vals = Vec::with_capacity(width);
                    for i in 0..width {
                        vals.push(Value::from(r.get_ref(i)?));
                    }
                    out.push(Row::new(vals, names.clone()));
                }
                Ok(out)
            }
            Connection::Postgres(c) => c.query(sql, &values),
        }
    }

    /// The first row, mapped by `f`; no row is [`Error::NoRows`] (see `optional()`).
    pub fn query_row<T, P, F>(&self, sql: &str, params: P, f: F) -> Result<T>
    where
        P: Params,
        F: FnOnce(&Row) -> Result<T>,
    {
        let rows = self.query_all(sql, params)?;
        match rows.first() {
            Some(r) => f(r),
            None => Err(Error::NoRows),
        }
    }

    pub fn prepare<'s>(&'s self, sql: &str) -> Result<Statement<'s>> {
        Ok(Statement {
            conn: self,
            sql: sql.to_string(),
        })
    }

    /// Same as [`prepare`](Self::prepare): both backends cache prepared statements.
    pub fn prepare_cached<'s>(&'s self, sql: &str) -> Result<Statement<'s>> {
        self.prepare(sql)
    }
}

/// A statement bound to its connection, as rusqlite's (prepared on first use, then cached).
pub struct Statement<'c> {
    conn: &'c Connection<'c>,
    sql: String,
}

impl Statement<'_> {
    pub fn execute<P: Params>(&mut self, params: P) -> Result<usize> {
        self.conn.execute(&self.sql, params)
    }

    pub fn query_map<T, P, F>(&mut self, params: P, f: F) -> Result<std::vec::IntoIter<Result<T>>>
    where
        P: Params,
        F: FnMut(&Row) -> Result<T>,
    {
        let rows = self.conn.query_all(&self.sql, params)?;
        Ok(rows.iter().map(f).collect::<Vec<_>>().into_iter())
    }

    pub fn query<P: Params>(&mut self, params: P) -> Result<Rows> {
        Ok(Rows {
            rows: self.conn.query_all(&self.sql, params)?.into_iter(),
            current: None,
        })
    }

    pub fn exists<P: Params>(&mut self, params: P) -> Result<bool> {
        Ok(!self.conn.query_all(&self.sql, params)?.is_empty())
    }
}

/// Rows of [`Statement::query`], walked with `next()` as in rusqlite.
pub struct Rows {
    rows: std::vec::IntoIter<Row>,
    current: Option<Row>,
}

impl Rows {
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<&Row>> {
        self.current = self.rows.next();
        Ok(self.current.as_ref())
    }
}
