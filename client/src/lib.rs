//! Promesa's async client: connects over QUIC with TLS 1.3, says hello with a token,
//! and sends frames of requests over a few long-lived streams.
//!
//! [`Client::call`] sends one frame and returns its responses in request order;
//! requests from concurrent callers go out on different streams.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use promesa_protocol::frame::{LENGTH_PREFIX_BYTES, access_server_frame, encode_client_frame, payload_len};
use promesa_protocol::{
    ALPN, ArchivedResponse, ClientFrame, ErrorCode, PROTOCOL_MAJOR, PROTOCOL_MINOR, Request, RequestEnvelope, Response,
    Role,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use thiserror::Error;
use tokio::sync::Mutex;

/// File name of a local server's development certificate in its data folder.
pub const DEV_CERT_FILE: &str = "dev-cert.pem";
/// File name of a local server's generated admin token in its data folder.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";
/// Default streams a client keeps open.
pub const STREAMS_DEFAULT: usize = 4;
/// Default time a call waits for its response, in milliseconds.
pub const TIMEOUT_MS_DEFAULT: u64 = 30_000;

/// Connection settings.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Server address.
    pub addr: SocketAddr,
    /// Name the server's certificate must carry.
    pub server_name: String,
    /// PEM file of the certificate (or CA) to trust.
    pub ca: PathBuf,
    /// Token.
    pub token: String,
    /// Streams to keep open.
    pub streams: usize,
    /// Time a call waits for its response, in milliseconds.
    pub timeout_ms: u64,
}

impl ClientConfig {
    /// Settings for a server on this machine, reading its development certificate and
    /// generated admin token from its data folder.
    pub fn local(addr: SocketAddr, server_data_dir: &Path) -> Result<ClientConfig, ClientError> {
        let token_path = server_data_dir.join(ADMIN_TOKEN_FILE);
        let token = std::fs::read_to_string(&token_path)
            .map_err(|error| ClientError::Setup(format!("failed to read {}: {error}", token_path.display())))?;
        Ok(ClientConfig {
            addr,
            server_name: "localhost".to_owned(),
            ca: server_data_dir.join(DEV_CERT_FILE),
            token: token.trim().to_owned(),
            streams: STREAMS_DEFAULT,
            timeout_ms: TIMEOUT_MS_DEFAULT,
        })
    }
}

/// A call that failed before a response came back.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The settings could not be used.
    #[error("{0}")]
    Setup(String),
    /// The connection could not be made or was lost.
    #[error("connection to the server failed: {0}")]
    Connection(String),
    /// The server refused the hello.
    #[error("the server refused the connection: {code}: {message}")]
    Refused {
        /// Error code.
        code: u16,
        /// The server's reason.
        message: String,
    },
    /// No response within the timeout.
    #[error("no response within {timeout_ms} ms")]
    Timeout {
        /// The timeout.
        timeout_ms: u64,
    },
    /// The server's bytes could not be read.
    #[error("the server's response is malformed: {0}")]
    Malformed(String),
}

/// One stream: frames go out and their responses come back in order.
struct StreamPair {
    send: quinn::SendStream,
    recv: quinn::RecvStream,
}

/// A connection to a Promesa server.
pub struct Client {
    endpoint: quinn::Endpoint,
    connection: quinn::Connection,
    streams: Vec<Mutex<StreamPair>>,
    next_stream: AtomicUsize,
    next_id: AtomicU64,
    role: Role,
    timeout: Duration,
}

