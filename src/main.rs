//! The `sioedge` command line: `run`, `relay`, `check-config`, `devices`.

use clap::{Parser, Subcommand};
use sioedge::config::{Config, ConfigError, Escaped};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "sioedge",
    version,
    about = "Camera and microphone to the browser over Socket.IO"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway: capture, serve the LAN viewer, publish to relays.
    Run {
        /// Config file (default /etc/sioedge/sioedge.toml; the embedded default when absent).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Run the relay: accept publishers, serve viewers, optionally scale out through Redis.
    Relay {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a config file without starting anything.
    CheckConfig { file: PathBuf },
    /// List cameras, microphones and encoders on this machine.
    Devices {
        #[arg(long)]
        json: bool,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colours for a person at a terminal, not escape codes in the journal or a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file } => {
            let cfg = valid_or_exit(usable(Config::from_file(&file)));
            let file = file.display().to_string();
            println!("{}: ok ({})", Escaped(&file), cfg.summary());
            Ok(())
        }
        Command::Devices { json } => {
            #[cfg(feature = "media")]
            {
                print!("{}", sioedge::media::devices::report(json)?);
                Ok(())
            }
            #[cfg(not(feature = "media"))]
            anyhow::bail!("built without the `media` feature: no capture (json: {json})")
        }
        Command::Run { config } => {
            let cfg = valid_or_exit(usable(Config::load(config.as_deref())));
            until_stopped(sioedge::gateway::run(cfg, terminated()))
        }
        Command::Relay { config } => {
            let cfg = valid_or_exit(usable(Config::from_file(&config)));
            until_stopped(sioedge::relay::run(cfg, terminated()))
        }
    }
}

/// A valid config whose TLS files also load (what the start would find out).
fn usable(cfg: Result<Config, ConfigError>) -> Result<Config, ConfigError> {
    let cfg = cfg?;
    sioedge::service::check_tls_files(&cfg)?;
    Ok(cfg)
}

/// The config, or its error (file:line:col: field: message) on stderr and exit status 2.
fn valid_or_exit(cfg: Result<Config, ConfigError>) -> Config {
    cfg.unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    })
}

/// Runs a gateway or relay main loop on a fresh runtime until it returns.
fn until_stopped<E>(
    main_loop: impl std::future::Future<Output = Result<(), E>>,
) -> anyhow::Result<()>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(main_loop)?;
    // Capture threads and sockets are closed; don't wait for stray blocking tasks.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    Ok(())
}

/// Completes on SIGTERM or SIGINT (Ctrl-C).
async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
