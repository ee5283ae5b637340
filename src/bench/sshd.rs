//! N throwaway OpenSSH sshd on 127.0.0.1 for the fan-out bench (the recipe of tests/common/sshd.rs:
//! own config, one shared host key, `MaxStartups 300:30:600`, `MaxSessions 100`). Killed by PID.

use color_eyre::eyre::{Result, bail, eyre};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Fleet {
    pub dir: PathBuf,
    pub ports: Vec<u16>,
    pub user: String,
    pub client_key: PathBuf,
    pub host_pub: String,
    children: Vec<Child>,
}

fn keygen(path: &Path) -> Result<()> {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "ptui-bench", "-f"])
        .arg(path)
        .status()
        .map_err(|e| eyre!("ssh-keygen: {e}"))?;
    if !st.success() {
        bail!("ssh-keygen failed");
    }
    Ok(())
}

fn sshd_binary() -> Result<PathBuf> {
    ["/usr/sbin/sshd", "/usr/local/sbin/sshd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or_else(|| eyre!("OpenSSH sshd not found (apt-get install -y openssh-server)"))
}

impl Fleet {
    /// Starts `n` sshd accepting the bench key for `user` (default: the current user). A user
    /// other than root needs to read the authorized_keys file, so the directory is made 0755.
    pub fn start(n: usize, dir: &Path, user: Option<&str>) -> Result<Fleet> {
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::CommandExt;
        let sshd = sshd_binary()?;
        keygen(&dir.join("host_key"))?;
        keygen(&dir.join("client_key"))?;
        let user = user.map(str::to_string).unwrap_or_else(whoami::username);
        let ak = dir.join(format!("authorized_keys.{user}"));
        std::fs::copy(dir.join("client_key.pub"), &ak)?;
        std::fs::set_permissions(&ak, std::fs::Permissions::from_mode(0o644))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
        let host_pub = std::fs::read_to_string(dir.join("host_key.pub"))?;
        let _ = std::fs::create_dir_all("/run/sshd");
        let mut fleet = Fleet {
            dir: dir.to_path_buf(),
            ports: Vec::new(),
            user,
            client_key: dir.join("client_key"),
            host_pub: host_pub
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" "),
            children: Vec::new(),
        };
        let d = dir.display();
        for i in 0..n {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let cfg = format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd{i}.pid\n\
                 AuthorizedKeysFile {d}/authorized_keys.%u\nStrictModes no\nPermitRootLogin prohibit-password\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
                 MaxStartups 300:30:600\nMaxSessions 100\nLogLevel ERROR\nPrintMotd no\nSetEnv PYENV_REHASH_TIMEOUT=0\nAcceptEnv LANG\n"
            );
            let cfg_path = dir.join(format!("sshd{i}.conf"));
            std::fs::write(&cfg_path, cfg)?;
            let mut cmd = Command::new(&sshd);
            // SAFETY: prctl in the forked child before exec; the sshd die with the bench.
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            let child = cmd
                .arg("-D")
                .arg("-f")
                .arg(&cfg_path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| eyre!("start sshd: {e}"))?;
            fleet.children.push(child);
            fleet.ports.push(port);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for p in &fleet.ports {
            while TcpStream::connect(("127.0.0.1", *p)).is_err() {
                if Instant::now() > deadline {
                    bail!("sshd on port {p} did not listen within 30 s");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(fleet)
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
            let _ = c.wait();
        }
    }
}
