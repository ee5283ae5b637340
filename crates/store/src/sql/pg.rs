//! PostgreSQL connections for the synchronous store. tokio-postgres runs on a runtime of its
//! own, on its own thread, so the store's callers (sync code, or tasks of the engine's
//! runtime) wait for a query as they wait for SQLite, and no runtime is nested in another.
//! A small pool of clients; one listener connection turns other processes' commits
//! (`NOTIFY provision_tui`, sent by every write) into a change counter.

use super::{Error, Result, Row, Value, dialect};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

/// The channel every write notifies on commit.
pub const CHANGES_CHANNEL: &str = "provision_tui";

/// Clients in the pool: writes are serialised anyway (see `Store::write`); the rest serve
/// reads made while a write is open and the engine's parallel tasks.
const POOL_SIZE: usize = 4;

pub struct PgClient {
    client: tokio_postgres::Client,
    statements: Mutex<HashMap<(String, Vec<u32>), tokio_postgres::Statement>>,
    pid: i32,
}

fn wait<F: std::future::Future>(f: F) -> F::Output {
    futures::executor::block_on(f)
}

fn param_type(v: &Value) -> Type {
    match v {
        Value::Null => Type::UNKNOWN,
        Value::Integer(_) => Type::INT8,
        Value::Real(_) => Type::FLOAT8,
        Value::Text(_) => Type::TEXT,
        Value::Blob(_) => Type::BYTEA,
    }
}

impl PgClient {
    fn statement(&self, sql: &str, values: &[Value]) -> Result<tokio_postgres::Statement> {
        let types: Vec<Type> = values.iter().map(param_type).collect();
        let key = (sql.to_string(), types.iter().map(Type::oid).collect());
        if let Some(st) = self.lock_statements().get(&key) {
            return Ok(st.clone());
        }
        let st = wait(
            self.client
                .prepare_typed(&dialect::to_postgres(sql), &types),
        )?;
        self.lock_statements().insert(key, st.clone());
        Ok(st)
    }

    fn lock_statements(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<(String, Vec<u32>), tokio_postgres::Statement>> {
        self.statements.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn execute(&self, sql: &str, values: &[Value]) -> Result<u64> {
        let st = self.statement(sql, values)?;
        let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v as _).collect();
        Ok(wait(self.client.execute(&st, &params))?)
    }

    pub fn query(&self, sql: &str, values: &[Value]) -> Result<Vec<Row>> {
        let st = self.statement(sql, values)?;
        let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v as _).collect();
        let rows = wait(self.client.query(&st, &params))?;
        let names: Arc<[String]> = st.columns().iter().map(|c| c.name().to_string()).collect();
        rows.iter()
            .map(|r| {
                let mut vals = Vec::with_capacity(names.len());
                for i in 0..names.len() {
                    vals.push(r.try_get::<_, Raw>(i)?.0);
                }
                Ok(Row::new(vals, names.clone()))
            })
            .collect()
    }

    /// Statements without parameters, already in PostgreSQL's dialect.
    pub fn batch(&self, sql: &str) -> Result<()> {
        Ok(wait(self.client.batch_execute(sql))?)
    }

    fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Integer(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                _ => i.to_string().to_sql(&Type::TEXT, out),
            },
            Value::Real(f) => match *ty {
                Type::FLOAT4 => (*f as f32).to_sql(ty, out),
                _ => f.to_sql(&Type::FLOAT8, out),
            },
            Value::Text(t) => t.as_str().to_sql(&Type::TEXT, out),
            Value::Blob(b) => b.as_slice().to_sql(&Type::BYTEA, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// Any column, as a [`Value`].
struct Raw(Value);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let v = match *ty {
            Type::BOOL => Value::Integer(i64::from(bool::from_sql(ty, raw)?)),
            Type::INT2 => Value::Integer(i64::from(i16::from_sql(ty, raw)?)),
            Type::INT4 => Value::Integer(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT8 => Value::Integer(i64::from_sql(ty, raw)?),
            Type::OID => Value::Integer(i64::from(u32::from_sql(ty, raw)?)),
            Type::FLOAT4 => Value::Real(f64::from(f32::from_sql(ty, raw)?)),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::NUMERIC => numeric(raw)?,
            Type::BYTEA => Value::Blob(raw.to_vec()),
            Type::VOID => Value::Null,
            // text, varchar, name, bpchar, unknown, and anything sent as text.
            _ => Value::Text(String::from_utf8_lossy(raw).into_owned()),
        };
        Ok(Raw(v))
    }

    fn from_sql_null(
        _: &Type,
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(Value::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// PostgreSQL's binary numeric (base-10000 digits), as an integer when it has no fraction.
fn numeric(raw: &[u8]) -> std::result::Result<Value, Box<dyn std::error::Error + Sync + Send>> {
    let word = |i: usize| -> std::result::Result<i16, String> {
        raw.get(i * 2..i * 2 + 2)
            .map(|b| i16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "short numeric".to_string())
    };
    let ndigits = word(0)?.max(0) as usize;
    let weight = i32::from(word(1)?);
    let sign = word(2)? as u16;
    let dscale = word(3)?;
    if sign == 0xC000 {
        return Ok(Value::Real(f64::NAN));
    }
    let mut value = 0f64;
    for i in 0..ndigits {
        let d = f64::from(word(4 + i)?);
        value += d * 10000f64.powi(weight - i as i32);
    }
    if sign == 0x4000 {
        value = -value;
    }
    if dscale == 0 && value.abs() < 9.0e15 {
        Ok(Value::Integer(value as i64))
    } else {
        Ok(Value::Real(value))
    }
}

/// How to reach the server: what `pg_config::resolve` made of the URL and the environment.
#[derive(Clone)]
pub struct Target {
    pub config: tokio_postgres::Config,
    pub tls: Option<native_tls::TlsConnector>,
    /// The URL without its password, for messages and the dashboard.
    pub shown: String,
}

/// The pool, the runtime thread, and the change counter.
pub struct PgPool {
    target: Target,
    handle: tokio::runtime::Handle,
    _stop: tokio::sync::oneshot::Sender<()>,
    state: Mutex<PoolState>,
    freed: Condvar,
    own_pids: Arc<Mutex<HashSet<i32>>>,
    changes: Arc<AtomicI64>,
    listening: Arc<AtomicBool>,
}

impl PgPool {
    pub fn connect(target: Target) -> Result<Self> {
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("ptui-postgres".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = handle_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = handle_tx.send(Ok(rt.handle().clone()));
                rt.block_on(async {
                    let _ = stop_rx.await;
                });
            })
            .map_err(|e| Error::Connection(format!("cannot start the PostgreSQL thread: {e}")))?;
        let handle = handle_rx
            .recv()
            .map_err(|e| Error::Connection(e.to_string()))?
            .map_err(Error::Connection)?;
        let pool = PgPool {
            target,
            handle,
            _stop: stop_tx,
            state: Mutex::new(PoolState::default()),
            freed: Condvar::new(),
            own_pids: Arc::new(Mutex::new(HashSet::new())),
            changes: Arc::new(AtomicI64::new(0)),
            listening: Arc::new(AtomicBool::new(false)),
        };
        // The first client proves the server is reachable and the credentials work.
        let first = pool.new_client()?;
        pool.lock_state().open = 1;
        pool.give_back(first);
        pool.start_listener();
        Ok(pool)
    }

    pub fn shown(&self) -> &str {
        &self.target.shown
    }

    fn connect_raw(
        &self,
    ) -> Result<(
        tokio_postgres::Client,
        tokio::sync::mpsc::UnboundedReceiver<tokio_postgres::Notification>,
    )> {
        let config = self.target.config.clone();
        let tls = self.target.tls.clone();
        let shown = self.target.shown.clone();
        let (ntx, nrx) = tokio::sync::mpsc::unbounded_channel();
        let joined = wait(self.handle.spawn(async move {
            let res = match tls {
                Some(tls) => {
                    let tls = postgres_native_tls::MakeTlsConnector::new(tls);
                    config.connect(tls).await.map(|(c, conn)| {
                        tokio::spawn(drive(conn, ntx));
                        c
                    })
                }
                None => config
                    .connect(tokio_postgres::NoTls)
                    .await
                    .map(|(c, conn)| {
                        tokio::spawn(drive(conn, ntx));
                        c
                    }),
            };
            res.map_err(|e| {
                let detail = match e.as_db_error() {
                    Some(db) => db.message().to_string(),
                    None => format!("{e}"),
                };
                Error::Connection(format!("cannot connect to PostgreSQL at {shown}: {detail}"))
            })
        }))
        .map_err(|e| Error::Connection(format!("PostgreSQL thread: {e}")))?;
        Ok((joined?, nrx))
    }

    fn new_client(&self) -> Result<PgClient> {
        let (client, _notifications) = self.connect_raw()?;
        let pid = wait(client.query_one("SELECT pg_backend_pid()", &[]))?.try_get::<_, i32>(0)?;
        self.own_pids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(pid);
        Ok(PgClient {
            client,
            statements: Mutex::new(HashMap::new()),
            pid,
        })
    }

    /// A listener connection: every notification from a backend that is not ours moves the
    /// counter. Without one (a transaction-mode pooler drops LISTEN), `data_version` falls
    /// back to changing every second, so front ends re-read on a timer.
    fn start_listener(&self) {
        let Ok((client, mut notes)) = self.connect_raw() else {
            tracing::warn!(
                "PostgreSQL: no listener connection; changes by other bastions are polled"
            );
            return;
        };
        if let Err(e) = wait(client.batch_execute(&format!("LISTEN {CHANGES_CHANNEL}"))) {
            tracing::warn!("PostgreSQL: LISTEN failed ({e}); changes by other bastions are polled");
            return;
        }
        self.listening.store(true, Ordering::SeqCst);
        let own = self.own_pids.clone();
        let changes = self.changes.clone();
        let listening = self.listening.clone();
        self.handle.spawn(async move {
            let _keep = client;
            while let Some(n) = notes.recv().await {
                let ours = own
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .contains(&n.process_id());
                if !ours {
                    changes.fetch_add(1, Ordering::SeqCst);
                }
            }
            listening.store(false, Ordering::SeqCst);
        });
    }

    /// Changes when another process commits (see `Store::data_version`).
    pub fn data_version(&self) -> i64 {
        let n = self.changes.load(Ordering::SeqCst);
        if self.listening.load(Ordering::SeqCst) {
            n
        } else {
            n + ptui_types::time::now_ms() / 1000
        }
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A client for one read or one transaction; waits for one to be free.
    pub fn acquire(&self) -> Result<PooledClient<'_>> {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut state = self.lock_state();
        loop {
            if let Some(c) = state.idle.pop() {
                if c.is_closed() {
                    drop(state);
                    self.forget(&c);
                    state = self.lock_state();
                    continue;
                }
                return Ok(self.lend(c));
            }
            if state.open < POOL_SIZE {
                state.open += 1;
                drop(state);
                return match self.new_client() {
                    Ok(c) => Ok(self.lend(c)),
                    Err(e) => {
                        self.lock_state().open -= 1;
                        self.freed.notify_one();
                        Err(e)
                    }
                };
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(Error::Connection(format!(
                    "no free PostgreSQL connection to {} for 30 s",
                    self.target.shown
                )));
            }
            state = self
                .freed
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn lend(&self, c: PgClient) -> PooledClient<'_> {
        PooledClient {
            pool: self,
            client: Some(c),
            in_tx: false,
        }
    }

    fn give_back(&self, c: PgClient) {
        self.lock_state().idle.push(c);
        self.freed.notify_one();
    }

    fn forget(&self, c: &PgClient) {
        self.own_pids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&c.pid);
        let mut state = self.lock_state();
        state.open = state.open.saturating_sub(1);
        drop(state);
        self.freed.notify_one();
    }
}

#[derive(Default)]
struct PoolState {
    idle: Vec<PgClient>,
    open: usize,
}

/// Drives one connection; forwards its notifications.
async fn drive<S, T>(
    mut conn: tokio_postgres::Connection<S, T>,
    notes: tokio::sync::mpsc::UnboundedSender<tokio_postgres::Notification>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio_postgres::tls::TlsStream + Unpin,
{
    let mut messages = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
    use futures::StreamExt;
    while let Some(m) = messages.next().await {
        match m {
            Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                let _ = notes.send(n);
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!("PostgreSQL connection ended: {e}");
                break;
            }
        }
    }
}

/// A client borrowed from the pool. One left inside a transaction (a panic, an error while
/// rolling back) is closed rather than reused: the server rolls it back.
pub struct PooledClient<'p> {
    pool: &'p PgPool,
    client: Option<PgClient>,
    in_tx: bool,
}

impl PooledClient<'_> {
    pub fn client(&self) -> &PgClient {
        // Set at construction and taken only in drop.
        self.client.as_ref().unwrap_or_else(|| unreachable!())
    }

    /// `BEGIN`, then the lock that makes writers take turns across every process, as
    /// SQLite's `BEGIN IMMEDIATE` does.
    pub fn begin_write(&mut self) -> Result<()> {
        self.in_tx = true;
        self.client()
            .batch("BEGIN; SELECT pg_advisory_xact_lock(7283501)")
    }

    pub fn commit(&mut self) -> Result<()> {
        self.client()
            .batch(&format!("NOTIFY {CHANGES_CHANNEL}; COMMIT"))?;
        self.in_tx = false;
        Ok(())
    }

    pub fn rollback(&mut self) -> Result<()> {
        self.client().batch("ROLLBACK")?;
        self.in_tx = false;
        Ok(())
    }
}

impl Drop for PooledClient<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            if self.in_tx || c.is_closed() {
                self.pool.forget(&c);
            } else {
                self.pool.give_back(c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::numeric;
    use crate::sql::Value;

    fn enc(ndigits: i16, weight: i16, sign: u16, dscale: i16, digits: &[i16]) -> Vec<u8> {
        let mut v = Vec::new();
        for w in [ndigits, weight, sign as i16, dscale] {
            v.extend_from_slice(&w.to_be_bytes());
        }
        for d in digits {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v
    }

    #[test]
    fn numeric_integers_and_fractions() {
        // 123456789 = 1|2345|6789 with weight 2.
        assert_eq!(
            numeric(&enc(3, 2, 0, 0, &[1, 2345, 6789])).unwrap(),
            Value::Integer(123_456_789)
        );
        assert_eq!(
            numeric(&enc(2, 0, 0x4000, 2, &[12, 5000])).unwrap(),
            Value::Real(-12.5)
        );
        assert_eq!(numeric(&enc(0, 0, 0, 0, &[])).unwrap(), Value::Integer(0));
        assert!(
            numeric(&[0, 1]).is_err(),
            "a short value is an error, not a panic"
        );
    }
}
