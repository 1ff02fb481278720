//! The QUIC endpoint: connections, the hello, streams of frames, limits, the expiry
//! timer and graceful shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use promesa_engine::snapshot::SnapshotScheduler;
use promesa_engine::wal::scan::ScanOptions;
use promesa_engine::wal::storage::FsStorage;
use promesa_engine::wal::writer::LogConfig;
use promesa_engine::{Engine, EngineConfig};
use promesa_protocol::frame::{LENGTH_PREFIX_BYTES, access_client_frame, encode_server_frame, payload_len};
use promesa_protocol::{
    ALPN, ArchivedRequest, ErrorCode, PROTOCOL_MAJOR, PROTOCOL_MINOR, Payload, Response, ResponseEnvelope, Role,
    ServerFrame,
};
use tokio::sync::{Semaphore, mpsc, watch};

use crate::acknowledger::Acknowledger;
use crate::auth::Tokens;
use crate::execute::{Executor, unavailable, wall_clock_ms};
use crate::tls::TlsIdentity;

/// Default address the server listens on.
pub const LISTEN_DEFAULT: &str = "127.0.0.1:7400";
/// Default most connections at once.
pub const CONNECTIONS_MAX_DEFAULT: usize = 1_024;
/// Default most concurrent bidirectional streams per connection.
pub const STREAMS_PER_CONNECTION_MAX_DEFAULT: u32 = 64;
/// Default maximum of requests in flight per connection.
pub const IN_FLIGHT_REQUESTS_MAX_DEFAULT: usize = promesa_protocol::limits::IN_FLIGHT_REQUESTS_PER_CONNECTION_DEFAULT;
/// Default idle timeout of a connection, in milliseconds.
pub const IDLE_TIMEOUT_MS_DEFAULT: u64 = 60_000;
/// Time between two expiry sweeps, in milliseconds.
pub const SWEEP_INTERVAL_MS: u64 = 100;
/// Maximum wait at shutdown for connection tasks to let go of the engine, in
/// milliseconds.
const SHUTDOWN_TASKS_WAIT_MS: u64 = 10_000;
/// Response frames queued per stream before the stream stops taking new frames.
const RESPONSES_QUEUED_PER_STREAM_MAX: usize = 256;

/// QUIC application error codes sent when the server closes a connection.
mod close_code {
    pub const SHUTTING_DOWN: u32 = 1;
    pub const HANDSHAKE_FAILED: u32 = 2;
    pub const CONNECTION_LIMIT: u32 = 3;
}

/// Server settings.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Folder of the log, snapshots, development certificate and generated token.
    pub data_dir: PathBuf,
    /// Certificate and key PEM files; `None` uses the development certificate.
    pub cert_and_key: Option<(PathBuf, PathBuf)>,
    /// Tokens file; `None` uses the generated admin token.
    pub tokens: Option<PathBuf>,
    /// Most connections at once.
    pub connections_max: usize,
    /// Most concurrent streams per connection.
    pub streams_per_connection_max: u32,
    /// Maximum requests in flight per connection.
    pub in_flight_requests_max: usize,
    /// Idle timeout, in milliseconds.
    pub idle_timeout_ms: u64,
    /// Log settings, snapshot policy included.
    pub log: LogConfig,
}

impl ServerConfig {
    /// Returns the defaults, with data in `data_dir`.
    pub fn new(data_dir: PathBuf) -> Self {
        ServerConfig {
            listen: LISTEN_DEFAULT.parse().expect("the default address parses"),
            data_dir,
            cert_and_key: None,
            tokens: None,
            connections_max: CONNECTIONS_MAX_DEFAULT,
            streams_per_connection_max: STREAMS_PER_CONNECTION_MAX_DEFAULT,
            in_flight_requests_max: IN_FLIGHT_REQUESTS_MAX_DEFAULT,
            idle_timeout_ms: IDLE_TIMEOUT_MS_DEFAULT,
            log: LogConfig::default(),
        }
    }
}

/// A server that has recovered its state and listens.
pub struct Server {
    endpoint: quinn::Endpoint,
    executor: Arc<Executor>,
    tokens: Arc<Tokens>,
    config: ServerConfig,
    identity_path: PathBuf,
    recovery: Recovery,
}

