//! `provision-tui install|uninstall APP --on SERVER ...`: validates inputs, starts the jobs and
//! streams their logs until they end. Ctrl-C cancels the jobs (killing the remote processes).

use super::out::{self, err, errln, outln};
use super::progress::Progress;
use super::{exit, interactive};
use clap::Args;
use color_eyre::eyre::{Result, bail};
use ptui_engine::jobs::fanout::{Amount, FanoutEvent, FanoutRequest, Targets};
use ptui_engine::{Engine, Event, RequestError};
use ptui_types::error::ErrorKind;
use ptui_types::job::{Job, JobAction, JobStatus, LogLine, LogStream};
use ptui_types::sanitize::terminal_text;
use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use tokio::sync::broadcast::error::RecvError;

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Installer id from the catalog.
    pub app: String,
    /// Target servers, comma separated or repeated.
    #[arg(long = "on", value_delimiter = ',', required_unless_present_any = ["tag", "all"], conflicts_with_all = ["tag", "all"])]
    pub on: Vec<String>,
    /// Every server with this tag.
    #[arg(long, conflicts_with = "all")]
    pub tag: Option<String>,
    /// Every registered server (those on an operator hold are left out).
    #[arg(long)]
    pub all: bool,
    /// Jobs at once (default: min(50, hosts), bounded by the open-file limit).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Rolling batches: N hosts or P% of them at a time (default: all at once).
    #[arg(long, value_name = "N|P%")]
    pub batch: Option<Amount>,
    /// Stop starting hosts once more than N (or P%) have failed; the rest are skipped.
    #[arg(long = "max-fail", value_name = "N|P%")]
    pub max_fail: Option<Amount>,
    /// An input value: KEY=VALUE (not for secrets: argv is visible in `ps`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// An input read from an environment variable: KEY=ENVVAR.
    #[arg(long = "set-env", value_name = "KEY=ENVVAR")]
    pub set_env: Vec<String>,
    /// An input read from a file (trailing newline removed): KEY=PATH.
    #[arg(long = "set-file", value_name = "KEY=PATH")]
    pub set_file: Vec<String>,
    /// Print one JSON event per line instead of the log.
    #[arg(long)]
    pub json: bool,
    /// Print what would happen (servers, skipped ones and why, batches, script checksum,
    /// inputs, no-op or changed per server) and change nothing.
    #[arg(long)]
    pub plan: bool,
}

fn split_kv<'a>(flag: &str, s: &'a str) -> Result<(&'a str, &'a str)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k, v)),
        _ => bail!("{flag} expects KEY=VALUE, got {s:?}"),
    }
}

/// Collects input values from --set, --set-env and --set-file, then prompts (no echo) for
/// missing required sensitive inputs when on a terminal.
fn gather_inputs(
    engine: &Engine,
    args: &InstallArgs,
    action: JobAction,
) -> Result<BTreeMap<String, String>> {
    let mut values = BTreeMap::new();
    for s in &args.set {
        let (k, v) = split_kv("--set", s)?;
        values.insert(k.to_string(), v.to_string());
    }
    if let Some(inst) = engine.catalog().get(&args.app) {
        for k in values.keys() {
            if inst
                .manifest
                .inputs
                .iter()
                .any(|i| &i.name == k && i.is_sensitive())
            {
                errln!(
                    "warning: input {k} is sensitive; --set leaves it in shell history and `ps`. \
                     Prefer --set-env {k}=VAR or --set-file {k}=PATH"
                );
            }
        }
    }
    for s in &args.set_env {
        let (k, var) = split_kv("--set-env", s)?;
        match std::env::var(var) {
            Ok(v) => values.insert(k.to_string(), v),
            Err(_) => bail!("--set-env {k}={var}: environment variable {var} is not set"),
        };
    }
    for s in &args.set_file {
        let (k, path) = split_kv("--set-file", s)?;
        let mut v = std::fs::read_to_string(path)
            .map_err(|e| color_eyre::eyre::eyre!("--set-file {k}={path}: {e}"))?;
        if v.ends_with('\n') {
            v.pop();
            if v.ends_with('\r') {
                v.pop();
            }
        }
        values.insert(k.to_string(), v);
    }
    if interactive()
        && !args.plan
        && let Some(inst) = engine.catalog().get(&args.app)
    {
        let vis = ptui_catalog::visibility(&inst.manifest, &values);
        let ask: Vec<ptui_catalog::InputSpec> = match action {
            JobAction::Install => inst
                .manifest
                .inputs
                .iter()
                .filter(|input| {
                    vis.get(&input.name).copied().unwrap_or(true)
                        && input.required
                        && input.is_sensitive()
                        && input.default.is_none()
                        && !values.contains_key(&input.name)
                })
                .cloned()
                .collect(),
            // Those the upgrade script reads (recorded ones are filtered out below).
            JobAction::Upgrade => inst
                .missing_secrets(ptui_catalog::ScriptKind::Upgrade, &values)
                .into_iter()
                .cloned()
                .collect(),
            JobAction::Uninstall | JobAction::Rollback => Vec::new(),
        };
        // Secrets sealed at the last install on every target are reused, not asked again.
        let targets = if args.all {
            Targets::All
        } else if let Some(t) = &args.tag {
            Targets::Tag(t.clone())
        } else {
            Targets::Names(args.on.clone())
        };
        let recorded = engine
            .resolve_targets(&targets)
            .map(|names| engine.secrets_recorded_on_all(&args.app, &names))
            .unwrap_or_default();
        for input in ask.into_iter().filter(|i| !recorded.contains(&i.name)) {
            let v = out::prompt_password(&format!("{} ({}): ", input.label(), input.name))?;
            values.insert(input.name.clone(), v);
        }
    }
    Ok(values)
}

