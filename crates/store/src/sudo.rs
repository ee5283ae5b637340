//! server_sudo: per-server privilege escalation settings (migrations v4, v5).

use super::{SqlContext, Store};
use crate::sql::{OptionalExtension, params};
use color_eyre::eyre::Result;

pub use ptui_types::records::SudoSettings;

impl Store {
    pub fn server_sudo(&self, server_id: i64) -> Result<SudoSettings> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT become, password_env, prompt FROM server_sudo WHERE server_id=?1",
                [server_id],
                |r| {
                    Ok(SudoSettings {
                        escalate: r.get::<_, Option<i64>>(0)?.map(|b| b != 0),
                        password_env: r.get(1)?,
                        prompt: r.get::<_, i64>(2)? != 0,
                    })
                },
            )
            .optional()
            .sql()?
            .unwrap_or_default())
        })
    }

    /// Replaces the server's settings; the default removes the row.
    pub fn set_server_sudo(&self, server_id: i64, s: &SudoSettings) -> Result<()> {
        self.write(|tx| {
            if *s == SudoSettings::default() {
                tx.execute("DELETE FROM server_sudo WHERE server_id=?1", [server_id])
                    .sql()?;
            } else {
                tx.execute(
                    "INSERT INTO server_sudo(server_id, become, password_env, prompt) VALUES(?1,?2,?3,?4)
                     ON CONFLICT(server_id) DO UPDATE SET become=excluded.become,
                       password_env=excluded.password_env, prompt=excluded.prompt",
                    params![
                        server_id,
                        s.escalate.map(i64::from),
                        s.password_env,
                        i64::from(s.prompt)
                    ],
                )
                .sql()?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ptui_types::server::{ServerSpec, ServerStatus};

    #[test]
    fn round_trip_and_default_removes() {
        let (_d, s) = crate::test_store();
        let srv = s
            .add_server(
                &ServerSpec {
                    name: "a".into(),
                    host: "h".into(),
                    port: 22,
                    user: "u".into(),
                    ..Default::default()
                },
                ServerStatus::PendingSetup,
            )
            .unwrap();
        assert_eq!(s.server_sudo(srv.id).unwrap(), SudoSettings::default());
        let set = SudoSettings {
            escalate: Some(true),
            password_env: Some("PW".into()),
            prompt: false,
        };
        s.set_server_sudo(srv.id, &set).unwrap();
        assert_eq!(s.server_sudo(srv.id).unwrap(), set);
        // Switching to prompt replaces the env var (an upsert, not a merge).
        let prompt = SudoSettings {
            escalate: Some(true),
            password_env: None,
            prompt: true,
        };
        s.set_server_sudo(srv.id, &prompt).unwrap();
        assert_eq!(s.server_sudo(srv.id).unwrap(), prompt);
        s.set_server_sudo(srv.id, &SudoSettings::default()).unwrap();
        assert_eq!(s.server_sudo(srv.id).unwrap(), SudoSettings::default());
    }
}
