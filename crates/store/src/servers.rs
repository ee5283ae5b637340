//! servers and server_events.

use super::{SqlContext, Store, now_ms};
use crate::sql::{Connection, OptionalExtension, Row, params};
use color_eyre::eyre::{Result, bail, eyre};
use ptui_types::server::{Server, ServerSpec, ServerStatus};

pub use ptui_types::records::ServerEvent;

const SERVER_COLS: &str = "id, name, host, port, user, identity, jump, tags, password_env, status, created_at, updated_at, site";

fn server_from_row(r: &Row) -> crate::sql::Result<Server> {
    let tags: String = r.get(7)?;
    let status: String = r.get(9)?;
    Ok(Server {
        id: r.get(0)?,
        name: r.get(1)?,
        host: r.get(2)?,
        port: r.get::<_, i64>(3)? as u16,
        user: r.get(4)?,
        identity: r.get(5)?,
        jump: r.get(6)?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        password_env: r.get(8)?,
        // An unknown name can only come from a newer binary; show it as error rather than crash.
        status: ServerStatus::parse(&status).unwrap_or(ServerStatus::Error),
        created_at: r.get(10)?,
        updated_at: r.get(11)?,
        site: r.get(12)?,
    })
}

pub(crate) fn get_server(c: &Connection, id: i64) -> Result<Option<Server>> {
    c.query_row(
        &format!("SELECT {SERVER_COLS} FROM servers WHERE id=?1"),
        [id],
        server_from_row,
    )
    .optional()
    .sql()
}

/// Moves a server to `to` inside an open write transaction, checking the rules and writing
/// the server_events row. This is the only place server status changes.
pub(crate) fn transition_in(
    c: &Connection,
    server_id: i64,
    to: ServerStatus,
    reason: &str,
    job_id: Option<i64>,
) -> Result<Server> {
    let server =
        get_server(c, server_id)?.ok_or_else(|| eyre!("server #{server_id} no longer exists"))?;
    if server.status == to {
        return Ok(server);
    }
    if !server.status.can_transition_to(to) {
        let allowed: Vec<&str> = server
            .status
            .allowed_targets()
            .iter()
            .map(|s| s.as_str())
            .collect();
        bail!(
            "server {} cannot go from {} to {}; allowed from {}: {}",
            server.name,
            server.status,
            to,
            server.status,
            allowed.join(", ")
        );
    }
    let now = now_ms();
    c.execute(
        "UPDATE servers SET status=?1, updated_at=?2 WHERE id=?3",
        params![to.as_str(), now, server_id],
    )
    .sql()?;
    c.execute(
        "INSERT INTO server_events(server_id, ts, from_status, to_status, reason, job_id) VALUES(?1,?2,?3,?4,?5,?6)",
        params![server_id, now, server.status.as_str(), to.as_str(), reason, job_id],
    )
    .sql()?;
    Ok(Server {
        status: to,
        updated_at: now,
        ..server
    })
}

