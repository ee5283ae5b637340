//! A CPU cgroup of the lowest weight for a bench's local sshd fleet. Those sshd stand in for
//! servers that in real use run on other machines; confined, they take only the CPU the client
//! leaves idle, so a client-side figure (the dashboard's latency) measures the client and not
//! the simulated servers' share of the same 2 cores.

use std::path::PathBuf;

pub struct ServerCgroup {
    dir: PathBuf,
}

/// A CPU-accounting cgroup of default weight around a bench's local sshd fleet: what every
/// process in it used, reaped ones included, to the nanosecond (v1 `cpuacct.usage`, v2
/// `cpu.stat` `usage_usec`). /proc's per-process times are rounded to clock ticks, which a
/// sweep of 1,000 servers spending ~1 ms each sums into noise.
pub struct CpuMeter {
    group: ServerCgroup,
    v2: bool,
}

/// The meter the bench's fleet is confined in, read by `fleet_cpu_seconds` around each timed run.
static ACTIVE: std::sync::Mutex<Option<(PathBuf, bool)>> = std::sync::Mutex::new(None);

/// CPU seconds the confined fleet has used so far (0 when no meter is active).
pub fn fleet_cpu_seconds() -> f64 {
    let active = ACTIVE.lock().ok().and_then(|g| g.clone());
    active
        .and_then(|(dir, v2)| read_usage(&dir, v2))
        .unwrap_or(0.0)
}

fn read_usage(dir: &std::path::Path, v2: bool) -> Option<f64> {
    if v2 {
        let stat = std::fs::read_to_string(dir.join("cpu.stat")).ok()?;
        let usec = stat
            .lines()
            .find_map(|l| l.strip_prefix("usage_usec "))?
            .trim()
            .parse::<f64>()
            .ok()?;
        Some(usec / 1e6)
    } else {
        let ns = std::fs::read_to_string(dir.join("cpuacct.usage")).ok()?;
        Some(ns.trim().parse::<f64>().ok()? / 1e9)
    }
}

impl CpuMeter {
    pub fn create() -> Result<Self, String> {
        let name = format!("ptui-bench-meter-{}", std::process::id());
        let root = PathBuf::from("/sys/fs/cgroup");
        let (dir, v2) = if root.join("cgroup.controllers").exists() {
            (root.join(&name), true)
        } else {
            (root.join("cpuacct").join(&name), false)
        };
        std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(CpuMeter {
            group: ServerCgroup { dir },
            v2,
        })
    }

    /// Moves the fleet in and makes this the meter `fleet_cpu_seconds` reads.
    pub fn confine(&self, pids: &[u32]) -> Result<(), String> {
        self.group.confine(pids)?;
        if let Ok(mut a) = ACTIVE.lock() {
            *a = Some((self.group.dir.clone(), self.v2));
        }
        Ok(())
    }

    /// CPU seconds used in the cgroup so far, or None when unreadable.
    pub fn seconds(&self) -> Option<f64> {
        read_usage(&self.group.dir, self.v2)
    }
}

impl Drop for CpuMeter {
    fn drop(&mut self) {
        if let Ok(mut a) = ACTIVE.lock()
            && a.as_ref().is_some_and(|(d, _)| *d == self.group.dir)
        {
            *a = None;
        }
    }
}

impl ServerCgroup {
    /// Creates the cgroup (cgroup v2 `cpu.weight` 1, or v1 `cpu.shares` 2), or says why not.
    pub fn create() -> Result<Self, String> {
        let name = format!("ptui-bench-servers-{}", std::process::id());
        let v2 = PathBuf::from("/sys/fs/cgroup");
        let (dir, file, weight) = if v2.join("cgroup.controllers").exists() {
            (v2.join(&name), "cpu.weight", "1")
        } else {
            (v2.join("cpu").join(&name), "cpu.shares", "2")
        };
        std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let cg = ServerCgroup { dir };
        std::fs::write(cg.dir.join(file), weight)
            .map_err(|e| format!("cannot set {}/{file}: {e}", cg.dir.display()))?;
        Ok(cg)
    }

    /// Moves processes in; what they fork later (sshd's per-connection children, the shells
    /// and installers) starts inside.
    pub fn confine(&self, pids: &[u32]) -> Result<(), String> {
        for pid in pids {
            std::fs::write(self.dir.join("cgroup.procs"), pid.to_string())
                .map_err(|e| format!("cannot move pid {pid} into {}: {e}", self.dir.display()))?;
        }
        Ok(())
    }
}

impl Drop for ServerCgroup {
    fn drop(&mut self) {
        // sshd's per-connection children outlive their listener for a moment; everything in
        // here is the bench's own, so end it rather than leave the cgroup behind.
        for _ in 0..40 {
            if let Ok(procs) = std::fs::read_to_string(self.dir.join("cgroup.procs")) {
                for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    // SAFETY: kill(2) on a pid read from our own cgroup; no memory involved.
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                    }
                }
            }
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        eprintln!(
            "note: {} is still in use; remove it with rmdir",
            self.dir.display()
        );
    }
}