/// On a terminal: asks (no echo) for the sudo password of every `--prompt` target this process
/// has none for, before anything starts. Off a terminal those jobs fail fast instead.
fn ask_sudo_passwords(engine: &Engine, targets: &Targets) -> Result<()> {
    // A selection that does not resolve (unknown tag) is reported by start_fanout.
    let Ok(names) = engine.resolve_targets(targets) else {
        return Ok(());
    };
    for (name, login) in engine.servers_needing_sudo_password(&names)? {
        let pw = out::prompt_password(&format!("sudo password for {login}: "))?;
        engine.set_sudo_password(&name, ptui_types::secret::Secret::new(pw))?;
    }
    Ok(())
}

pub async fn run(engine: &Engine, args: InstallArgs, action: JobAction) -> Result<i32> {
    // Refused before any prompt for a secret or a sudo password.
    let target = match (&args.tag, args.all) {
        (_, true) => "all".to_string(),
        (Some(t), _) => format!("tag {t}"),
        (None, false) => args.on.join(","),
    };
    engine.require(ptui_engine::access::Change::RunJob, &target)?;
    let inputs = gather_inputs(engine, &args, action)?;
    let mut rx = engine.subscribe();
    let targets = if args.all {
        Targets::All
    } else if let Some(t) = &args.tag {
        Targets::Tag(t.clone())
    } else {
        Targets::Names(args.on.clone())
    };
    if interactive() && !args.plan {
        ask_sudo_passwords(engine, &targets)?;
    }
    let req = FanoutRequest {
        app: args.app.clone(),
        targets,
        inputs,
        action,
        concurrency: args.concurrency,
        batch: args.batch,
        max_fail: args.max_fail,
    };
    if args.plan {
        return super::plan::print(engine, &req, args.json);
    }
    let mut handle = match engine.start_fanout(&req) {
        Ok(h) => h,
        Err(e @ RequestError::Inputs { .. }) => {
            out::error(&e);
            errln!(
                "see `provision-tui catalog show {}` for the inputs and their rules",
                args.app
            );
            return Ok(ErrorKind::Validation.cli_exit_code());
        }
        Err(RequestError::Invalid(m)) => {
            out::error(&m);
            return Ok(exit::ERROR);
        }
    };
    let multi = handle.hosts.len() > 1;
    let live = !args.json && multi && std::io::stderr().is_terminal();
    let mut view = Progress::new(&handle.hosts);
    for (name, why) in &handle.excluded {
        errln!("==> left out {name}: {why}");
    }
    if !args.json && multi {
        errln!(
            "==> {} {} on {} hosts: {} batch(es), concurrency {}{}",
            action.as_str(),
            args.app,
            handle.hosts.len(),
            handle.batches.len(),
            handle.concurrency,
            handle
                .max_fail
                .map(|m| format!(", stops after {m} failure(s)"))
                .unwrap_or_default()
        );
    }
    let mut printed: HashMap<i64, i64> = HashMap::new();
    let mut jobs: Vec<Job> = Vec::new();
    // JSON events already printed for the end of a job / of the fan-out.
    let mut reported: std::collections::HashSet<i64> = std::collections::HashSet::new();
    let mut reported_end = false;
    let mut interrupts = 0;
    let mut asking: Option<tokio::task::JoinHandle<std::io::Result<String>>> = None;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
    let summary = loop {
        tokio::select! {
            // Events first: the fan-out emits its last events (e.g. Skipped) just before it
            // ends, and they must be printed before the summary.
            biased;
            ev = rx.recv() => match ev {
                Ok(Event::Fanout { fanout }) => {
                    let mine = match &fanout {
                        FanoutEvent::Started { fanout_id, .. } | FanoutEvent::BatchStarted { fanout_id, .. }
                        | FanoutEvent::JobLaunched { fanout_id, .. } | FanoutEvent::Skipped { fanout_id, .. }
                        | FanoutEvent::Finished { fanout_id, .. } => *fanout_id == handle.id,
                    };
                    if !mine {
                        continue;
                    }
                    if args.json {
                        reported_end |= matches!(fanout, FanoutEvent::Finished { .. });
                        out::json(&Event::Fanout { fanout: fanout.clone() })?;
                    }
                    match fanout {
                        FanoutEvent::JobLaunched { job_id, .. } => {
                            printed.insert(job_id, 0);
                            if let Ok(j) = engine.job(job_id) {
                                if !args.json && !live {
                                    errln!("==> job #{} {} {} on {}", j.id, action.as_str(), j.app_id, j.server_name);
                                }
                                view.job(&j);
                                jobs.push(j);
                            }
                        }
                        FanoutEvent::Skipped { servers, reason, .. } => {
                            if !args.json && !live {
                                errln!("==> skipped {}: {reason}", servers.join(", "));
                            }
                            view.skipped(&servers, &reason);
                        }
                        _ => {}
                    }
                }
                Ok(Event::JobLog { job_id, lines }) if printed.contains_key(&job_id) => {
                    if let Some(l) = lines.last() {
                        view.last_line(job_id, &l.text);
                    }
                    if !live {
                        catch_up(engine, job_id, lines.first().map(|l| l.seq), &mut printed, multi, args.json)?;
                        for l in lines {
                            print_line(&l, &mut printed, multi, args.json, &[])?;
                        }
                    }
                }
                // Its output or end could not be stored here: it goes on on its server.
                Ok(Event::JobDetached { job }) if printed.contains_key(&job.id) => {
                    if !args.json && !live {
                        errln!(
                            "==> job #{} on {}: detached: {}",
                            job.id,
                            job.server_name,
                            terminal_text(job.error_message.as_deref().unwrap_or(""))
                        );
                    }
                    view.job(&job);
                }
                Ok(Event::JobStarted { job } | Event::JobFinished { job }) if printed.contains_key(&job.id) => {
                    view.job(&job);
                    if args.json {
                        if job.status.is_terminal() {
                            reported.insert(job.id);
                        }
                        let ev = if job.status.is_terminal() { Event::JobFinished { job } } else { Event::JobStarted { job } };
                        out::json(&ev)?;
                    }
                }
                Ok(_) => {}
                // We fell behind: the database has every line, so re-read what we missed.
                Err(RecvError::Lagged(_)) => {
                    for id in printed.keys().copied().collect::<Vec<_>>() {
                        if let Ok(j) = engine.job(id) {
                            view.job(&j);
                        }
                        if !live {
                            catch_up(engine, id, None, &mut printed, multi, args.json)?;
                        }
                    }
                }
                Err(RecvError::Closed) => {}
            },
            done = &mut handle.done => break done.unwrap_or_default(),
            _ = tick.tick(), if live => view.draw()?,
            _ = tokio::signal::ctrl_c() => {
                interrupts += 1;
                if interrupts > 1 {
                    return leave_running(engine);
                }
                if interactive() && asking.is_none() {
                    err!("\n==> leave the running jobs on their servers (they go on there; `provision-tui jobs reattach` follows them), or cancel them? [L/c] ");
                    asking = Some(tokio::task::spawn_blocking(|| {
                        let mut answer = String::new();
                        std::io::stdin().read_line(&mut answer).map(|_| answer)
                    }));
                    continue;
                }
                errln!("\ncancelling: no new hosts start, running jobs are killed; press Ctrl-C again to leave them running at once");
                handle.cancel.cancel();
            }
            answer = async {
                match asking.as_mut() {
                    Some(a) => a.await,
                    None => std::future::pending().await,
                }
            }, if asking.is_some() => {
                asking = None;
                let cancel = matches!(answer, Ok(Ok(a)) if a.trim().eq_ignore_ascii_case("c"));
                if !cancel {
                    return leave_running(engine);
                }
                interrupts = 0;
                errln!("==> cancelling: no new hosts start, running jobs are killed; press Ctrl-C again to leave them running at once");
                handle.cancel.cancel();
            }
        }
    };
    // Every line of every job, then the final rows.
    let mut finished: HashMap<i64, Job> = HashMap::new();
    for j in &jobs {
        // Its spool on the server is removed right after its end is recorded: let that finish.
        engine.settle(j.id).await;
        if !live {
            catch_up(engine, j.id, None, &mut printed, multi, args.json)?;
        }
        if let Ok(f) = engine.job(j.id) {
            view.job(&f);
            // The fan-out can end before its last events reach us: report them from the database.
            if args.json && !reported.contains(&f.id) {
                out::json(&Event::JobFinished { job: f.clone() })?;
            }
            finished.insert(f.id, f);
        }
    }
    view.skipped_if_pending(&summary.skipped);
    if args.json && !reported_end {
        let end = Event::Fanout {
            fanout: FanoutEvent::Finished {
                fanout_id: handle.id,
                summary: summary.clone(),
            },
        };
        out::json(&end)?;
    }
    if live {
        view.draw()?;
    }
    if !args.json && multi {
        view.summary_table();
    }
    let mut code = summarize(&jobs, &finished, args.json || multi);
    if code == exit::OK && !summary.skipped.is_empty() {
        code = exit::ERROR;
    }
    Ok(code)
}