/// Summary of the engine's recovery at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// File name of the snapshot loaded, if any.
    pub snapshot: Option<String>,
    /// Log records replayed after the snapshot.
    pub records_replayed: u64,
    /// Holds whose deadline passed while the server was down, expired at start.
    pub holds_expired_at_open: usize,
    /// Time from the start of recovery to the engine being ready, in microseconds.
    pub elapsed_us: u64,
}

/// Shared state of the connections.
struct Shared {
    /// Declared first, so it drops (and lets go of the engine) before `executor`,
    /// whose count shutdown watches.
    acknowledger: Acknowledger,
    executor: Arc<Executor>,
    tokens: Arc<Tokens>,
    connections: AtomicUsize,
    config: ServerConfig,
    /// Frames being executed; shutdown waits for it to drain.
    frames_in_flight: AtomicUsize,
    /// Set at shutdown: frames read after it are refused with `shutting_down`.
    shutting_down: std::sync::atomic::AtomicBool,
}

impl Server {
    /// Recovers the engine from the data folder, loads TLS and tokens, and binds.
    pub fn start(config: ServerConfig) -> Result<Server, String> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|error| format!("failed to create the data folder {}: {error}", config.data_dir.display()))?;
        let identity = match &config.cert_and_key {
            Some((cert, key)) => crate::tls::load(cert, key)?,
            None => crate::tls::development(&config.data_dir)?,
        };
        tracing::info!(path = %identity.cert_path.display(), sha256 = %identity.fingerprint, "TLS certificate");
        let tokens = match &config.tokens {
            Some(path) => Tokens::load(path)?,
            None => {
                let tokens = Tokens::generated_admin(&config.data_dir)?;
                let path = config.data_dir.join(crate::auth::ADMIN_TOKEN_FILE);
                tracing::info!(path = %path.display(), "admin token file");
                tokens
            }
        };

        let storage = FsStorage::new(config.data_dir.join("wal"))
            .map_err(|error| format!("failed to open the log folder: {error}"))?;
        let (engine, report) = Engine::open(
            EngineConfig::default(),
            Arc::new(storage),
            config.log.clone(),
            ScanOptions::default(),
            wall_clock_ms(),
        )
        .map_err(|error| format!("recovery failed: {error}"))?;
        tracing::info!(
            snapshot = report.snapshot.as_deref().unwrap_or("none"),
            records_replayed = report.records_replayed,
            holds_expired_at_open = report.holds_expired_at_open,
            elapsed_ms = report.elapsed.as_millis() as u64,
            "engine recovered"
        );

        let recovery = Recovery {
            snapshot: report.snapshot,
            records_replayed: report.records_replayed,
            holds_expired_at_open: report.holds_expired_at_open,
            elapsed_us: report.elapsed.as_micros() as u64,
        };

        let endpoint = quinn::Endpoint::server(quic_config(&config, identity.clone_parts())?, config.listen)
            .map_err(|error| format!("failed to listen on {}: {error}", config.listen))?;
        let identity_path = identity.cert_path;
        Ok(Server {
            endpoint,
            executor: Arc::new(Executor::new(Arc::new(engine))),
            tokens: Arc::new(tokens),
            config,
            identity_path,
            recovery,
        })
    }

    /// Returns the address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.endpoint.local_addr().expect("a bound endpoint has an address")
    }

    /// The certificate file clients should trust.
    pub fn cert_path(&self) -> &std::path::Path {
        &self.identity_path
    }

    /// Returns how the engine was rebuilt from the data folder at start.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// Serves until `shutdown` fires, then shuts down cleanly: stops accepting,
    /// finishes the frames in flight, closes connections, flushes the log and writes a
    /// snapshot.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<(), String> {
        let acknowledger = Acknowledger::start(Arc::clone(self.executor.engine()))
            .map_err(|error| format!("failed to start the acknowledger thread: {error}"))?;
        let shared = Arc::new(Shared {
            acknowledger,
            executor: Arc::clone(&self.executor),
            tokens: Arc::clone(&self.tokens),
            connections: AtomicUsize::new(0),
            config: self.config.clone(),
            frames_in_flight: AtomicUsize::new(0),
            shutting_down: std::sync::atomic::AtomicBool::new(false),
        });
        let scheduler = SnapshotScheduler::start(Arc::clone(self.executor.engine()))
            .map_err(|error| format!("failed to start the snapshot thread: {error}"))?;
        let sweeper = tokio::spawn(sweep_loop(Arc::clone(&self.executor), shutdown.clone()));
        tracing::info!(listen = %self.local_addr(), "serving");

        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                incoming = self.endpoint.accept() => {
                    let Some(incoming) = incoming else { break };
                    tokio::spawn(serve_connection(Arc::clone(&shared), incoming));
                }
            }
        }

        tracing::info!("shutting down: no new connections or frames");
        self.endpoint.set_server_config(None);
        shared.shutting_down.store(true, Ordering::Release);
        while shared.frames_in_flight.load(Ordering::Acquire) > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tracing::info!("shutting down: every frame in flight has its response");
        self.endpoint.close(close_code::SHUTTING_DOWN.into(), b"server shutting down");
        self.endpoint.wait_idle().await;
        let _ = sweeper.await;
        scheduler.stop();
        drop(shared);

        // Connection and frame tasks drop their handles as they end.
        let mut executor = self.executor;
        let mut waited_ms = 0;
        let executor = loop {
            match Arc::try_unwrap(executor) {
                Ok(executor) => break executor,
                Err(shared) if waited_ms < SHUTDOWN_TASKS_WAIT_MS => {
                    executor = shared;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    waited_ms += 1;
                }
                Err(_) => {
                    return Err(format!("tasks still hold the engine {SHUTDOWN_TASKS_WAIT_MS} ms after shutdown"));
                }
            }
        };
        let engine = Arc::into_inner(executor.into_engine()).ok_or("the engine is still shared at shutdown")?;
        tokio::task::spawn_blocking(move || engine.close())
            .await
            .map_err(|error| format!("closing the engine panicked: {error}"))?
            .map_err(|error| format!("closing the engine failed: {error}"))?;
        tracing::info!("shut down: log flushed and snapshot written");
        Ok(())
    }
}

