//! The configuration guard (issue 12 part 3): when an installer declares its configuration,
//! a job that changes a deployed app runs its script inside `config_guard.sh`, in the same
//! detached job. The guard keeps a copy of the declared paths on the server before the run,
//! and when the run fails or the health check right after it does, puts the copy back and
//! restarts the service. A rollback job first goes back to an older copy. Every step is done
//! on the server, so a client that dies mid-job changes nothing of it.

use crate::health::probe::shq;
use ptui_catalog::Installer;
use ptui_catalog::manifest::HealthCheck;
use std::time::Duration;

/// The stderr line the guard prints once it restored the configuration and the service
/// answers again; the job then ends `rolled_back`.
pub(crate) const ROLLED_BACK: &str = "provision-tui: rolled back:";

/// Where the copies are kept on a server (root only).
pub const COPIES_DIR: &str = "/var/backups/provision-tui/config";

/// Time a guarded job gets beyond the manifest's timeout: a restore, a restart and two waits
/// for the health check (`settle_seconds` each).
pub(crate) fn reserve(settle_seconds: u32) -> Duration {
    Duration::from_secs(30 + 2 * u64::from(settle_seconds))
}

const GUARD: &str = include_str!("config_guard.sh");

/// What the guard does around one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Guard {
    /// The app is deployed on the server: keep a copy first (a first install has nothing to keep).
    pub snapshot: bool,
    /// A rollback: the job whose copy to go back to before the install script runs.
    pub restore_from: Option<i64>,
}

/// The name of the copy a job keeps (sorted by job id as text).
pub(crate) fn generation(job_id: i64) -> String {
    format!("j{job_id:012}")
}

/// The shell function `g_health`: the manifest's check, as the health checker runs it.
fn health_fn(check: Option<&HealthCheck>) -> (bool, String) {
    let Some(h) = check else {
        return (false, "g_health() { return 0; }\n".into());
    };
    let t = h.timeout_seconds.unwrap_or(10).max(1);
    if let Some(cmd) = &h.command {
        return (
            true,
            format!(
                "g_health() {{ timeout {t} sh -c {} </dev/null >/dev/null 2>&1; }}\n",
                shq(cmd)
            ),
        );
    }
    let Some(url) = &h.url else {
        return (false, "g_health() { return 0; }\n".into());
    };
    let want = h
        .expect_status
        .map_or_else(|| "2??|3??".to_string(), |s| s.to_string());
    (
        true,
        format!(
            "g_health() {{ local c; c=$(curl -s -o /dev/null -w '%{{http_code}}' --max-time {t} {} </dev/null) || true; case $c in {want}) return 0 ;; esac; return 1; }}\n",
            shq(url)
        ),
    )
}

/// The guard script around `script` (the installer's, named `name`), for job `job_id`.
/// `None` when the installer declares no configuration.
/// `values` gives the job's non-sensitive inputs for `{input}` in the declared paths.
pub(crate) fn wrap(
    installer: &Installer,
    script: &str,
    name: &str,
    job_id: i64,
    guard: Guard,
    values: &dyn Fn(&str) -> Option<String>,
) -> Option<Result<String, String>> {
    let conf = installer.manifest.configuration.as_ref()?;
    Some(build(installer, conf, script, name, job_id, guard, values))
}

