//! The remote side of a check: one `sh -s` script, sent on stdin of a single exec, that
//! prints one `key values...` line per fact. Mostly shell builtins, so a check forks little
//! on the server: `df` plus each app's own health command.

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

const BASE: &str = r#"exec 2>/dev/null
if read l1 l5 l15 _ < /proc/loadavg; then echo "load $l1 $l5 $l15"; fi
t=; a=
while read k v _; do case $k in MemTotal:) t=$v;; MemAvailable:) a=$v;; esac; done < /proc/meminfo
echo "mem ${t:-0} ${a:-0}"
{ df -P -k -x tmpfs -x devtmpfs -x squashfs || df -P -k; } | { read _; while read fs sz used av cap mnt; do echo "df $cap $mnt"; done; }
if command -v dockerd >/dev/null || [ -S /var/run/docker.sock ] || [ -e /lib/systemd/system/docker.service ] || [ -e /usr/lib/systemd/system/docker.service ]; then
  s=; command -v systemctl >/dev/null && s=$(systemctl is-active docker)
  if [ -z "$s" ]; then if docker info >/dev/null; then s=active; else s=inactive; fi; fi
  echo "docker $s"
else echo "docker absent"; fi
to() { if command -v timeout >/dev/null; then timeout "$@"; else shift; "$@"; fi; }
"#;

/// The script for a server with these apps. App checks are identified by index.
pub fn script(apps: &[AppProbe], default_timeout_secs: u64) -> String {
    let mut s = String::from(BASE);
    for (i, app) in apps.iter().enumerate() {
        let t = app
            .check
            .timeout_seconds
            .unwrap_or(default_timeout_secs)
            .max(1);
        if let Some(cmd) = &app.check.command {
            s.push_str(&format!(
                "to {t} sh -c {} </dev/null >/dev/null 2>&1; echo \"app {i} $?\"\n",
                shq(cmd)
            ));
        } else if let Some(url) = &app.check.url {
            let u = shq(url);
            s.push_str(&format!(
                "c=; if command -v curl >/dev/null; then c=$(to {t} curl -s -o /dev/null -w '%{{http_code}}' --max-time {t} {u} </dev/null); \
                 elif command -v wget >/dev/null; then c=$(to {t} wget -q -S -O /dev/null -T {t} {u} 2>&1 </dev/null | while read p c _; do case $p in HTTP/*) echo $c;; esac; done | tail -n1); \
                 else c=noclient; fi; echo \"http {i} ${{c:-000}}\"\n"
            ));
        }
    }
    s.push_str("echo end\n");
    s
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
            Some("df") => {
                let pct = w
                    .next()
                    .and_then(|p| p.trim_end_matches('%').parse::<f64>().ok());
                let mount = w.collect::<Vec<_>>().join(" ");
                if let Some(pct) = pct
                    && !mount.is_empty()
                {
                    if mount == "/" {
                        f.root_pct = Some(pct);
                    }
                    f.mounts.push(MountUse { mount, pct });
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
        let out = "load 0.50 0.40 0.30\nmem 1000 250\ndf 42% /\ndf 95% /var/lib/my data\n\
                   docker inactive\napp 0 0\nhttp 1 200\nend\n";
        let f = parse(out, &apps);
        assert_eq!(f.load, Some([0.5, 0.4, 0.3]));
        assert_eq!(f.mem_pct, Some(75.0));
        assert_eq!(f.root_pct, Some(42.0));
        assert_eq!(f.mounts[1].mount, "/var/lib/my data");
        assert_eq!(f.docker.as_deref(), Some("inactive"));
        assert!(f.apps[0].ok);
        assert!(!f.apps[1].ok, "expect_status 204, got 200");
        assert_eq!(f.apps[2].detail, "health check did not report");
        assert!(f.complete);
    }

    #[test]
    fn quoting_survives_hostile_commands() {
        assert_eq!(shq("it's"), r"'it'\''s'");
        let s = script(&[app("a", Some("test -f '/tmp/x y'"), None, None)], 5);
        assert!(s.contains(r"sh -c 'test -f '\''/tmp/x y'\'''"), "{s}");
    }
}
