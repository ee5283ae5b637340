//! Whether a package manager runs on a server: cancel says so, because killing apt or dpkg
//! midway leaves the server needing `dpkg --configure -a` (the installers' library repairs it on
//! their next run, but the operator should know what a cancel interrupts).

use crate::Engine;
use color_eyre::eyre::{Result, eyre};
use std::time::Duration;

/// Lists `PID COMMAND` of apt, apt-get, aptitude, dpkg and unattended-upgrades processes. It
/// reads /proc only (no procps on minimal systems), as the login user: no privileges needed.
const FIND_PACKAGE_MANAGERS: &str = r#"for d in /proc/[0-9]*; do
  c=$(cat "$d/comm" 2>/dev/null) || continue
  case $c in
    apt|apt-get|aptitude|dpkg|unattended-upgr*)
      printf '%s %s\n' "${d#/proc/}" "$(tr '\0' ' ' < "$d/cmdline" 2>/dev/null | cut -c1-100)" ;;
  esac
done"#;

/// One check must not hold up a cancel: the server may be the reason for it.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

impl Engine {
    /// How long a cancelled job of `app_id` gets between TERM and KILL: the manifest's
    /// `cancel_grace_seconds`, unless `PROVISION_TUI_KILL_GRACE` overrides it.
    pub fn cancel_grace(&self, app_id: &str) -> Duration {
        self.job_context().kill_grace(app_id)
    }

    /// The package manager processes running on `server` now (`PID COMMAND` each), checked over
    /// its pooled connection; empty when none runs.
    pub async fn package_managers_running(&self, server: &str) -> Result<Vec<String>> {
        let server = self.store().require_server(server)?;
        let lease = tokio::time::timeout(CHECK_TIMEOUT, self.pooled(&server))
            .await
            .map_err(|_| {
                eyre!(
                    "{}: no SSH session within {}s",
                    server.name,
                    CHECK_TIMEOUT.as_secs()
                )
            })?
            .map_err(|e| eyre!("{}", e.message))?;
        let out = ptui_ssh::exec::exec_capture_timeout(
            &lease,
            "sh -s",
            FIND_PACKAGE_MANAGERS.as_bytes(),
            CHECK_TIMEOUT,
        )
        .await
        .map_err(|e| eyre!("{}", e.message))?;
        Ok(out
            .stdout
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// What a cancel of a job of `app_id` on `server` interrupts, for the CLI's `cancel` and
    /// the dashboard's cancel dialog: None when no package manager runs there.
    pub async fn package_manager_note(&self, server: &str, app_id: &str) -> Result<Option<String>> {
        let found = self.package_managers_running(server).await?;
        if found.is_empty() {
            return Ok(None);
        }
        Ok(Some(format!(
            "a package manager is running on {server}: {}; it gets up to {}s after TERM to finish \
             before it is killed, and the next run of an installer repairs an interrupted dpkg",
            found.join("; "),
            self.cancel_grace(app_id).as_secs()
        )))
    }
}
