//! The cancel dialog. It opens at once; meanwhile the server is asked whether apt or dpkg is
//! running (off the loop, over the pooled connection), and the dialog says so when it is: a
//! cancel then interrupts a package step.

use super::app::{App, Cmd, Confirmed, Modal};

impl App {
    pub(super) fn ask_cancel(&mut self) {
        let Some(j) = self.jobs.selected() else {
            return;
        };
        if j.status.is_terminal() {
            let msg = format!("job #{} already {}", j.id, j.status);
            self.error(msg);
            return;
        }
        let (id, server, app) = (j.id, j.server_name.clone(), j.app_id.clone());
        let checking = self.eng.is_some();
        self.modal = Some(Modal::Confirm {
            title: "Cancel job?".into(),
            text: format!(
                "Cancel job #{id} ({app} on {server})? The remote installer is killed.{}",
                if checking {
                    format!("\n\nChecking whether apt or dpkg runs on {server}…")
                } else {
                    String::new()
                }
            ),
            then: Box::new(Confirmed::Cmd(Cmd::Cancel(id))),
        });
        if checking {
            self.cmds.push(Cmd::PackageManagers {
                job: id,
                server,
                app,
            });
        }
    }

    /// The package-manager check answered: the cancel dialog of that job (if still open) says
    /// what it found.
    pub(super) fn on_package_note(&mut self, job: i64, r: Result<Option<String>, String>) {
        let Some(Modal::Confirm { text, then, .. }) = &mut self.modal else {
            return;
        };
        if !matches!(then.as_ref(), Confirmed::Cmd(Cmd::Cancel(id)) if *id == job) {
            return;
        }
        let base = text.split("\n\n").next().unwrap_or_default().to_string();
        let said = match r {
            Ok(Some(note)) => format!("Note: {note}."),
            Ok(None) => "No package manager (apt, dpkg) is running on the server.".to_string(),
            Err(e) => format!("Could not check for apt or dpkg: {e}"),
        };
        *text = format!("{base}\n\n{said}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ptui_types::job::{Job, JobStatus};

    fn running_job() -> Job {
        Job {
            id: 7,
            server_id: Some(1),
            server_name: "web1".into(),
            app_id: "base-setup".into(),
            app_version: "1.0".into(),
            action: ptui_types::job::JobAction::Install,
            status: JobStatus::Running,
            error_kind: None,
            error_message: None,
            exit_code: None,
            inputs: serde_json::json!({}),
            attempts: 1,
            created_at: 0,
            started_at: Some(0),
            finished_at: None,
            spool: None,
            owner: None,
            site: None,
        }
    }

    fn dialog_text(app: &App) -> String {
        match &app.modal {
            Some(Modal::Confirm { text, .. }) => text.clone(),
            other => panic!("no confirm dialog: {other:?}"),
        }
    }

    #[test]
    fn the_dialog_says_what_the_package_manager_check_found_for_its_job_only() {
        let mut app = App::new(crate::theme::dark());
        app.jobs.jobs = vec![running_job()];
        app.ask_cancel();
        assert!(dialog_text(&app).starts_with("Cancel job #7 (base-setup on web1)?"));
        // An answer for another job's dialog changes nothing.
        app.on_package_note(8, Ok(Some("a package manager is running on x".into())));
        assert!(!dialog_text(&app).contains("package manager is running"));
        app.on_package_note(
            7,
            Ok(Some("a package manager is running on web1: 12 dpkg".into())),
        );
        let t = dialog_text(&app);
        assert!(
            t.contains("Note: a package manager is running on web1: 12 dpkg."),
            "{t}"
        );
        app.on_package_note(7, Ok(None));
        let t = dialog_text(&app);
        assert!(
            t.contains("No package manager") && !t.contains("12 dpkg"),
            "{t}"
        );
        app.on_package_note(7, Err("web1: no SSH session within 10s".into()));
        assert!(dialog_text(&app).contains("Could not check for apt or dpkg: web1: no SSH"));
    }
}