impl TlsIdentity {
    fn clone_parts(
        &self,
    ) -> (Vec<rustls::pki_types::CertificateDer<'static>>, rustls::pki_types::PrivateKeyDer<'static>) {
        (self.chain.clone(), self.key.clone_key())
    }
}

/// QUIC and TLS settings for a LAN or loopback server.
fn quic_config(
    config: &ServerConfig,
    (chain, key): (Vec<rustls::pki_types::CertificateDer<'static>>, rustls::pki_types::PrivateKeyDer<'static>),
) -> Result<quinn::ServerConfig, String> {
    // ring, not aws-lc-rs: it builds without cmake, and the machines this serves are
    // on one LAN, where post-quantum key exchange (ring's missing piece) buys nothing.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|error| format!("TLS 1.3 is not available: {error}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|error| format!("the certificate and key do not form a usable identity: {error}"))?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|error| format!("the TLS settings do not suit QUIC: {error}"))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));

    // The defaults suit the internet: small windows that grow over round trips. On a
    // LAN or loopback the round trip is short and memory is the limit, so the windows
    // start large enough for many frames in flight on each stream.
    let mut transport = quinn::TransportConfig::default();
    transport.max_concurrent_bidi_streams(config.streams_per_connection_max.into());
    transport.max_concurrent_uni_streams(0u32.into());
    transport.stream_receive_window((8u32 << 20).into());
    transport.receive_window((32u32 << 20).into());
    transport.send_window(32 << 20);
    let idle = quinn::IdleTimeout::try_from(Duration::from_millis(config.idle_timeout_ms))
        .map_err(|error| format!("idle timeout {} ms is out of range: {error}", config.idle_timeout_ms))?;
    transport.max_idle_timeout(Some(idle));
    server.transport_config(Arc::new(transport));
    Ok(server)
}

async fn sweep_loop(executor: Arc<Executor>, mut shutdown: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(Duration::from_millis(SWEEP_INTERVAL_MS));
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = interval.tick() => {
                let executor = Arc::clone(&executor);
                let swept = tokio::task::spawn_blocking(move || executor.engine().sweep(wall_clock_ms()).len()).await;
                if let Ok(expired) = swept
                    && expired > 0
                {
                    tracing::debug!(expired, "expiry sweep");
                }
            }
        }
    }
}