impl Client {
    /// Connects, says hello with the token, and opens the streams.
    pub async fn connect(config: &ClientConfig) -> Result<Client, ClientError> {
        let endpoint = clientendpoint(config)?;
        let connecting = endpoint
            .connect(config.addr, &config.server_name)
            .map_err(|error| ClientError::Connection(error.to_string()))?;
        let connection = tokio::time::timeout(Duration::from_millis(config.timeout_ms), connecting)
            .await
            .map_err(|_| ClientError::Timeout { timeout_ms: config.timeout_ms })?
            .map_err(|error| ClientError::Connection(error.to_string()))?;

        let (send, recv) = connection.open_bi().await.map_err(|error| ClientError::Connection(error.to_string()))?;
        let mut first = StreamPair { send, recv };
        let hello = Request::Hello { major: PROTOCOL_MAJOR, minor: PROTOCOL_MINOR, token: config.token.clone() };
        let timeout = Duration::from_millis(config.timeout_ms);
        let hello = vec![RequestEnvelope { id: 0, request: hello }];
        let responses = match exchange(&mut first, hello, timeout, config.timeout_ms).await {
            Ok(responses) => responses,
            // A server that closes the connection says why in its close reason.
            Err(ClientError::Connection(message)) => {
                return Err(ClientError::Connection(close_reason(&connection).unwrap_or(message)));
            }
            Err(error) => return Err(error),
        };
        let role = match responses.into_iter().next() {
            Some(Response::Welcome { role, .. }) => role,
            Some(Response::Error { code, message }) => return Err(ClientError::Refused { code, message }),
            other => return Err(ClientError::Malformed(format!("expected a welcome, got {other:?}"))),
        };

        let mut streams = vec![Mutex::new(first)];
        for _ in 1..config.streams.max(1) {
            let (send, recv) =
                connection.open_bi().await.map_err(|error| ClientError::Connection(error.to_string()))?;
            streams.push(Mutex::new(StreamPair { send, recv }));
        }
        Ok(Client {
            endpoint,
            connection,
            streams,
            next_stream: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            role,
            timeout,
        })
    }

    /// The role of the client's token.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Sends `requests` in one frame and returns their responses in request order.
    pub async fn call(&self, requests: Vec<Request>) -> Result<Vec<Response>, ClientError> {
        let first_id = self.next_id.fetch_add(requests.len() as u64, Ordering::Relaxed);
        let envelopes: Vec<RequestEnvelope> = requests
            .into_iter()
            .enumerate()
            .map(|(offset, request)| RequestEnvelope { id: first_id + offset as u64, request })
            .collect();
        let index = self.next_stream.fetch_add(1, Ordering::Relaxed) % self.streams.len();
        let mut stream = self.streams[index].lock().await;
        exchange(&mut stream, envelopes, self.timeout, self.timeout.as_millis() as u64).await
    }

    /// Sends one request and returns its response.
    pub async fn call_one(&self, request: Request) -> Result<Response, ClientError> {
        let mut responses = self.call(vec![request]).await?;
        responses.pop().ok_or_else(|| ClientError::Malformed("the response frame is empty".to_owned()))
    }

    /// Sends `bytes` as they are on a new stream, ends the stream, and returns what the
    /// server sent back before it ended the stream. For testing servers with bytes
    /// that are not a valid frame.
    pub async fn send_raw(&self, bytes: &[u8]) -> Result<Vec<u8>, ClientError> {
        let (mut send, mut recv) =
            self.connection.open_bi().await.map_err(|error| ClientError::Connection(error.to_string()))?;
        send.write_all(bytes).await.map_err(|error| ClientError::Connection(error.to_string()))?;
        let _ = send.finish();
        let read = recv.read_to_end(promesa_protocol::limits::FRAME_BYTES_MAX as usize);
        match tokio::time::timeout(self.timeout, read).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(error)) => Err(ClientError::Connection(error.to_string())),
            Err(_) => Err(ClientError::Timeout { timeout_ms: self.timeout.as_millis() as u64 }),
        }
    }

    /// Closes the connection.
    pub async fn close(self) {
        self.connection.close(0u32.into(), b"client done");
        self.endpoint.wait_idle().await;
    }
}