impl Store {
    pub fn add_server(&self, spec: &ServerSpec, status: ServerStatus) -> Result<Server> {
        ptui_types::server::validate_server_name(&spec.name).map_err(|e| eyre!(e))?;
        if spec.host.trim().is_empty() {
            bail!("server {}: --host must not be empty", spec.name);
        }
        self.write(|tx| {
            let exists: bool = tx
                .query_row("SELECT 1 FROM servers WHERE name=?1", [&spec.name], |_| Ok(true))
                .optional()
                .sql()?
                .unwrap_or(false);
            if exists {
                bail!("a server named {} already exists; use another name or `server rm` it first", spec.name);
            }
            if let Some(jump) = &spec.jump {
                let found: Option<i64> =
                    tx.query_row("SELECT id FROM servers WHERE name=?1", [jump], |r| r.get(0)).optional().sql()?;
                if found.is_none() {
                    bail!("jump host {jump} is not a registered server; add it first with `server add`");
                }
            }
            let now = now_ms();
            let id = tx.insert(
                "INSERT INTO servers(name, host, port, user, identity, jump, tags, password_env, status, created_at, updated_at, site)
                 VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?10,COALESCE(?11,'default'))",
                params![
                    spec.name,
                    spec.host,
                    spec.port,
                    spec.user,
                    spec.identity,
                    spec.jump,
                    serde_json::to_string(&spec.tags)?,
                    spec.password_env,
                    status.as_str(),
                    now,
                    spec.site
                ],
            )
            .sql()?;
            tx.execute(
                "INSERT INTO server_events(server_id, ts, from_status, to_status, reason) VALUES(?1,?2,NULL,?3,'registered')",
                params![id, now, status.as_str()],
            )
            .sql()?;
            get_server(tx, id)?.ok_or_else(|| eyre!("server vanished after insert"))
        })
    }

    /// Updates connection fields of an existing server (used by imports). Status is untouched.
    pub fn update_server_spec(&self, id: i64, spec: &ServerSpec) -> Result<Server> {
        self.write(|tx| {
            tx.execute(
                "UPDATE servers SET host=?1, port=?2, user=?3, identity=?4, jump=?5, tags=?6, password_env=?7, updated_at=?8, site=COALESCE(?10, site) WHERE id=?9",
                params![
                    spec.host,
                    spec.port,
                    spec.user,
                    spec.identity,
                    spec.jump,
                    serde_json::to_string(&spec.tags)?,
                    spec.password_env,
                    now_ms(),
                    id,
                    spec.site
                ],
            )
            .sql()?;
            get_server(tx, id)?.ok_or_else(|| eyre!("server #{id} no longer exists"))
        })
    }

    pub fn list_servers(&self) -> Result<Vec<Server>> {
        self.read(|c| {
            let mut st = c.prepare(&format!("SELECT {SERVER_COLS} FROM servers ORDER BY name"))?;
            let rows = st
                .query_map([], server_from_row)?
                .collect::<crate::sql::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    pub fn server_by_name(&self, name: &str) -> Result<Option<Server>> {
        self.read(|c| {
            c.query_row(
                &format!("SELECT {SERVER_COLS} FROM servers WHERE name=?1"),
                [name],
                server_from_row,
            )
            .optional()
            .sql()
        })
    }

    pub fn server_by_id(&self, id: i64) -> Result<Option<Server>> {
        self.read(|c| get_server(c, id))
    }

    /// Looks a server up by name, with an error that says how to find valid names.
    pub fn require_server(&self, name: &str) -> Result<Server> {
        self.server_by_name(name)?.ok_or_else(|| {
            eyre!("no server named {name}; `provision-tui server list` shows the registered ones")
        })
    }

    /// Removes a server; refused while a job holds its lease or another server jumps through it.
    pub fn remove_server(&self, name: &str) -> Result<Server> {
        self.write(|tx| {
            let server = tx
                .query_row(&format!("SELECT {SERVER_COLS} FROM servers WHERE name=?1"), [name], server_from_row)
                .optional()
                .sql()?
                .ok_or_else(|| eyre!("no server named {name}"))?;
            let busy: Option<i64> = tx
                .query_row(
                    "SELECT job_id FROM server_leases WHERE server_id=?1 AND heartbeat_at > ?2",
                    params![server.id, now_ms() - 30_000],
                    |r| r.get(0),
                )
                .optional()
                .sql()?
                .flatten();
            if let Some(job) = busy {
                bail!("server {name} is running job #{job}; cancel it or wait before removing the server");
            }
            let dependants: Vec<String> = {
                let mut st = tx.prepare("SELECT name FROM servers WHERE jump=?1").sql()?;
                st.query_map([name], |r| r.get(0)).sql()?.collect::<crate::sql::Result<_>>().sql()?
            };
            if !dependants.is_empty() {
                bail!("server {name} is the jump host of {}; change or remove those first", dependants.join(", "));
            }
            tx.execute("DELETE FROM servers WHERE id=?1", [server.id]).sql()?;
            Ok(server)
        })
    }

    /// Operator or engine status change, with the rules checked and an event row written.
    pub fn transition_server(
        &self,
        server_id: i64,
        to: ServerStatus,
        reason: &str,
        job_id: Option<i64>,
    ) -> Result<Server> {
        self.write(|tx| transition_in(tx, server_id, to, reason, job_id))
    }

    pub fn server_events(&self, server_id: i64, limit: usize) -> Result<Vec<ServerEvent>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT id, server_id, ts, from_status, to_status, reason, job_id FROM server_events
                 WHERE server_id=?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = st
                .query_map(params![server_id, limit as i64], |r| {
                    let from: Option<String> = r.get(3)?;
                    let to: String = r.get(4)?;
                    Ok(ServerEvent {
                        id: r.get(0)?,
                        server_id: r.get(1)?,
                        ts: r.get(2)?,
                        from_status: from.and_then(|s| ServerStatus::parse(&s)),
                        to_status: ServerStatus::parse(&to).unwrap_or(ServerStatus::Error),
                        reason: r.get(5)?,
                        job_id: r.get(6)?,
                    })
                })?
                .collect::<crate::sql::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    /// Count of servers per status, for headers and metrics.
    pub fn server_status_counts(&self) -> Result<Vec<(ServerStatus, i64)>> {
        self.read(|c| {
            let mut st = c.prepare("SELECT status, COUNT(*) FROM servers GROUP BY status")?;
            let rows = st
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
                .collect::<crate::sql::Result<Vec<_>>>()?;
            Ok(rows
                .into_iter()
                .filter_map(|(s, n)| ServerStatus::parse(&s).map(|s| (s, n)))
                .collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use ptui_types::server::{ServerSpec, ServerStatus};

    fn spec(name: &str) -> ServerSpec {
        ServerSpec {
            name: name.into(),
            host: "10.0.0.5".into(),
            port: 22,
            user: "root".into(),
            ..Default::default()
        }
    }

    #[test]
    fn add_list_transition_and_history() {
        let (_d, s) = crate::test_store();
        let a = s
            .add_server(&spec("web1"), ServerStatus::PendingSetup)
            .unwrap();
        assert!(
            s.add_server(&spec("web1"), ServerStatus::PendingSetup)
                .is_err(),
            "duplicate name"
        );
        s.transition_server(a.id, ServerStatus::Provisioning, "job", None)
            .unwrap();
        let err = s
            .transition_server(a.id, ServerStatus::InUse, "bad", None)
            .unwrap_err();
        assert!(
            format!("{err}").contains("cannot go from provisioning to in_use"),
            "{err}"
        );
        s.transition_server(a.id, ServerStatus::Ready, "ok", None)
            .unwrap();
        let ev = s.server_events(a.id, 10).unwrap();
        let seq: Vec<_> = ev.iter().rev().map(|e| e.to_status).collect();
        assert_eq!(
            seq,
            vec![
                ServerStatus::PendingSetup,
                ServerStatus::Provisioning,
                ServerStatus::Ready
            ]
        );
        assert_eq!(
            s.server_by_name("web1").unwrap().unwrap().status,
            ServerStatus::Ready
        );
    }

    #[test]
    fn jump_must_exist_and_blocks_removal() {
        let (_d, s) = crate::test_store();
        let mut t = spec("inner");
        t.jump = Some("bastion".into());
        assert!(s.add_server(&t, ServerStatus::Discovered).is_err());
        s.add_server(&spec("bastion"), ServerStatus::Ready).unwrap();
        s.add_server(&t, ServerStatus::Discovered).unwrap();
        assert!(s.remove_server("bastion").is_err());
        s.remove_server("inner").unwrap();
        s.remove_server("bastion").unwrap();
        assert!(s.list_servers().unwrap().is_empty());
    }
}