async fn serve_connection(shared: Arc<Shared>, incoming: quinn::Incoming) {
    let connection = match incoming.await {
        Ok(connection) => connection,
        Err(error) => {
            tracing::debug!(%error, "handshake failed");
            return;
        }
    };
    let remote = connection.remote_address();
    let open = shared.connections.fetch_add(1, Ordering::AcqRel) + 1;
    let _count = ConnectionCount(&shared.connections);
    if open > shared.config.connections_max {
        let reason = format!("connection limit connections_max = {} reached", shared.config.connections_max);
        connection.close(close_code::CONNECTION_LIMIT.into(), reason.as_bytes());
        tracing::debug!(%remote, "refused: connection limit");
        return;
    }
    tracing::debug!(%remote, "connection open");

    // The first stream's first frame must begin with a hello.
    let Ok((mut send, mut recv)) = connection.accept_bi().await else { return };
    let role = match hello(&shared, &mut send, &mut recv).await {
        Ok(role) => role,
        Err((code, message)) => {
            let frame = ServerFrame {
                responses: vec![ResponseEnvelope {
                    id: 0,
                    response: Response::Error { code: code.number(), message: message.clone() },
                }],
            };
            let _ = send.write_all(&encode_server_frame(&frame)).await;
            let _ = send.finish();
            // Give the error frame time to leave before the close discards it.
            let _ = tokio::time::timeout(Duration::from_millis(200), send.stopped()).await;
            connection.close(close_code::HANDSHAKE_FAILED.into(), message.as_bytes());
            tracing::debug!(%remote, "hello rejected");
            return;
        }
    };
    let in_flight = Arc::new(Semaphore::new(shared.config.in_flight_requests_max));
    tokio::spawn(serve_stream(Arc::clone(&shared), role, Arc::clone(&in_flight), send, recv));
    loop {
        match connection.accept_bi().await {
            Ok((send, recv)) => {
                tokio::spawn(serve_stream(Arc::clone(&shared), role, Arc::clone(&in_flight), send, recv));
            }
            Err(error) => {
                tracing::debug!(%remote, %error, "connection closed");
                return;
            }
        }
    }
}

/// Counts a frame in flight until its task ends, however it ends.
struct FrameInFlight<'a>(&'a AtomicUsize);

impl Drop for FrameInFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Decrements the open connection count when a connection task ends.
struct ConnectionCount<'a>(&'a AtomicUsize);

impl Drop for ConnectionCount<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Reads the first frame and checks its hello; replies `Welcome` on success.
async fn hello(
    shared: &Shared,
    send: &mut quinn::SendStream,
    recv: &mut quinn::RecvStream,
) -> Result<Role, (ErrorCode, String)> {
    let payload =
        read_payload(recv).await?.ok_or((ErrorCode::Malformed, "the stream ended before a hello".to_owned()))?;
    let frame = access_client_frame(&payload).map_err(|error| (ErrorCode::Malformed, error.to_string()))?;
    let Some(first) = frame.requests.first() else {
        return Err((ErrorCode::Malformed, "the first frame is empty; it must start with a hello".to_owned()));
    };
    let ArchivedRequest::Hello { major, token, .. } = &first.request else {
        return Err((ErrorCode::Unauthenticated, "the first request must be a hello with a token".to_owned()));
    };
    if major.to_native() != PROTOCOL_MAJOR {
        return Err((
            ErrorCode::UnsupportedVersion,
            format!(
                "protocol major version {} is not supported; this server speaks {PROTOCOL_MAJOR}",
                major.to_native()
            ),
        ));
    }
    let role =
        shared.tokens.role(token.as_str()).ok_or((ErrorCode::Unauthenticated, "the token is not known".to_owned()))?;
    let welcome = ServerFrame {
        responses: vec![ResponseEnvelope {
            id: first.id.to_native(),
            response: Response::Welcome { major: PROTOCOL_MAJOR, minor: PROTOCOL_MINOR, role },
        }],
    };
    send.write_all(&encode_server_frame(&welcome)).await.map_err(|error| (ErrorCode::Internal, error.to_string()))?;
    Ok(role)
}