/// Quits without waiting: jobs already sent go on on their servers, detached.
fn leave_running(engine: &Engine) -> Result<i32> {
    let (detached, dropped) = engine.detach_running()?;
    errln!(
        "\n==> {detached} job(s) left running on their servers{}; `provision-tui jobs` shows them, `provision-tui jobs reattach` follows them to their end",
        if dropped > 0 {
            format!(", {dropped} not started yet and now over")
        } else {
            String::new()
        }
    );
    Ok(ErrorKind::Interrupted.cli_exit_code())
}

fn catch_up(
    engine: &Engine,
    job_id: i64,
    next_seq: Option<i64>,
    printed: &mut HashMap<i64, i64>,
    multi: bool,
    json: bool,
) -> Result<()> {
    let last = printed.get(&job_id).copied().unwrap_or(0);
    if next_seq.is_some_and(|s| s <= last + 1) {
        return Ok(());
    }
    let missing = engine.job_logs(job_id, last + 1, 100_000)?;
    for l in missing
        .into_iter()
        .filter(|l| next_seq.is_none_or(|s| l.seq < s))
    {
        print_line(&l, printed, multi, json, &[])?;
    }
    Ok(())
}

fn print_line(
    l: &LogLine,
    printed: &mut HashMap<i64, i64>,
    multi: bool,
    json: bool,
    _jobs: &[Job],
) -> Result<()> {
    let last = printed.entry(l.job_id).or_insert(0);
    if l.seq <= *last {
        return Ok(());
    }
    *last = l.seq;
    if json {
        out::json_log_line(l)?;
        return Ok(());
    }
    let prefix = if multi {
        format!("[#{}] ", l.job_id)
    } else {
        String::new()
    };
    // Sanitised before the prefix, so a `\r` in the text cannot hide the prefix.
    let text = terminal_text(&l.text);
    match l.stream {
        LogStream::Stdout => outln!("{prefix}{text}"),
        LogStream::Stderr => errln!("{prefix}{text}"),
        LogStream::System => errln!("{prefix}==> {text}"),
    }
    Ok(())
}

fn summarize(jobs: &[Job], finished: &HashMap<i64, Job>, json: bool) -> i32 {
    let mut code = exit::OK;
    for j in jobs {
        let Some(f) = finished.get(&j.id) else {
            continue;
        };
        if !json {
            let took = f
                .duration_ms(ptui_types::time::now_ms())
                .map(ptui_types::time::human_ms)
                .unwrap_or_default();
            match f.error_kind {
                None => errln!(
                    "==> job #{} on {}: {} in {took}",
                    f.id,
                    f.server_name,
                    f.status
                ),
                Some(k) => errln!(
                    "==> job #{} on {}: {} ({k}) {}",
                    f.id,
                    f.server_name,
                    f.status,
                    terminal_text(f.error_message.as_deref().unwrap_or(""))
                ),
            }
        }
        if f.status != JobStatus::Succeeded && code == exit::OK {
            code = f
                .error_kind
                .map(|k| k.cli_exit_code())
                .unwrap_or(exit::ERROR);
        }
    }
    code
}
