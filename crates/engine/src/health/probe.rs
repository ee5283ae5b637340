//! The remote side of a check: a POSIX sh function resident in the connection's remote shell
//! (or run by an exec of `sh -s`) whose answer is one `key values...` line per fact, `end`,
//! then `df`'s table. Shell builtins but for `df` and each app's own health command, so a
//! check costs the server one fork and one exec.

use super::{AppHealth, MountUse};
use ptui_catalog::manifest::HealthCheck;

/// An app whose manifest declares a health check.
#[derive(Debug, Clone)]
pub struct AppProbe {
    pub app_id: String,
    pub check: HealthCheck,
}

/// Single-quotes a string for sh.
pub fn shq(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

// A function body for `Session::run_resident`: the remote shell defines it once and runs it in
// itself, so a check costs the server one fork and exec (`df`) and one write of the answer.
// Its variables are local (it runs in the shell, not a subshell) and its answer goes into
// `__ptui_o`. `df -T` instead of `-x TYPE`, which busybox lacks: pseudo filesystems are left
// out when parsed. POSIX sh (dash has `local`): without the remote shell it runs under `sh -s`.
const BASE: &str = r#"local o= l1 l5 l15 k v t= a= p c s
if read l1 l5 l15 _ < /proc/loadavg; then o="load $l1 $l5 $l15
"; fi
while read k v _; do case $k in MemTotal:) t=$v;; MemAvailable:) a=$v; break;; esac; done < /proc/meminfo
o="${o}mem ${t:-0} ${a:-0}
"
if read p < /var/run/docker.pid && read c < "/proc/$p/comm" && [ "$c" = dockerd ]; then o="${o}docker active
"
elif [ -S /var/run/docker.sock ] || [ -e /lib/systemd/system/docker.service ] || [ -e /usr/lib/systemd/system/docker.service ] || command -v dockerd >/dev/null; then
  s=; command -v systemctl >/dev/null && s=$(systemctl is-active docker)
  if [ -z "$s" ]; then if docker info >/dev/null; then s=active; else s=inactive; fi; fi
  o="${o}docker $s
"
else o="${o}docker absent
"; fi
"#;

/// After the facts: `end`, then `df`'s own output (POSIX format with a type column).
const TAIL: &str = r#"__ptui_o="${o}end
$(LC_ALL=C df -P -k -T)
"
"#;

/// Runs an app's check under `timeout` when the server has it.
const TIMEOUT_FN: &str = "__ptui_to() { if command -v timeout >/dev/null; then timeout \"$@\"; else shift; \"$@\"; fi; }\n";

/// Filesystems without a disk behind them, left out of the disk facts.
const PSEUDO_FS: &[&str] = &["tmpfs", "devtmpfs", "squashfs"];

/// The probe for a server with these apps, a body for `Session::run_resident`. App checks
/// are identified by index.
pub fn body(apps: &[AppProbe], default_timeout_secs: u64) -> String {
    let mut s = String::from(BASE);
    if !apps.is_empty() {
        s.push_str(TIMEOUT_FN);
    }
    for (i, app) in apps.iter().enumerate() {
        let t = app
            .check
            .timeout_seconds
            .unwrap_or(default_timeout_secs)
            .max(1);
        if let Some(cmd) = &app.check.command {
            s.push_str(&format!(
                "__ptui_to {t} sh -c {} </dev/null >/dev/null 2>&1; o=\"${{o}}app {i} $?\n\"\n",
                shq(cmd)
            ));
        } else if let Some(url) = &app.check.url {
            let u = shq(url);
            s.push_str(&format!(
                "c=; if command -v curl >/dev/null; then c=$(__ptui_to {t} curl -s -o /dev/null -w '%{{http_code}}' --max-time {t} {u} </dev/null); \
                 elif command -v wget >/dev/null; then c=$(__ptui_to {t} wget -q -S -O /dev/null -T {t} {u} 2>&1 </dev/null | while read p c _; do case $p in HTTP/*) echo $c;; esac; done | tail -n1); \
                 else c=noclient; fi; o=\"${{o}}http {i} ${{c:-000}}\n\"\n"
            ));
        }
    }
    s.push_str(TAIL);
    s
}

/// One row of `df -P -k -T`: FILESYSTEM TYPE BLOCKS USED AVAILABLE CAPACITY MOUNTPOINT (the
/// mount point may hold spaces). The header and rows of pseudo filesystems are skipped.
fn parse_df_row(line: &str, f: &mut Facts) {
    let w: Vec<&str> = line.split_whitespace().collect();
    if w.len() < 7 || PSEUDO_FS.contains(&w[1]) {
        return;
    }
    let Some(pct) = w[5].strip_suffix('%').and_then(|p| p.parse::<f64>().ok()) else {
        return;
    };
    let mount = w[6..].join(" ");
    if mount == "/" {
        f.root_pct = Some(pct);
    }
    f.mounts.push(MountUse { mount, pct });
}

/// Facts parsed from the script's output.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    pub load: Option<[f64; 3]>,
    pub mem_pct: Option<f64>,
    pub root_pct: Option<f64>,
    pub mounts: Vec<MountUse>,
    pub docker: Option<String>,
    pub apps: Vec<AppHealth>,
    /// The script ran to its end (a truncated output is a failed check).
    pub complete: bool,
}

