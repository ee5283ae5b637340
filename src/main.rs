use clap::Parser;
mod cli;

use cli::Cli;

fn init_logging(dir: &std::path::Path) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    // Logs go to a file, never to the terminal the TUI draws on.
    std::fs::create_dir_all(dir).ok()?;
    let appender = tracing_appender::rolling::never(dir, "provision-tui.log");
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = tracing_subscriber::EnvFilter::try_from_env("PROVISION_TUI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,russh=warn"));
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_env_filter(filter)
        .init();
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
