use clap::Parser;
mod cli;

use cli::Cli;

fn init_logging(dir: &std::path::Path) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    // Logs go to a file, never to the terminal the TUI draws on. It names servers and
    // errors, so it is created 0600 (in a 0700 directory) before the appender opens it.
    const LOG: &str = "provision-tui.log";
    let tightened = match ptui_types::private_files::ensure_file(&dir.join(LOG)) {
        Ok(t) => t,
        // Someone else's file we cannot chmod: log to it anyway, as before.
        Err(_) if dir.join(LOG).is_file() => false,
        Err(_) => return None,
    };
    let appender = tracing_appender::rolling::never(dir, LOG);
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = tracing_subscriber::EnvFilter::try_from_env("PROVISION_TUI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,russh=warn"));
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_env_filter(filter)
        .init();
    if tightened {
        tracing::warn!("{LOG} was readable by others; set it to 0600");
    }
    Some(guard)
}

fn main() {
    let _ = color_eyre::install();
    let cli = Cli::parse();
    let _guard = init_logging(&ptui_types::config::state_dir());
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            cli::out::stderr_text(&format!("error: cannot start the async runtime: {e}\n"));
            std::process::exit(cli::exit::ERROR);
        }
    };
    let mut cli = cli;
    let code = runtime.block_on(async {
        match cli.command.take() {
            Some(command) => cli::run(cli, command).await,
            None => cli::run_dashboard(cli).await,
        }
    });
    // Jobs still running at exit are reported as interrupted by the next start.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    std::process::exit(code);
}