/// Writes one frame and reads the response frame, mapping responses to request order.
async fn exchange(
    stream: &mut StreamPair,
    envelopes: Vec<RequestEnvelope>,
    timeout: Duration,
    timeout_ms: u64,
) -> Result<Vec<Response>, ClientError> {
    let ids: Vec<u64> = envelopes.iter().map(|envelope| envelope.id).collect();
    let bytes = encode_client_frame(&ClientFrame { requests: envelopes });
    let round_trip = async {
        stream.send.write_all(&bytes).await.map_err(|error| ClientError::Connection(error.to_string()))?;
        let mut prefix = [0u8; LENGTH_PREFIX_BYTES];
        stream.recv.read_exact(&mut prefix).await.map_err(|error| ClientError::Connection(error.to_string()))?;
        let len = payload_len(prefix).map_err(|error| ClientError::Malformed(error.to_string()))?;
        let mut payload = vec![0u8; len];
        stream.recv.read_exact(&mut payload).await.map_err(|error| ClientError::Connection(error.to_string()))?;
        Ok::<_, ClientError>(payload)
    };
    let payload =
        tokio::time::timeout(timeout, round_trip).await.map_err(|_| ClientError::Timeout { timeout_ms })??;
    let payload = promesa_protocol::frame::payload_from(&payload);
    let frame = access_server_frame(&payload).map_err(|error| ClientError::Malformed(error.to_string()))?;

    // A frame-level error (id 0 for a frame the server could not read) answers all.
    if frame.responses.len() == 1
        && let ArchivedResponse::Error { code, message } = &frame.responses[0].response
        && !ids.contains(&frame.responses[0].id.to_native())
    {
        return Err(ClientError::Refused { code: code.to_native(), message: message.to_string() });
    }
    let mut responses: Vec<Option<Response>> = vec![None; ids.len()];
    for envelope in frame.responses.iter() {
        let id = envelope.id.to_native();
        let Some(index) = ids.iter().position(|&wanted| wanted == id) else {
            return Err(ClientError::Malformed(format!("a response carries id {id}, which no request had")));
        };
        let response = rkyv::deserialize::<Response, rkyv::rancor::Error>(&envelope.response)
            .map_err(|error| ClientError::Malformed(error.to_string()))?;
        responses[index] = Some(response);
    }
    responses
        .into_iter()
        .zip(&ids)
        .map(|(response, id)| response.ok_or_else(|| ClientError::Malformed(format!("no response for request {id}"))))
        .collect()
}

fn clientendpoint(config: &ClientConfig) -> Result<quinn::Endpoint, ClientError> {
    let certs = CertificateDer::pem_file_iter(&config.ca)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|error| ClientError::Setup(format!("failed to read the CA file {}: {error}", config.ca.display())))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|error| ClientError::Setup(format!("the CA file holds an unusable certificate: {error}")))?;
    }
    // The same provider as the server (see its TLS settings).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|error| ClientError::Setup(format!("TLS 1.3 is not available: {error}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|error| ClientError::Setup(format!("the TLS settings do not suit QUIC: {error}")))?;
    // A server on loopback is reached from loopback, so the client opens no socket
    // on other interfaces.
    let bind: SocketAddr = match (config.addr.is_ipv6(), config.addr.ip().is_loopback()) {
        (false, true) => "127.0.0.1:0",
        (true, true) => "[::1]:0",
        (false, false) => "0.0.0.0:0",
        (true, false) => "[::]:0",
    }
    .parse()
    .expect("a valid address");
    let mut endpoint = quinn::Endpoint::client(bind).map_err(|error| ClientError::Setup(error.to_string()))?;
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
    Ok(endpoint)
}

/// Returns the reason the server gave for closing the connection, if it closed it.
fn close_reason(connection: &quinn::Connection) -> Option<String> {
    match connection.close_reason()? {
        quinn::ConnectionError::ApplicationClosed(close) => {
            Some(format!("the server closed the connection: {}", String::from_utf8_lossy(&close.reason)))
        }
        other => Some(other.to_string()),
    }
}

/// Returns the error code of an error response, if it is one.
pub fn error_code(response: &Response) -> Option<ErrorCode> {
    match response {
        Response::Error { code, .. } => ErrorCode::from_number(*code),
        _ => None,
    }
}
