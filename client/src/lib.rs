//! Promesa's async client: connects over QUIC with TLS 1.3, sends a hello with a token,
//! and sends frames of requests over a few long-lived streams.
//!
//! [`Client::call`] sends one frame and returns its responses in request order;
//! requests from concurrent callers go out on different streams. The routing and
//! inbound supply operations also have methods of their own that return typed results,
//! such as [`Client::quote`], [`Client::reserve_routed`], [`Client::add_supply`] and
//! [`Client::availability_by`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use promesa_protocol::frame::{LENGTH_PREFIX_BYTES, access_server_frame, encode_client_frame, payload_len};
use promesa_protocol::{
    ALPN, ArchivedResponse, ClientFrame, ErrorCode, LineOutcome, LocationWithRouting, PROTOCOL_MAJOR, PROTOCOL_MINOR,
    Payload, Plan, PostalCodeRow, Request, RequestEnvelope, ReserveLine, Response, Role, RouteOrder,
    RoutedReserveOutcome, SupplyOutcome, TimedAvailability,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use thiserror::Error;
use tokio::sync::{Mutex, oneshot};

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
    /// The server returned an error response, so the request changed nothing.
    #[error("the server rejected the request: {}: {message}", error_code_name(*.code))]
    Rejected {
        /// Error code.
        code: u16,
        /// The server's reason, naming the field, the value and the limit.
        message: String,
    },
}

/// Returns the name of an error code number, or the number for a code this client
/// does not know.
fn error_code_name(code: u16) -> String {
    ErrorCode::from_number(code).map_or_else(|| format!("error {code}"), |known| known.name().to_owned())
}

/// Outcome of a reserve: the fields of `Response::Reserved`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReserveOutcome {
    /// Whether this repeats an earlier reserve with the same id, which returns the
    /// first outcome.
    pub replayed: bool,
    /// Deadline of the hold, milliseconds since the Unix epoch.
    pub deadline_ms: u64,
    /// One outcome per line, in request order.
    pub lines: Vec<LineOutcome>,
}

/// One stream before the hello: a frame goes out and its response comes back.
struct StreamPair {
    send: quinn::SendStream,
    recv: quinn::RecvStream,
}

/// Frames sent on a stream and without a response yet, by the id of their first request,
/// with their request count and where their response goes.
#[derive(Default)]
struct Waiting {
    frames: BTreeMap<u64, (u64, oneshot::Sender<Result<Payload, ClientError>>)>,
    /// The reason the stream ended, once it did.
    ended: Option<ClientError>,
}

/// A stream with many frames in flight: writes are serialized, and a reader task
/// hands each response frame to the call that sent its requests.
struct PipelinedStream {
    send: Mutex<quinn::SendStream>,
    waiting: Arc<std::sync::Mutex<Waiting>>,
}

impl PipelinedStream {
    fn start(pair: StreamPair) -> Self {
        let waiting = Arc::new(std::sync::Mutex::new(Waiting::default()));
        tokio::spawn(read_responses(pair.recv, Arc::clone(&waiting)));
        PipelinedStream { send: Mutex::new(pair.send), waiting }
    }
}

/// Reads response frames and hands each to its caller, until the stream ends.
async fn read_responses(mut recv: quinn::RecvStream, waiting: Arc<std::sync::Mutex<Waiting>>) {
    let mut frame_error = None;
    let ended = loop {
        let payload = match read_payload(&mut recv).await {
            Ok(payload) => payload,
            Err(error) => break frame_error.take().unwrap_or(error),
        };
        let first_id = match access_server_frame(&payload) {
            Ok(frame) => match frame.responses.first() {
                Some(envelope) => {
                    // An error for a frame the server could not read carries id 0.
                    if let ArchivedResponse::Error { code, message } = &envelope.response
                        && envelope.id.to_native() == 0
                    {
                        frame_error =
                            Some(ClientError::Refused { code: code.to_native(), message: message.to_string() });
                    }
                    envelope.id.to_native()
                }
                None => continue,
            },
            Err(error) => break ClientError::Malformed(error.to_string()),
        };
        let mut waiting = waiting.lock().expect("waiting frames lock");
        let found = waiting.frames.range(..=first_id).next_back().map(|(&start, &(count, _))| (start, count));
        if let Some((start, count)) = found
            && first_id < start + count
        {
            let (_, reply) = waiting.frames.remove(&start).expect("found above");
            let _ = reply.send(Ok(payload));
        }
    };
    let mut waiting = waiting.lock().expect("waiting frames lock");
    for (_, (_, reply)) in std::mem::take(&mut waiting.frames) {
        let _ = reply.send(Err(copy_error(&ended)));
    }
    waiting.ended = Some(ended);
}

