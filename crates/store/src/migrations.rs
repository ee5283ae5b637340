//! Schema migrations, versioned by `PRAGMA user_version`. Append only: never edit a shipped step.

use rusqlite::{Connection, TransactionBehavior};

/// Each entry moves the schema from version `index` to `index + 1`.
pub const MIGRATIONS: &[&str] = &[
    // v1: inventory, jobs and their logs, audit.
    r#"
    CREATE TABLE servers (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        host TEXT NOT NULL,
        port INTEGER NOT NULL DEFAULT 22,
        user TEXT NOT NULL DEFAULT 'root',
        identity TEXT,
        jump TEXT,
        tags TEXT NOT NULL DEFAULT '[]',
        password_env TEXT,
        status TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE server_events (
        id INTEGER PRIMARY KEY,
        server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
        ts INTEGER NOT NULL,
        from_status TEXT,
        to_status TEXT NOT NULL,
        reason TEXT NOT NULL,
        job_id INTEGER
    );
    CREATE INDEX server_events_server ON server_events(server_id, id);
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        server_id INTEGER REFERENCES servers(id) ON DELETE SET NULL,
        server_name TEXT NOT NULL,
        app_id TEXT NOT NULL,
        app_version TEXT NOT NULL DEFAULT '',
        action TEXT NOT NULL DEFAULT 'install',
        status TEXT NOT NULL,
        error_kind TEXT,
        error_message TEXT,
        exit_code INTEGER,
        inputs TEXT NOT NULL DEFAULT '{}',
        owner TEXT,
        heartbeat_at INTEGER,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        started_at INTEGER,
        finished_at INTEGER
    );
    CREATE INDEX jobs_status ON jobs(status);
    CREATE INDEX jobs_server ON jobs(server_id, id);
    CREATE TABLE job_logs (
        job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        stream TEXT NOT NULL,
        ts INTEGER NOT NULL,
        text TEXT NOT NULL,
        PRIMARY KEY (job_id, seq)
    ) WITHOUT ROWID;
    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY,
        ts INTEGER NOT NULL,
        operator TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL DEFAULT '',
        details TEXT NOT NULL DEFAULT ''
    );
    "#,
    // v2: deployments, incidents, per-server leases.
    r#"
    CREATE TABLE deployments (
        id INTEGER PRIMARY KEY,
        server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
        app_id TEXT NOT NULL,
        app_version TEXT NOT NULL DEFAULT '',
        inputs TEXT NOT NULL DEFAULT '{}',
        job_id INTEGER,
        installed_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        UNIQUE (server_id, app_id)
    );
    CREATE TABLE incidents (
        id INTEGER PRIMARY KEY,
        server_id INTEGER REFERENCES servers(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        state TEXT NOT NULL,
        app_id TEXT,
        opened_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        resolved_at INTEGER,
        details TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX incidents_open ON incidents(server_id, kind, state);
    CREATE TABLE server_leases (
        server_id INTEGER PRIMARY KEY REFERENCES servers(id) ON DELETE CASCADE,
        job_id INTEGER,
        holder TEXT NOT NULL,
        acquired_at INTEGER NOT NULL,
        heartbeat_at INTEGER NOT NULL
    );
    "#,
    // v3 (health): check samples and their hourly rollup, per-server health policy, manual
    // maintenance windows, incident recovery bookkeeping and timeline, singleton leases.
    r#"
    CREATE TABLE health_samples (
        id INTEGER PRIMARY KEY,
        server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
        ts INTEGER NOT NULL,
        ok INTEGER NOT NULL,
        failure TEXT,
        connect_ms INTEGER,
        latency_ms INTEGER,
        load1 REAL,
        mem_pct REAL,
        disk_pct REAL,
        details TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX health_samples_server_ts ON health_samples(server_id, ts);
    CREATE INDEX health_samples_ts ON health_samples(ts);
    CREATE TABLE health_hourly (
        server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
        hour INTEGER NOT NULL,
        checks INTEGER NOT NULL,
        failures INTEGER NOT NULL,
        latency_avg_ms REAL,
        latency_max_ms INTEGER,
        load1_avg REAL,
        mem_pct_max REAL,
        disk_pct_max REAL,
        PRIMARY KEY (server_id, hour)
    ) WITHOUT ROWID;
    CREATE TABLE server_health (
        server_id INTEGER PRIMARY KEY REFERENCES servers(id) ON DELETE CASCADE,
        interval_ms INTEGER,
        recovery TEXT NOT NULL DEFAULT 'notify',
        base_installer TEXT
    );
    CREATE TABLE maintenance (
        id INTEGER PRIMARY KEY,
        server_id INTEGER REFERENCES servers(id) ON DELETE CASCADE,
        starts_at INTEGER NOT NULL,
        ends_at INTEGER,
        ended_at INTEGER,
        reason TEXT NOT NULL DEFAULT '',
        created_by TEXT NOT NULL
    );
    ALTER TABLE incidents ADD COLUMN previous_status TEXT;
    ALTER TABLE incidents ADD COLUMN affected TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE incidents ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE incidents ADD COLUMN next_attempt_at INTEGER;
    ALTER TABLE incidents ADD COLUMN last_notified_at INTEGER;
    CREATE TABLE incident_events (
        id INTEGER PRIMARY KEY,
        incident_id INTEGER NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
        ts INTEGER NOT NULL,
        message TEXT NOT NULL,
        job_id INTEGER
    );
    CREATE INDEX incident_events_incident ON incident_events(incident_id, id);
    CREATE TABLE singleton_leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        heartbeat_at INTEGER NOT NULL
    );
    "#,
    // v4: per-server privilege escalation (from inventory imports or `server sudo`).
    // A side table, so the `servers` row type stays as it is. `become` NULL means the default
    // (sudo -n for non-root logins); `password_env` names an env var, never a password.
    r#"
    CREATE TABLE server_sudo (
        server_id INTEGER PRIMARY KEY REFERENCES servers(id) ON DELETE CASCADE,
        become INTEGER,
        password_env TEXT
    );
    "#,
    // v5: `server sudo --prompt`: the password is asked for (TUI dialog or CLI prompt) and kept
    // in the engine's memory only; this flag is all that is stored.
    r#"
    ALTER TABLE server_sudo ADD COLUMN prompt INTEGER NOT NULL DEFAULT 0;
    "#,
    // v6: durable jobs. `spool` names the job's spool on the server (set before the job is
    // sent); the offsets say how much of its out/err files is stored in job_logs, written in
    // the same transaction as the lines; `deadline_at` is when the job's own timeout has
    // surely passed, after which an unreachable server makes the job interrupted.
    r#"
    ALTER TABLE jobs ADD COLUMN spool TEXT;
    ALTER TABLE jobs ADD COLUMN out_offset INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN err_offset INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN deadline_at INTEGER;
    "#,
    // v7: changes an operator can trust. `sealed_secrets`: a job's / deployment's sensitive
    // inputs, encrypted by the engine (the job's copy moves to the deployment at its end).
    // `prev_hash`/`hash`: the audit log's HMAC chain; `audit_chain` says which key chained it
    // and how many rows from before the chain it took in (chained once, when the key is set).
    r#"
    ALTER TABLE jobs ADD COLUMN sealed_secrets BLOB;
    ALTER TABLE deployments ADD COLUMN sealed_secrets BLOB;
    ALTER TABLE audit_log ADD COLUMN prev_hash TEXT;
    ALTER TABLE audit_log ADD COLUMN hash TEXT;
    CREATE TABLE audit_chain (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        key_id TEXT NOT NULL,
        legacy_rows INTEGER NOT NULL,
        chained_at INTEGER NOT NULL
    );
    "#,
    // v8: an incident acknowledged by an operator (its reminders stop); notes go to the
    // timeline (incident_events).
    r#"
    CREATE TABLE incident_acks (
        incident_id INTEGER PRIMARY KEY REFERENCES incidents(id) ON DELETE CASCADE,
        acked_by TEXT NOT NULL,
        acked_at INTEGER NOT NULL
    );
    "#,
    // v9: sites. A server belongs to one site (only that site's processes reach it); each
    // process that serves sites registers as a runner (heartbeat); `jobs.site` marks a job
    // queued for a process of its server's site (owner NULL until one claims it).
    r#"
    ALTER TABLE servers ADD COLUMN site TEXT NOT NULL DEFAULT 'default';
    ALTER TABLE jobs ADD COLUMN site TEXT;
    CREATE INDEX jobs_site_queue ON jobs(status, site);
    CREATE TABLE runners (
        id TEXT PRIMARY KEY,
        hostname TEXT NOT NULL,
        pid INTEGER NOT NULL,
        sites TEXT NOT NULL,
        role TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        heartbeat_at INTEGER NOT NULL
    );
    "#,
    // v10: the
    // deployments a later job replaced, newest last, for `rollback`. `replaced_by_job` names the
    // configuration copy that job kept on the server before it ran (the copy of this
    // deployment's configuration).
    r#"
    CREATE TABLE deployment_history (
        id INTEGER PRIMARY KEY,
        server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
        app_id TEXT NOT NULL,
        app_version TEXT NOT NULL,
        inputs TEXT NOT NULL,
        sealed_secrets BLOB,
        job_id INTEGER,
        replaced_by_job INTEGER NOT NULL,
        replaced_at INTEGER NOT NULL
    );
    CREATE INDEX deployment_history_app ON deployment_history(server_id, app_id, id);
    "#,
];

pub const LATEST_VERSION: i64 = MIGRATIONS.len() as i64;

/// Applies every missing step, each in its own IMMEDIATE transaction.
pub fn migrate(conn: &mut Connection) -> color_eyre::Result<()> {
    migrate_to(conn, LATEST_VERSION)
}

pub fn migrate_to(conn: &mut Connection, target: i64) -> color_eyre::Result<()> {
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > LATEST_VERSION {
            color_eyre::eyre::bail!(
                "schema version {version} is newer than this binary knows ({LATEST_VERSION}); upgrade provision-tui"
            );
        }
        if version >= target {
            return Ok(());
        }
        let step = MIGRATIONS[version as usize];
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
    }
}

