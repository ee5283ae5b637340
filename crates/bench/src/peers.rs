//! The peers on the same hosts: pyinfra, Ansible (forks=N, pipelining, no facts, ControlPersist),
//! and plain OpenSSH via `xargs -P` (cold, and over warm ControlMasters). Client CPU is
//! RUSAGE_CHILDREN around each run (every tool process reaped in it); RSS is the largest one.

use super::{Sample, TASK, rusage, sshd::Fleet};
use color_eyre::eyre::{Result, eyre};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Runs a shell command and measures it. Fails on a non-zero exit.
fn measured(cmd: &str, env: &[(&str, String)]) -> Result<Sample> {
    let (cpu0, _) = rusage(true);
    let srv0 = crate::cgroup::fleet_cpu_seconds();
    let t0 = Instant::now();
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().map_err(|e| eyre!("{cmd}: {e}"))?;
    let wall = t0.elapsed().as_secs_f64();
    let server_cpu = crate::cgroup::fleet_cpu_seconds() - srv0;
    let (cpu1, rss) = rusage(true);
    let failed = usize::from(!out.status.success());
    if failed > 0 {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(5).collect();
        eprintln!(
            "warning: `{}` exited with {}: {}",
            cmd.chars().take(80).collect::<String>(),
            out.status,
            tail.join(" | ")
        );
    }
    Ok(Sample {
        wall,
        cpu: cpu1 - cpu0,
        rss: rss / 1024.0,
        failed,
        server_cpu,
    })
}

fn ssh_opts(f: &Fleet, kex: &str) -> String {
    format!(
        "-F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
         -o LogLevel=ERROR -o KexAlgorithms={kex} -i {} -l {}",
        f.client_key.display(),
        f.user
    )
}

fn ports(f: &Fleet) -> String {
    f.ports
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `ssh` per host in parallel, new connection each (cold).
pub fn ssh_xargs(f: &Fleet, kex: &str) -> Result<Sample> {
    let cmd = format!(
        "printf '%s\\n' {} | xargs -P {} -I{{}} ssh {} -p {{}} 127.0.0.1 '{TASK}'",
        ports(f),
        f.ports.len(),
        ssh_opts(f, kex)
    );
    measured(&cmd, &[])
}

/// The floor under every tool: the task itself, N `bash -c` at once on this machine, no SSH
/// (HOME is `dir`, where their files go). A warm fan-out on the local fleet shares these
/// cores, so it cannot finish faster than this.
pub fn local_floor(f: &Fleet, dir: &Path) -> Result<Sample> {
    let q = TASK.replace('\'', r"'\''");
    let run = format!(
        "i=0; while [ $i -lt {n} ]; do bash -c '{q}' >/dev/null & i=$((i + 1)); done; wait",
        n = f.ports.len()
    );
    // The fleet idles meanwhile: what it used is not the task's.
    measured(&run, &[("HOME", dir.display().to_string())]).map(|s| Sample {
        server_cpu: 0.0,
        ..s
    })
}

/// Masters are opened first (not measured), then the task runs over them.
pub fn ssh_controlmaster(f: &Fleet, dir: &Path) -> Result<Sample> {
    let cm = dir.join("cm");
    std::fs::create_dir_all(&cm)?;
    let opts = format!(
        "{} -o ControlPath={}/%p",
        ssh_opts(f, "curve25519-sha256"),
        cm.display()
    );
    let open = format!(
        "printf '%s\\n' {} | xargs -P {} -I{{}} ssh {opts} -o ControlMaster=yes -o ControlPersist=300 -fN -p {{}} 127.0.0.1",
        ports(f),
        f.ports.len()
    );
    measured(&open, &[])?;
    let run = format!(
        "printf '%s\\n' {} | xargs -P {} -I{{}} ssh {opts} -o ControlMaster=no -p {{}} 127.0.0.1 '{TASK}'",
        ports(f),
        f.ports.len()
    );
    let s = measured(&run, &[]);
    let close = format!(
        "printf '%s\\n' {} | xargs -P {} -I{{}} ssh {opts} -O exit -p {{}} 127.0.0.1 2>/dev/null",
        ports(f),
        f.ports.len()
    );
    let _ = measured(&close, &[]);
    s
}

pub fn venv_bin(venv: &Path, tool: &str) -> Option<PathBuf> {
    let p = venv.join("bin").join(tool);
    p.exists().then_some(p)
}

/// Ansible ad-hoc `shell` (no facts), forks = hosts, pipelining, ControlPersist (its default).
pub fn ansible(f: &Fleet, venv: &Path, dir: &Path) -> Result<Option<Sample>> {
    let Some(bin) = venv_bin(venv, "ansible") else {
        return Ok(None);
    };
    let run = dir.join(format!("ansible-{}", rand::random::<u32>()));
    std::fs::create_dir_all(run.join("cp"))?;
    let mut inv = String::from("[bench]\n");
    for (i, p) in f.ports.iter().enumerate() {
        inv.push_str(&format!(
            "h{i:03} ansible_host=127.0.0.1 ansible_port={p}\n"
        ));
    }
    inv.push_str(&format!(
        "[bench:vars]\nansible_user={}\nansible_ssh_private_key_file={}\nansible_python_interpreter=/usr/bin/python3\n",
        f.user,
        f.client_key.display()
    ));
    std::fs::write(run.join("inventory.ini"), inv)?;
    std::fs::write(
        run.join("ansible.cfg"),
        format!(
            "[defaults]\nforks = {}\nhost_key_checking = False\ngathering = explicit\nretry_files_enabled = False\n\
             [ssh_connection]\npipelining = True\ncontrol_path_dir = {}\n\
             ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=/dev/null\n",
            f.ports.len(),
            run.join("cp").display()
        ),
    )?;
    let cmd = format!(
        "{} bench -i {} -m shell -a '{TASK}'",
        bin.display(),
        run.join("inventory.ini").display()
    );
    let s = measured(
        &cmd,
        &[
            (
                "ANSIBLE_CONFIG",
                run.join("ansible.cfg").display().to_string(),
            ),
            ("ANSIBLE_LOCAL_TEMP", run.join("tmp").display().to_string()),
        ],
    )?;
    // Close its ControlPersist masters so they do not linger.
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "for s in {}/*; do ssh -o ControlPath=$s -O exit x 2>/dev/null; done",
            run.join("cp").display()
        ))
        .status();
    Ok(Some(s))
}

/// pyinfra `exec` with --parallel = hosts.
pub fn pyinfra(f: &Fleet, venv: &Path, dir: &Path) -> Result<Option<Sample>> {
    let Some(bin) = venv_bin(venv, "pyinfra") else {
        return Ok(None);
    };
    let mut inv = String::from("hosts = [\n");
    for (i, p) in f.ports.iter().enumerate() {
        inv.push_str(&format!(
            "    (\"h{i:03}\", {{\"ssh_hostname\": \"127.0.0.1\", \"ssh_port\": {p}, \"ssh_user\": \"{}\", \"ssh_key\": \"{}\", \"ssh_strict_host_key_checking\": \"no\", \"ssh_known_hosts_file\": \"/dev/null\"}}),\n",
            f.user,
            f.client_key.display()
        ));
    }
    inv.push_str("]\n");
    let path = dir.join("pyinfra_inventory.py");
    std::fs::write(&path, inv)?;
    let cmd = format!(
        "cd {} && {} {} exec --yes --parallel {} -- '{TASK}'",
        dir.display(),
        bin.display(),
        path.display(),
        f.ports.len()
    );
    measured(&cmd, &[]).map(Some)
}