/// Reads one length-prefixed payload.
async fn read_payload(recv: &mut quinn::RecvStream) -> Result<Payload, ClientError> {
    let mut prefix = [0u8; LENGTH_PREFIX_BYTES];
    recv.read_exact(&mut prefix).await.map_err(|error| ClientError::Connection(error.to_string()))?;
    let len = payload_len(prefix).map_err(|error| ClientError::Malformed(error.to_string()))?;
    let mut payload = vec![0u8; len];
    recv.read_exact(&mut payload).await.map_err(|error| ClientError::Connection(error.to_string()))?;
    Ok(promesa_protocol::frame::payload_from(&payload))
}

/// Copies an error for each caller waiting on a stream that ended.
fn copy_error(error: &ClientError) -> ClientError {
    match error {
        ClientError::Refused { code, message } => ClientError::Refused { code: *code, message: message.clone() },
        ClientError::Timeout { timeout_ms } => ClientError::Timeout { timeout_ms: *timeout_ms },
        other => ClientError::Connection(other.to_string()),
    }
}

/// One live connection: its streams and the role its hello got.
struct Connected {
    endpoint: quinn::Endpoint,
    connection: quinn::Connection,
    streams: Vec<PipelinedStream>,
    role: Role,
}

/// A connection to a Promesa server that reconnects when the connection is lost.
///
/// A call that fails because the connection was lost or the server did not respond in
/// time is sent again, up to `RETRIES_MAX` times, on a new connection, with the same request ids and the same
/// content. That is safe because every mutating request carries an idempotency key or
/// is an absolute set that may repeat. The keys are the reservation id of a reserve or a
/// routed reserve, the operation ids on a reservation, an adjustment's operation id and
/// a receipt id of added supply. The absolute sets are the upserts, set on hand and
/// safety stock, and a receipt's move. So the server applies each request once and
/// returns the first outcome to a repeat. The exception is a receipt's cancel (see
/// [`Client::cancel_supply`]).
pub struct Client {
    config: ClientConfig,
    connected: tokio::sync::RwLock<Arc<Connected>>,
    /// The token's role, from the first hello.
    role: Role,
    next_stream: AtomicUsize,
    next_id: AtomicU64,
    timeout: Duration,
}

/// Times a call is sent again after its connection was lost.
pub const RETRIES_MAX: u32 = 3;

/// Wait before the first reconnection, in milliseconds; doubled for each next one.
const RECONNECT_BACKOFF_MS: u64 = 50;

impl Client {
    /// Connects, sends a hello with the token, and opens the streams.
    pub async fn connect(config: &ClientConfig) -> Result<Client, ClientError> {
        let connected = open(config).await?;
        Ok(Client {
            role: connected.role,
            config: config.clone(),
            connected: tokio::sync::RwLock::new(Arc::new(connected)),
            next_stream: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            timeout: Duration::from_millis(config.timeout_ms),
        })
    }

