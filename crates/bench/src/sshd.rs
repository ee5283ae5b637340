//! Throwaway OpenSSH sshd on 127.0.0.1: the one recipe used by the fan-out bench, the health
//! bench and the integration tests (tests/common/sshd.rs). Each instance has its own config
//! and port; a fleet shares one host key. `MaxStartups 300:30:600` and `MaxSessions 100` so
//! hundreds of parallel handshakes are not refused. Killed by PID (and with their parent).

use color_eyre::eyre::{Result, WrapErr, bail, eyre};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The sshd binary, or how to install it.
pub fn binary() -> Result<PathBuf> {
    ["/usr/sbin/sshd", "/usr/local/sbin/sshd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or_else(|| eyre!("OpenSSH sshd not found (apt-get install -y openssh-server)"))
}

/// A new passphrase-less ed25519 key pair at `path` and `path.pub`.
pub fn keygen(path: &Path) -> Result<()> {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "provision-tui", "-f"])
        .arg(path)
        .status()
        .wrap_err("cannot run ssh-keygen (apt-get install -y openssh-client)")?;
    if !st.success() {
        bail!("ssh-keygen failed for {}", path.display());
    }
    Ok(())
}

/// A port nobody listens on right now.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The sshd_config for one instance. `dir` holds `host_key` and `authorized_keys.<user>`.
/// Why SetEnv PYENV_REHASH_TIMEOUT=0: a login shell whose rc file runs `pyenv init` waits 60 s
/// on a lock left by a shell killed mid-rehash; this caps that wait.
pub fn config(dir: &Path, port: u16, pid_name: &str) -> String {
    let d = dir.display();
    format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/{pid_name}.pid\n\
         AuthorizedKeysFile {d}/authorized_keys.%u\nStrictModes no\nPermitRootLogin prohibit-password\n\
         PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
         MaxStartups 300:30:600\nMaxSessions 100\nLogLevel ERROR\nPrintMotd no\n\
         SetEnv PYENV_REHASH_TIMEOUT=0\nAcceptEnv LANG\n"
    )
}

/// Starts `sshd -D -e -f cfg` (logging to `stderr`); it dies with this process.
pub fn spawn(cfg: &Path, stderr: Stdio) -> Result<Child> {
    use std::os::unix::process::CommandExt;
    let _ = std::fs::create_dir_all("/run/sshd");
    let mut cmd = Command::new(binary()?);
    // SAFETY: prctl in the forked child before exec; no allocation, no locks.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd.args(["-D", "-e", "-f"])
        .arg(cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .wrap_err_with(|| {
            format!(
                "cannot start sshd for {} (process or file limits?)",
                cfg.display()
            )
        })
}

/// Waits until every port accepts TCP connections.
pub fn wait_listening(ports: &[u16], within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    for p in ports {
        while TcpStream::connect(("127.0.0.1", *p)).is_err() {
            if Instant::now() > deadline {
                bail!("sshd on port {p} did not listen within {within:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(())
}

pub struct Fleet {
    pub dir: PathBuf,
    pub ports: Vec<u16>,
    pub user: String,
    pub client_key: PathBuf,
    pub host_pub: String,
    children: Vec<Child>,
}

impl Fleet {
    /// Starts `n` sshd accepting the bench key for `user` (default: the current user). A user
    /// other than root needs to read the authorized_keys file, so the directory is made 0755.
    pub fn start(n: usize, dir: &Path, user: Option<&str>) -> Result<Fleet> {
        use std::os::unix::fs::PermissionsExt;
        keygen(&dir.join("host_key"))?;
        keygen(&dir.join("client_key"))?;
        let user = user.map(str::to_string).unwrap_or_else(whoami::username);
        let ak = dir.join(format!("authorized_keys.{user}"));
        std::fs::copy(dir.join("client_key.pub"), &ak)?;
        std::fs::set_permissions(&ak, std::fs::Permissions::from_mode(0o644))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
        let host_pub = std::fs::read_to_string(dir.join("host_key.pub"))?;
        let mut fleet = Fleet {
            dir: dir.to_path_buf(),
            ports: Vec::with_capacity(n),
            user,
            client_key: dir.join("client_key"),
            host_pub: host_pub
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" "),
            children: Vec::with_capacity(n),
        };
        for i in 0..n {
            let port = free_port()?;
            let cfg_path = dir.join(format!("sshd{i}.conf"));
            std::fs::write(&cfg_path, config(dir, port, &format!("sshd{i}")))?;
            fleet.children.push(spawn(&cfg_path, Stdio::null())?);
            fleet.ports.push(port);
        }
        wait_listening(&fleet.ports, Duration::from_secs(30 + n as u64 / 10))?;
        Ok(fleet)
    }

    /// The listening sshd processes.
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }

    /// known_hosts lines for every instance (one shared host key).
    pub fn known_hosts(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("[127.0.0.1]:{p} {}\n", self.host_pub))
            .collect()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
        }
        for c in &mut self.children {
            let _ = c.wait();
        }
    }
}
