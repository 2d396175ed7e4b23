use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = edgefail::cli::Cli::parse();
    let default = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (_, 0) => "warn",
        (_, 1) => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Plain text into a file or a pipe; colour only on a terminal.
        .with_ansi(edgefail::platform::color_allowed(
            edgefail::platform::stderr_is_terminal(),
        ))
        .with_target(false)
        .init();
    let exit = match tokio::runtime::Runtime::new() {
        Ok(runtime) => {
            let result = runtime.block_on(edgefail::commands::run(cli));
            // Don't wait for stray blocking tasks (a hung child being reaped).
            runtime.shutdown_timeout(std::time::Duration::from_secs(1));
            edgefail::report::outcome(result)
        }
        Err(e) => edgefail::report::outcome(Err(edgefail::exit::Failed {
            exit: edgefail::exit::Exit::StepFailed,
            error: anyhow::anyhow!("cannot start the async runtime: {e}"),
        })),
    };
    ExitCode::from(u8::try_from(exit.code()).unwrap_or(1))
}