    /// Returns the role of the client's token.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Sends `requests` in one frame and returns their responses in request order.
    /// Many calls may be in flight at once, on the same stream or on different ones.
    pub async fn call(&self, requests: Vec<Request>) -> Result<Vec<Response>, ClientError> {
        let count = requests.len() as u64;
        let first_id = self.next_id.fetch_add(count.max(1), Ordering::Relaxed);
        let envelopes: Vec<RequestEnvelope> = requests
            .into_iter()
            .enumerate()
            .map(|(offset, request)| RequestEnvelope { id: first_id + offset as u64, request })
            .collect();
        let ids: Vec<u64> = envelopes.iter().map(|envelope| envelope.id).collect();
        let bytes = encode_client_frame(&ClientFrame { requests: envelopes });

        let mut attempt = 0;
        loop {
            let connected = Arc::clone(&*self.connected.read().await);
            match self.send_frame(&connected, &bytes, first_id, count.max(1)).await {
                Ok(payload) => return responses_in_order(&payload, &ids),
                // A lost connection, or a server that stopped responding (one killed and
                // restarted leaves this connection silent until it times out).
                Err(ClientError::Connection(_) | ClientError::Timeout { .. }) if attempt < RETRIES_MAX => {
                    tokio::time::sleep(Duration::from_millis(RECONNECT_BACKOFF_MS << attempt)).await;
                    attempt += 1;
                    self.reconnect(&connected).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Replaces a lost connection, unless another call already did.
    async fn reconnect(&self, lost: &Arc<Connected>) {
        let mut connected = self.connected.write().await;
        if !Arc::ptr_eq(&connected, lost) {
            return;
        }
        match open(&self.config).await {
            Ok(fresh) => {
                tracing::debug!(addr = %self.config.addr, "reconnected");
                *connected = Arc::new(fresh);
            }
            // The next attempt finds the same connection lost and tries again.
            Err(error) => tracing::debug!(%error, "reconnection failed"),
        }
    }

    /// Sends one encoded frame on the next stream and waits for its response frame.
    async fn send_frame(
        &self,
        connected: &Connected,
        bytes: &[u8],
        first_id: u64,
        count: u64,
    ) -> Result<Payload, ClientError> {
        let stream = &connected.streams[self.next_stream.fetch_add(1, Ordering::Relaxed) % connected.streams.len()];
        let (reply, replied) = oneshot::channel();
        {
            let mut waiting = stream.waiting.lock().expect("waiting frames lock");
            if let Some(ended) = &waiting.ended {
                return Err(copy_error(ended));
            }
            waiting.frames.insert(first_id, (count, reply));
        }
        let forget = || stream.waiting.lock().expect("waiting frames lock").frames.remove(&first_id);
        let written = stream.send.lock().await.write_all(bytes).await;
        if let Err(error) = written {
            forget();
            return Err(ClientError::Connection(error.to_string()));
        }
        match tokio::time::timeout(self.timeout, replied).await {
            Ok(Ok(payload)) => payload,
            Ok(Err(_)) => Err(ClientError::Connection("the stream's reader stopped".to_owned())),
            Err(_) => {
                forget();
                Err(ClientError::Timeout { timeout_ms: self.timeout.as_millis() as u64 })
            }
        }
    }

    /// Sends one request and returns its response.
    pub async fn call_one(&self, request: Request) -> Result<Response, ClientError> {
        let mut responses = self.call(vec![request]).await?;
        responses.pop().ok_or_else(|| ClientError::Malformed("the response frame is empty".to_owned()))
    }

    /// Plans where an order would ship from, changing nothing.
    pub async fn quote(&self, order: RouteOrder) -> Result<Plan, ClientError> {
        match self.call_one(Request::Quote { order }).await? {
            Response::Quoted(plan) => Ok(*plan),
            other => Err(unexpected("Quoted", other)),
        }
    }

    /// Plans an order and holds the plan's units in one atomic step. The reservation
    /// id is the idempotency key, as for a reserve: a call sent again after a lost
    /// connection gets the first outcome back with `replayed` set, so the order is
    /// held at most once. A plan that does not fill the order is returned with
    /// `held` false unless the order allows partial fills.
    pub async fn reserve_routed(
        &self,
        reservation_id: &str,
        ttl_ms: u64,
        order: RouteOrder,
    ) -> Result<RoutedReserveOutcome, ClientError> {
        let request = Request::ReserveRouted { reservation_id: reservation_id.to_owned(), ttl_ms, order };
        match self.call_one(request).await? {
            Response::ReservedRouted(outcome) => Ok(*outcome),
            other => Err(unexpected("ReservedRouted", other)),
        }
    }

    /// Holds units until a deadline under a reserve policy: `POLICY_ALL_OR_NOTHING`,
    /// `POLICY_PARTIAL` or `POLICY_BACKORDER`. With backorder, a line that ATP now
    /// cannot fill is promised against the location's free inbound supply and reported
    /// with line status 7 (backordered). The reservation id is the idempotency key.
    pub async fn reserve_with_policy(
        &self,
        reservation_id: &str,
        channel: Option<&str>,
        lines: Vec<ReserveLine>,
        policy: u8,
        ttl_ms: u64,
    ) -> Result<ReserveOutcome, ClientError> {
        let request = Request::ReserveWithPolicy {
            reservation_id: reservation_id.to_owned(),
            channel: channel.map(str::to_owned),
            lines,
            policy,
            ttl_ms,
        };
        match self.call_one(request).await? {
            Response::Reserved { replayed, deadline_ms, lines } => Ok(ReserveOutcome { replayed, deadline_ms, lines }),
            other => Err(unexpected("Reserved", other)),
        }
    }

    /// Adds an expected receipt of `quantity` units of a SKU at a location, arriving at
    /// `arrival_ms` (milliseconds since the Unix epoch), and returns the position's
    /// inbound supply. The receipt id is the idempotency key: a repeat with the same
    /// content returns with `replayed` set, and the same id with other content is
    /// rejected with `id_reused`.
    pub async fn add_supply(
        &self,
        receipt_id: &str,
        sku: &str,
        location: &str,
        quantity: u64,
        arrival_ms: u64,
    ) -> Result<SupplyOutcome, ClientError> {
        let request = Request::AddSupply {
            receipt_id: receipt_id.to_owned(),
            sku: sku.to_owned(),
            location: location.to_owned(),
            quantity,
            arrival_ms,
        };
        supply_outcome(self.call_one(request).await?)
    }

    /// Moves a receipt's expected arrival to `arrival_ms`, and returns its position's
    /// inbound supply.
    pub async fn move_supply(&self, receipt_id: &str, arrival_ms: u64) -> Result<SupplyOutcome, ClientError> {
        let request = Request::MoveSupply { receipt_id: receipt_id.to_owned(), arrival_ms };
        supply_outcome(self.call_one(request).await?)
    }

    /// Cancels a receipt, and returns its position's inbound supply. Rejected with
    /// `conflict` while backorders need the receipt's units.
    ///
    /// NOTE: a cancel has no idempotency key. If the connection is lost after the
    /// server applied it, the retry is rejected with `not_found` for the receipt.
    pub async fn cancel_supply(&self, receipt_id: &str) -> Result<SupplyOutcome, ClientError> {
        let request = Request::CancelSupply { receipt_id: receipt_id.to_owned() };
        supply_outcome(self.call_one(request).await?)
    }

    /// Returns the units of a SKU at a location that can be promised by `by_ms` for a
    /// channel (`None` for `default`), counting the receipts that arrive by then.
    pub async fn availability_by(
        &self,
        sku: &str,
        location: &str,
        channel: Option<&str>,
        by_ms: u64,
    ) -> Result<TimedAvailability, ClientError> {
        let request = Request::AvailabilityBy {
            sku: sku.to_owned(),
            location: location.to_owned(),
            channel: channel.map(str::to_owned),
            by_ms,
        };
        match self.call_one(request).await? {
            Response::AvailabilityBy(read) => Ok(read),
            other => Err(unexpected("AvailabilityBy", other)),
        }
    }

    /// Returns the earliest time, in milliseconds since the Unix epoch, at which
    /// `quantity` units of a SKU at a location can be promised for a channel (`None`
    /// for `default`). That is the server's time now if they can be promised now, else
    /// the arrival of the receipt that makes them available. Returns `None` if the
    /// open receipts never do.
    pub async fn earliest_available(
        &self,
        sku: &str,
        location: &str,
        channel: Option<&str>,
        quantity: u64,
    ) -> Result<Option<u64>, ClientError> {
        let request = Request::EarliestAvailable {
            sku: sku.to_owned(),
            location: location.to_owned(),
            channel: channel.map(str::to_owned),
            quantity,
        };
        match self.call_one(request).await? {
            Response::EarliestAvailable { at_ms } => Ok(at_ms),
            other => Err(unexpected("EarliestAvailable", other)),
        }
    }

    /// Inserts or replaces rows of the postal-code table, all of them or none (at most
    /// `POSTAL_ROWS_PER_REQUEST_MAX`), and returns the number of rows in the table.
    pub async fn upsert_postal_codes(&self, rows: Vec<PostalCodeRow>) -> Result<u64, ClientError> {
        match self.call_one(Request::UpsertPostalCodes { rows }).await? {
            Response::PostalCodesUpserted { rows_in_table } => Ok(rows_in_table),
            other => Err(unexpected("PostalCodesUpserted", other)),
        }
    }

    /// Inserts or replaces a channel, with the location codes it may route orders to
    /// (`None` for every location). Returns true if the channel is new.
    pub async fn upsert_channel(
        &self,
        code: &str,
        may_sell_safety_stock: bool,
        locations: Option<Vec<String>>,
    ) -> Result<bool, ClientError> {
        let request = Request::UpsertChannel { code: code.to_owned(), may_sell_safety_stock, locations };
        match self.call_one(request).await? {
            Response::Upserted { created, .. } => Ok(created > 0),
            other => Err(unexpected("Upserted", other)),
        }
    }

    /// Inserts or replaces locations with their routing parameters (at most
    /// `ROWS_PER_REQUEST_MAX`). The server checks every row before any applies.
    /// Returns the number of locations created and replaced.
    pub async fn upsert_locations_with_routing(
        &self,
        locations: Vec<LocationWithRouting>,
    ) -> Result<(u32, u32), ClientError> {
        match self.call_one(Request::UpsertLocationsWithRouting { locations }).await? {
            Response::Upserted { created, replaced } => Ok((created, replaced)),
            other => Err(unexpected("Upserted", other)),
        }
    }

    /// Sends `bytes` as they are on a new stream, ends the stream, and returns what the
    /// server sent back before it ended the stream. For testing servers with bytes
    /// that are not a valid frame.
    pub async fn send_raw(&self, bytes: &[u8]) -> Result<Vec<u8>, ClientError> {
        let connected = Arc::clone(&*self.connected.read().await);
        let (mut send, mut recv) =
            connected.connection.open_bi().await.map_err(|error| ClientError::Connection(error.to_string()))?;
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
        let connected = self.connected.into_inner();
        connected.connection.close(0u32.into(), b"client done");
        connected.endpoint.wait_idle().await;
    }
}

/// Connects, sends a hello with the token, and opens the streams.
async fn open(config: &ClientConfig) -> Result<Connected, ClientError> {
    let endpoint = client_endpoint(config)?;
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
            return Err(closed_by_server(&connection).unwrap_or(ClientError::Connection(message)));
        }
        Err(error) => return Err(error),
    };
    let role = match responses.into_iter().next() {
        Some(Response::Welcome { role, .. }) => role,
        Some(Response::Error { code, message }) => return Err(ClientError::Refused { code, message }),
        other => return Err(ClientError::Malformed(format!("expected a welcome, got {other:?}"))),
    };

    let mut streams = vec![PipelinedStream::start(first)];
    for _ in 1..config.streams.max(1) {
        let (send, recv) = connection.open_bi().await.map_err(|error| ClientError::Connection(error.to_string()))?;
        streams.push(PipelinedStream::start(StreamPair { send, recv }));
    }
    Ok(Connected { endpoint, connection, streams, role })
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
    responses_in_order(&promesa_protocol::frame::payload_from(&payload), &ids)
}

/// Decodes a response frame and orders its responses as the requests `ids`.
fn responses_in_order(payload: &Payload, ids: &[u64]) -> Result<Vec<Response>, ClientError> {
    let frame = access_server_frame(payload).map_err(|error| ClientError::Malformed(error.to_string()))?;

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
        .zip(ids)
        .map(|(response, id)| response.ok_or_else(|| ClientError::Malformed(format!("no response for request {id}"))))
        .collect()
}

fn client_endpoint(config: &ClientConfig) -> Result<quinn::Endpoint, ClientError> {
    let certs = CertificateDer::pem_file_iter(&config.ca)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|error| ClientError::Setup(format!("failed to read the CA file {}: {error}", config.ca.display())))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|error| ClientError::Setup(format!("the CA file contains an invalid certificate: {error}")))?;
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

/// QUIC close codes of the server (see its `close_code`), and what each means here.
fn close_code_meaning(code: u64) -> ErrorCode {
    match code {
        1 => ErrorCode::ShuttingDown,
        2 => ErrorCode::Unauthenticated,
        3 => ErrorCode::LimitExceeded,
        _ => ErrorCode::Internal,
    }
}

/// Returns the refusal the server gave when it closed the connection, if it did.
fn closed_by_server(connection: &quinn::Connection) -> Option<ClientError> {
    match connection.close_reason()? {
        quinn::ConnectionError::ApplicationClosed(close) => Some(ClientError::Refused {
            code: close_code_meaning(close.error_code.into_inner()).number(),
            message: format!("the server closed the connection: {}", String::from_utf8_lossy(&close.reason)),
        }),
        _ => None,
    }
}

/// Returns the error of a response that is not the `expected` one: the server's error,
/// or a malformed response.
fn unexpected(expected: &str, response: Response) -> ClientError {
    match response {
        Response::Error { code, message } => ClientError::Rejected { code, message },
        other => {
            let mut got = format!("{other:?}");
            got.truncate(200);
            ClientError::Malformed(format!("expected a {expected} response, got {got}"))
        }
    }
}

fn supply_outcome(response: Response) -> Result<SupplyOutcome, ClientError> {
    match response {
        Response::SupplyChanged(outcome) => Ok(outcome),
        other => Err(unexpected("SupplyChanged", other)),
    }
}

/// Returns the error code of an error response, if it is one.
pub fn error_code(response: &Response) -> Option<ErrorCode> {
    match response {
        Response::Error { code, .. } => ErrorCode::from_number(*code),
        _ => None,
    }
}