/// PostgreSQL: the same steps, rewritten by `sql::dialect`; the version is the one row of
/// `ptui_schema`. Each step runs in its own transaction under the writers' advisory lock, so
/// bastions started together migrate one after the other.
pub fn migrate_postgres(pool: &crate::sql::pg::PgPool) -> color_eyre::Result<()> {
    migrate_postgres_to(pool, LATEST_VERSION)
}

pub fn migrate_postgres_to(pool: &crate::sql::pg::PgPool, target: i64) -> color_eyre::Result<()> {
    use crate::sql::Value;
    let mut c = pool.acquire()?;
    loop {
        c.begin_write()?;
        let step = (|| -> color_eyre::Result<bool> {
            let client = c.client();
            client.batch("CREATE TABLE IF NOT EXISTS ptui_schema (version BIGINT NOT NULL)")?;
            let version = match client
                .query("SELECT version FROM ptui_schema", &[])?
                .first()
            {
                Some(r) => r.get::<_, i64>(0)?,
                None => {
                    client.execute("INSERT INTO ptui_schema(version) VALUES(0)", &[])?;
                    0
                }
            };
            if version > LATEST_VERSION {
                color_eyre::eyre::bail!(
                    "schema version {version} is newer than this binary knows ({LATEST_VERSION}); upgrade provision-tui"
                );
            }
            if version >= target {
                return Ok(false);
            }
            client.batch(&crate::sql::dialect::to_postgres(
                MIGRATIONS[version as usize],
            ))?;
            client.execute(
                "UPDATE ptui_schema SET version=?1",
                &[Value::Integer(version + 1)],
            )?;
            Ok(true)
        })();
        match step {
            Ok(more) => {
                c.commit()?;
                if !more {
                    return Ok(());
                }
            }
            Err(e) => {
                let _ = c.rollback();
                return Err(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    #[test]
    fn empty_database_reaches_latest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        assert_eq!(store.schema_version().unwrap(), LATEST_VERSION);
        let tables: Vec<String> = store
            .read(|c| {
                let mut st =
                    c.prepare("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")?;
                let v = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
                Ok(v)
            })
            .unwrap();
        for t in [
            "servers",
            "server_events",
            "jobs",
            "job_logs",
            "deployments",
            "incidents",
            "audit_log",
            "server_leases",
            "server_sudo",
            "health_samples",
            "health_hourly",
            "server_health",
            "maintenance",
            "incident_events",
            "runners",
        ] {
            assert!(
                tables.iter().any(|x| x == t),
                "missing table {t}: {tables:?}"
            );
        }
    }

    #[test]
    fn every_older_version_upgrades_and_keeps_data() {
        for start in 0..LATEST_VERSION {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("state.db");
            {
                let mut conn = Connection::open(&path).unwrap();
                migrate_to(&mut conn, start).unwrap();
                if start >= 1 {
                    conn.execute(
                        "INSERT INTO servers(name,host,status,created_at,updated_at) VALUES('old','10.0.0.1','ready',1,1)",
                        [],
                    )
                    .unwrap();
                }
            }
            let store = Store::open(&path).unwrap();
            assert_eq!(
                store.schema_version().unwrap(),
                LATEST_VERSION,
                "from v{start}"
            );
            let ok: String = store
                .read(|c| Ok(c.query_row("PRAGMA integrity_check", [], |r| r.get(0))?))
                .unwrap();
            assert_eq!(ok, "ok");
            if start >= 1 {
                let s = store
                    .server_by_name("old")
                    .unwrap()
                    .expect("row survives migration");
                assert_eq!(s.host, "10.0.0.1");
            }
        }
    }

    #[test]
    fn v4_sudo_rows_keep_their_settings_and_do_not_prompt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            migrate_to(&mut conn, 4).unwrap();
            conn.execute_batch(
                "INSERT INTO servers(id,name,host,status,created_at,updated_at) VALUES(1,'a','h','ready',1,1);
                 INSERT INTO server_sudo(server_id, become, password_env) VALUES(1, 1, 'PW');",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let s = store.server_sudo(1).unwrap();
        assert_eq!(s.password_env.as_deref(), Some("PW"));
        assert_eq!(s.escalate, Some(true));
        assert!(!s.prompt, "an env-var row must not turn into a prompt one");
    }

    /// PostgreSQL, from an empty database and from each earlier version, with a row that
    /// must survive; the real server of `testing`.
    #[test]
    fn postgres_every_older_version_upgrades_and_keeps_data() {
        let server = crate::testing::pg_server().unwrap();
        for start in 0..=LATEST_VERSION {
            let url = crate::testing::fresh_postgres_url().unwrap();
            {
                let target =
                    crate::sql::pg_config::resolve_with(&url, Some(&server.pgpass)).unwrap();
                let pool = crate::sql::pg::PgPool::connect(target).unwrap();
                migrate_postgres_to(&pool, start).unwrap();
                if start >= 1 {
                    pool.acquire()
                        .unwrap()
                        .client()
                        .execute(
                            "INSERT INTO servers(name,host,status,created_at,updated_at) VALUES('old','10.0.0.1','ready',1,1)",
                            &[],
                        )
                        .unwrap();
                }
            }
            let store = Store::open_postgres_with(&url, Some(&server.pgpass)).unwrap();
            assert_eq!(
                store.schema_version().unwrap(),
                LATEST_VERSION,
                "from v{start}"
            );
            if start >= 1 {
                let s = store.server_by_name("old").unwrap().expect("row survives");
                assert_eq!(s.host, "10.0.0.1");
                // The identity goes on after a row inserted before the last steps.
                let new =
                    crate::test_server(&store, "new", ptui_types::server::ServerStatus::Ready);
                assert!(new.id > s.id);
            }
        }
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", LATEST_VERSION + 5)
                .unwrap();
        }
        let err = Store::open(&path).err().expect("must refuse");
        assert!(
            format!("{err:#}").contains("newer than this binary"),
            "{err:#}"
        );
    }
}