pub fn parse(out: &str, apps: &[AppProbe]) -> Facts {
    let mut f = Facts::default();
    let mut seen = vec![false; apps.len()];
    for line in out.lines() {
        if f.complete {
            parse_df_row(line, &mut f);
            continue;
        }
        let mut w = line.split_whitespace();
        match w.next() {
            Some("load") => {
                let v: Vec<f64> = w.take(3).filter_map(|x| x.parse().ok()).collect();
                if let [a, b, c] = v[..] {
                    f.load = Some([a, b, c]);
                }
            }
            Some("mem") => {
                let v: Vec<f64> = w.take(2).filter_map(|x| x.parse().ok()).collect();
                if let [t, a] = v[..]
                    && t > 0.0
                {
                    f.mem_pct = Some(((t - a) / t * 100.0).clamp(0.0, 100.0));
                }
            }
            Some("docker") => {
                f.docker = w.next().filter(|s| *s != "absent").map(str::to_string);
            }
            Some(k @ ("app" | "http")) => {
                let idx = w.next().and_then(|i| i.parse::<usize>().ok());
                let val = w.next().unwrap_or("");
                if let Some(i) = idx
                    && let Some(app) = apps.get(i)
                {
                    seen[i] = true;
                    let (ok, detail) = if k == "app" {
                        (val == "0", format!("health command exited {val}"))
                    } else {
                        let code = val.parse::<u16>().unwrap_or(0);
                        let ok = match app.check.expect_status {
                            Some(e) => code == e,
                            None => (200..400).contains(&code),
                        };
                        let detail = match val {
                            "noclient" => "neither curl nor wget on the server".to_string(),
                            "000" | "" => "no HTTP answer".to_string(),
                            c => format!("HTTP {c}"),
                        };
                        (ok, detail)
                    };
                    f.apps.push(AppHealth {
                        app_id: app.app_id.clone(),
                        ok,
                        detail,
                    });
                }
            }
            Some("end") => f.complete = true,
            _ => {}
        }
    }
    for (i, app) in apps.iter().enumerate() {
        if !seen[i] {
            f.apps.push(AppHealth {
                app_id: app.app_id.clone(),
                ok: false,
                detail: "health check did not report".into(),
            });
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(id: &str, cmd: Option<&str>, url: Option<&str>, expect: Option<u16>) -> AppProbe {
        AppProbe {
            app_id: id.into(),
            check: HealthCheck {
                command: cmd.map(str::to_string),
                url: url.map(str::to_string),
                expect_status: expect,
                timeout_seconds: None,
            },
        }
    }

    #[test]
    fn parses_every_fact() {
        let apps = [
            app("a", Some("true"), None, None),
            app("b", None, Some("http://x"), Some(204)),
            app("c", None, Some("http://y"), None),
        ];
        let out = "load 0.50 0.40 0.30\nmem 1000 250\ndocker inactive\napp 0 0\nhttp 1 200\nend\n\
                   Filesystem Type 1024-blocks Used Available Capacity Mounted on\n\
                   overlay overlay 100 42 58 42% /\n\
                   tmpfs tmpfs 100 99 1 99% /dev/shm\n\
                   /dev/sdb1 ext4 100 95 5 95% /var/lib/my data\n";
        let f = parse(out, &apps);
        assert_eq!(f.load, Some([0.5, 0.4, 0.3]));
        assert_eq!(f.mem_pct, Some(75.0));
        assert_eq!(f.root_pct, Some(42.0));
        assert_eq!(f.mounts.len(), 2, "tmpfs left out: {:?}", f.mounts);
        assert_eq!(f.mounts[1].mount, "/var/lib/my data");
        assert_eq!(f.mounts[1].pct, 95.0);
        assert_eq!(f.docker.as_deref(), Some("inactive"));
        assert!(f.apps[0].ok);
        assert!(!f.apps[1].ok, "expect_status 204, got 200");
        assert_eq!(f.apps[2].detail, "health check did not report");
        assert!(f.complete);
    }

    /// The script itself, run here by dash (as `sh -s` runs it without the remote shell) and
    /// by bash (the remote shell), reports every fact of this machine.
    #[test]
    fn the_script_reports_this_machine_under_sh_and_bash() {
        let apps = [
            app("ok", Some("true"), None, None),
            app("no", Some("false"), None, None),
        ];
        for shell in ["sh", "bash"] {
            // As the remote shell runs it: defined as a function, called twice in one shell.
            let run = format!(
                "__ptui_f() {{\n{}\n}}\n__ptui_o=; o=mine; __ptui_f </dev/null 2>/dev/null; \
                 __ptui_f </dev/null 2>/dev/null; echo \"o=$o\"; printf '%s' \"$__ptui_o\"",
                body(&apps, 5)
            );
            let out = std::process::Command::new(shell)
                .arg("-c")
                .arg(run)
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.starts_with("o=mine\n"),
                "{shell}: the probe's variables leaked: {text}"
            );
            let f = parse(&text, &apps);
            assert!(f.complete, "{shell}: {text}");
            assert!(f.load.is_some() && f.mem_pct.is_some(), "{shell}: {text}");
            assert!(f.root_pct.is_some(), "{shell}: no / in {text}");
            assert!(
                f.docker.is_some() || text.contains("docker absent"),
                "{text}"
            );
            assert!(f.apps[0].ok && !f.apps[1].ok, "{shell}: {:?}", f.apps);
            assert_eq!(f.apps[1].detail, "health command exited 1");
        }
    }

    #[test]
    fn quoting_survives_hostile_commands() {
        assert_eq!(shq("it's"), r"'it'\''s'");
        let s = body(&[app("a", Some("test -f '/tmp/x y'"), None, None)], 5);
        assert!(s.contains(r"sh -c 'test -f '\''/tmp/x y'\'''"), "{s}");
    }
}