/// Reads one length-prefixed payload; `None` at a clean end of the stream.
async fn read_payload(recv: &mut quinn::RecvStream) -> Result<Option<Payload>, (ErrorCode, String)> {
    let mut prefix = [0u8; LENGTH_PREFIX_BYTES];
    match recv.read_exact(&mut prefix).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(error) => return Err((ErrorCode::Malformed, format!("reading a frame failed: {error}"))),
    }
    let len = payload_len(prefix).map_err(|error| (ErrorCode::LimitExceeded, error.to_string()))?;
    let mut bytes = vec![0u8; len];
    recv.read_exact(&mut bytes)
        .await
        .map_err(|error| (ErrorCode::Malformed, format!("reading a frame failed: {error}")))?;
    Ok(Some(promesa_protocol::frame::payload_from(&bytes)))
}

async fn serve_stream(
    shared: Arc<Shared>,
    role: Role,
    in_flight: Arc<Semaphore>,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    // Responses go through one writer task, so frames completed out of order never
    // interleave their bytes.
    let (responses, mut queued) = mpsc::channel::<Vec<u8>>(RESPONSES_QUEUED_PER_STREAM_MAX);
    let writer = tokio::spawn(async move {
        while let Some(bytes) = queued.recv().await {
            if send.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = send.finish();
    });

    loop {
        let payload = match read_payload(&mut recv).await {
            Ok(Some(payload)) => payload,
            Ok(None) => break,
            Err((code, message)) => {
                let _ = responses.send(error_frame(code, &message)).await;
                break;
            }
        };
        if shared.shutting_down.load(Ordering::Acquire) {
            let _ = responses.send(error_frame(ErrorCode::ShuttingDown, "the server is shutting down")).await;
            break;
        }
        let requests = match access_client_frame(&payload) {
            Ok(frame) => frame.requests.len(),
            Err(error) => {
                let code = if matches!(error, promesa_protocol::FrameError::TooManyRequests { .. }) {
                    ErrorCode::LimitExceeded
                } else {
                    ErrorCode::Malformed
                };
                let _ = responses.send(error_frame(code, &error.to_string())).await;
                // A stream that sent bad bytes cannot be trusted to frame the next ones.
                break;
            }
        };
        let limit = shared.config.in_flight_requests_max;
        let permits = u32::try_from(requests.max(1)).unwrap_or(u32::MAX);
        if requests > limit {
            let message = format!("frame has {requests} requests, over the limit in_flight_requests_max = {limit}");
            let frame = access_client_frame(&payload).expect("validated above");
            let refused = ServerFrame {
                responses: frame
                    .requests
                    .iter()
                    .map(|envelope| ResponseEnvelope {
                        id: envelope.id.to_native(),
                        response: Response::Error { code: ErrorCode::LimitExceeded.number(), message: message.clone() },
                    })
                    .collect(),
            };
            let _ = responses.send(encode_server_frame(&refused)).await;
            continue;
        }
        let Ok(permit) = Arc::clone(&in_flight).acquire_many_owned(permits).await else { break };

        shared.frames_in_flight.fetch_add(1, Ordering::AcqRel);
        let (shared, responses) = (Arc::clone(&shared), responses.clone());
        tokio::spawn(async move {
            let _in_flight = FrameInFlight(&shared.frames_in_flight);
            let started = std::time::Instant::now();
            let frame = access_client_frame(&payload).expect("validated above");
            let executed =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| shared.executor.execute_frame(frame, role)));
            let Ok((answer, lsn)) = executed else {
                tracing::error!("a frame's execution panicked");
                let _ = responses.send(error_frame(ErrorCode::Internal, "the frame's execution panicked")).await;
                return;
            };
            let answer = match lsn {
                0 => answer,
                lsn => match shared.acknowledger.wait(lsn).await {
                    Ok(()) => answer,
                    Err(failure) => unavailable(answer, &failure),
                },
            };
            let _ = responses.send(encode_server_frame(&answer)).await;
            shared.executor.record_latency(frame, started.elapsed().as_micros() as u64);
            drop(permit);
        });
    }
    drop(responses);
    let _ = writer.await;
}

/// Encodes a frame with one error response, for a frame that could not be read.
fn error_frame(code: ErrorCode, message: &str) -> Vec<u8> {
    let frame = ServerFrame {
        responses: vec![ResponseEnvelope {
            id: 0,
            response: Response::Error { code: code.number(), message: message.to_owned() },
        }],
    };
    encode_server_frame(&frame)
}