fn build(
    installer: &Installer,
    conf: &ptui_catalog::manifest::Configuration,
    script: &str,
    name: &str,
    job_id: i64,
    guard: Guard,
    values: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let interp = ptui_types::script::interpreter(script).map_err(|e| format!("{name}: {e}"))?;
    let mut paths = Vec::with_capacity(conf.paths.len());
    for template in &conf.paths {
        let p = ptui_catalog::validate::expand_path(template, values)
            .map_err(|e| format!("{}: configuration path {e}", installer.id()))?;
        if let Some(why) = ptui_catalog::validate::path_problem(&p) {
            return Err(format!(
                "{}: configuration path {template:?} with this job's inputs: {why}; nothing was run",
                installer.id()
            ));
        }
        paths.push(p);
    }
    let words = |v: &[String]| v.iter().map(|p| shq(p)).collect::<Vec<_>>().join(" ");
    let (has_health, health) = health_fn(installer.manifest.health.as_ref());
    let mut s = String::with_capacity(script.len() + GUARD.len() + 1024);
    s.push_str("#!/usr/bin/env bash\n");
    s.push_str(&format!("G_APP={}\n", shq(installer.id())));
    s.push_str(&format!("G_GEN={}\n", shq(&generation(job_id))));
    s.push_str(&format!("G_PATHS=({})\n", words(&paths)));
    s.push_str(&format!("G_SERVICES=({})\n", words(&conf.services)));
    s.push_str(&format!("G_KEEP={}\n", conf.keep.max(1)));
    s.push_str(&format!("G_SETTLE={}\n", conf.settle_seconds.max(1)));
    s.push_str(&format!("G_SNAPSHOT={}\n", u8::from(guard.snapshot)));
    s.push_str(&format!(
        "G_RESTORE={}\n",
        shq(&guard.restore_from.map(generation).unwrap_or_default())
    ));
    s.push_str(&format!("G_HEALTH={}\n", u8::from(has_health)));
    s.push_str(&health);
    s.push_str(&format!("G_INTERP=({})\n", words(&interp)));
    s.push_str(&format!("G_NAME={}\n", shq(name)));
    s.push_str(&format!("G_SCRIPT={}\n", shq(script)));
    s.push_str(GUARD);
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn installer(extra: &str) -> Installer {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("web");
        std::fs::create_dir(&d).unwrap();
        std::fs::write(
            d.join("manifest.yml"),
            format!("id: web\nname: web\nversion: '1'\ninstall_script: install.sh\n{extra}"),
        )
        .unwrap();
        std::fs::write(
            d.join("install.sh"),
            "#!/bin/sh\nset -eu\necho 'it''s here'\n",
        )
        .unwrap();
        let cat = ptui_catalog::Catalog::load_dir(dir.path());
        cat.get("web")
            .unwrap_or_else(|| panic!("{:?}", cat.problems))
            .clone()
    }

    #[test]
    fn no_configuration_means_no_guard() {
        let i = installer("");
        let g = Guard {
            snapshot: true,
            restore_from: None,
        };
        assert!(wrap(&i, "#!/bin/sh\n", "web/install.sh", 1, g, &|_| None).is_none());
    }

    #[test]
    fn the_guard_carries_the_script_and_its_interpreter_quoted() {
        let i = installer(
            "inputs:\n  - name: site\n    type: string\nconfiguration:\n  paths: [/etc/web/conf.d, '/etc/web/{site}.conf']\n  services: [web]\n  keep: 2\nhealth:\n  url: http://127.0.0.1/\n",
        );
        let script = i.script(ptui_catalog::ScriptKind::Install).unwrap();
        let g = Guard {
            snapshot: true,
            restore_from: Some(7),
        };
        let site = |n: &str| (n == "site").then(|| "shop".to_string());
        let s = wrap(&i, script, "web/install.sh", 42, g, &site)
            .unwrap()
            .unwrap();
        let bad = |n: &str| (n == "site").then(|| "../../root".to_string());
        let refused = wrap(&i, script, "web/install.sh", 42, g, &bad).unwrap();
        assert!(refused.unwrap_err().contains("has an empty, `.` or `..`"));
        assert!(s.starts_with("#!/usr/bin/env bash\n"));
        assert!(s.contains("G_GEN='j000000000042'\n"), "{s}");
        assert!(s.contains("G_RESTORE='j000000000007'\n"));
        assert!(
            s.contains("G_PATHS=('/etc/web/conf.d' '/etc/web/shop.conf')\n"),
            "{s}"
        );
        assert!(s.contains("G_SERVICES=('web')\n"));
        assert!(s.contains("G_INTERP=('/bin/sh')\n"), "{s}");
        assert!(s.contains("case $c in 2??|3??) return 0"));
        assert!(s.contains(&format!("G_SCRIPT={}\n", shq(script))));
    }
}
