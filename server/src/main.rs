//! `promesa-server`: serves Promesa's engine over QUIC.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use promesa_engine::wal::writer::Durability;
use promesa_server::server::{
    CONNECTIONS_MAX_DEFAULT, IDLE_TIMEOUT_MS_DEFAULT, IN_FLIGHT_REQUESTS_MAX_DEFAULT, LISTEN_DEFAULT,
    STREAMS_PER_CONNECTION_MAX_DEFAULT,
};
use promesa_server::{Server, ServerConfig};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Serves Promesa's inventory engine over QUIC.
#[derive(Parser)]
#[command(version)]
struct Arguments {
    /// Address to listen on (UDP).
    #[arg(long, default_value = LISTEN_DEFAULT)]
    listen: SocketAddr,
    /// Folder of the log, snapshots, development certificate and generated token.
    #[arg(long, default_value = "./promesa-data")]
    data_dir: PathBuf,
    /// Certificate chain, PEM. With `--key`; without both, a development certificate
    /// is generated into the data folder.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// Private key, PEM.
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// Tokens file: one `TOKEN ROLE` per line (read, reserve, admin), mode 600.
    /// Without it, an admin token is generated into the data folder.
    #[arg(long)]
    tokens: Option<PathBuf>,
    /// Most connections at once.
    #[arg(long, default_value_t = CONNECTIONS_MAX_DEFAULT)]
    connections_max: usize,
    /// Most concurrent streams per connection.
    #[arg(long, default_value_t = STREAMS_PER_CONNECTION_MAX_DEFAULT)]
    streams_per_connection_max: u32,
    /// Most requests in flight per connection.
    #[arg(long, default_value_t = IN_FLIGHT_REQUESTS_MAX_DEFAULT)]
    in_flight_requests_max: usize,
    /// Idle timeout of a connection, in milliseconds.
    #[arg(long, default_value_t = IDLE_TIMEOUT_MS_DEFAULT)]
    idle_timeout_ms: u64,
    /// When a change is acknowledged. `none` is NOT durable: a crash of the process or
    /// the machine loses acknowledged changes. Use it for benchmarks only.
    #[arg(long, value_enum, default_value = "sync")]
    durability: DurabilityArgument,
}

/// The values of `--durability`.
#[derive(Clone, Copy, ValueEnum)]
enum DurabilityArgument {
    /// After the fdatasync that covers the change's log record.
    Sync,
    /// At once, before the log record is written, and the record is never synced. NOT
    /// durable: for benchmarks only.
    #[value(name = "none")]
    NotDurable,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let arguments = Arguments::parse();
    let mut config = ServerConfig::new(arguments.data_dir);
    config.listen = arguments.listen;
    config.cert_and_key = arguments.cert.zip(arguments.key);
    config.tokens = arguments.tokens;
    config.connections_max = arguments.connections_max;
    config.streams_per_connection_max = arguments.streams_per_connection_max;
    config.in_flight_requests_max = arguments.in_flight_requests_max;
    config.idle_timeout_ms = arguments.idle_timeout_ms;
    config.log.durability = match arguments.durability {
        DurabilityArgument::Sync => Durability::Sync,
        DurabilityArgument::NotDurable => {
            tracing::warn!(
                "--durability none: changes are acknowledged before their log records are on disk, \
                 so a crash loses acknowledged changes; use it for benchmarks only"
            );
            Durability::NotDurable
        }
    };

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("promesa-server: failed to start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let server = Server::start(config)?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("signal received");
            let _ = stop.send(true);
        });
        server.run(stopped).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!(%message, "promesa-server stopped");
            eprintln!("promesa-server: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Waits for SIGINT or SIGTERM.
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    else {
        tracing::error!("failed to install signal handlers; stop the server with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
}
