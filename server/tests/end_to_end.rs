//! A real server on loopback, driven by the real client: every request kind, roles,
//! limits, malformed bytes, and a restart that keeps the state.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use promesa_client::{Client, ClientConfig, ClientError, error_code};
use promesa_protocol::frame::{
    LENGTH_PREFIX_BYTES, access_client_frame, access_server_frame, encode_client_frame, payload_from, payload_len,
};
use promesa_protocol::{
    ArchivedResponse, ClientFrame, ErrorCode, FrameError, FrameReader, LineQuantity, LocationRow, Payload, Request,
    RequestEnvelope, ReserveLine, Response, StockRow, Units,
};
use promesa_server::{Server, ServerConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;

struct Running {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), String>>,
}

async fn start(data_dir: &Path, tokens: Option<&Path>) -> Running {
    let mut config = ServerConfig::new(data_dir.to_owned());
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.tokens = tokens.map(Path::to_owned);
    let server = Server::start(config).expect("the server starts");
    let addr = server.local_addr();
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(server.run(stopped));
    Running { addr, stop, task }
}

impl Running {
    async fn shut_down(self) {
        self.stop.send(true).unwrap();
        self.task.await.unwrap().expect("a clean shutdown");
    }
}

async fn admin(running: &Running, data_dir: &Path) -> Client {
    Client::connect(&ClientConfig::local(running.addr, data_dir).unwrap()).await.expect("the admin connects")
}

fn reserve(id: &str, quantity: u64) -> Request {
    Request::Reserve {
        reservation_id: id.to_owned(),
        channel: None,
        lines: vec![ReserveLine { sku: "SKU-1".into(), location: "MX-01".into(), quantity }],
        partial: false,
        ttl_ms: 900_000,
    }
}

fn availability() -> Request {
    Request::Availability { sku: "SKU-1".into(), location: "MX-01".into(), channel: None }
}

async fn seed(client: &Client) {
    let location = LocationRow {
        code: "MX-01".into(),
        kind: 0,
        lat: 19.43,
        lon: -99.13,
        methods: 1,
        daily_capacity: 0,
        active: true,
    };
    let responses = client
        .call(vec![
            Request::UpsertLocations { locations: vec![location] },
            Request::SetOnHand { sku: "SKU-1".into(), location: "MX-01".into(), on_hand: 10 },
        ])
        .await
        .unwrap();
    assert_eq!(responses[0], Response::Upserted { created: 1, replaced: 0 });
    assert!(matches!(responses[1], Response::StockChanged { current: 10, .. }), "{:?}", responses[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path(), None).await;
    let client = admin(&running, dir.path()).await;
    seed(&client).await;

    let responses = client
        .call(vec![
            reserve("order-1", 3),
            Request::Confirm { reservation_id: "order-1".into(), op_id: "c1".into(), units: Units::All },
            availability(),
        ])
        .await
        .unwrap();
    assert!(matches!(&responses[0], Response::Reserved { replayed: false, .. }), "{:?}", responses[0]);
    assert!(matches!(&responses[1], Response::Operated { state: 1, .. }), "{:?}", responses[1]);
    let Response::Availability(read) = &responses[2] else { panic!("{:?}", responses[2]) };
    assert_eq!((read.allocated, read.atp), (3, 7));

    // A retry returns the first outcome.
    let retry = client.call_one(reserve("order-1", 3)).await.unwrap();
    assert!(matches!(retry, Response::Reserved { replayed: true, .. }), "{retry:?}");
    let reused = client.call_one(reserve("order-1", 4)).await.unwrap();
    assert_eq!(error_code(&reused), Some(ErrorCode::IdReused), "{reused:?}");

    client.close().await;
    running.shut_down().await;

    let running = start(dir.path(), None).await;
    let client = admin(&running, dir.path()).await;
    let Response::Availability(read) = client.call_one(availability()).await.unwrap() else { panic!() };
    assert_eq!((read.on_hand, read.allocated, read.atp), (10, 3, 7));
    let Response::Reservation(Some(view)) =
        client.call_one(Request::Get { reservation_id: "order-1".into() }).await.unwrap()
    else {
        panic!("order-1 was lost in the restart");
    };
    assert_eq!(view.lines[0].allocated, 3);
    client.close().await;
    running.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_tokens_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "admin-token admin\nreader-token read\n").unwrap();
    std::fs::set_permissions(&tokens, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let data = dir.path().join("data");
    let running = start(&data, Some(&tokens)).await;
    let config = |token: &str| ClientConfig {
        token: token.to_owned(),
        ..ClientConfig {
            addr: running.addr,
            server_name: "localhost".into(),
            ca: data.join("dev-cert.pem"),
            token: String::new(),
            streams: 2,
            timeout_ms: 10_000,
        }
    };

    let refused = Client::connect(&config("wrong")).await.err().expect("an unknown token is refused");
    assert!(
        matches!(&refused, ClientError::Refused { code, .. } if *code == ErrorCode::Unauthenticated.number()),
        "{refused}"
    );

    let admin = Client::connect(&config("admin-token")).await.unwrap();
    seed(&admin).await;
    let reader = Client::connect(&config("reader-token")).await.unwrap();
    let forbidden = reader.call_one(reserve("order-9", 1)).await.unwrap();
    assert_eq!(error_code(&forbidden), Some(ErrorCode::Forbidden), "{forbidden:?}");
    assert!(matches!(reader.call_one(availability()).await.unwrap(), Response::Availability(_)));

    let too_many_lines = Request::Reserve {
        reservation_id: "big".into(),
        channel: None,
        lines: (0..1_001).map(|_| ReserveLine { sku: "SKU-1".into(), location: "MX-01".into(), quantity: 1 }).collect(),
        partial: false,
        ttl_ms: 60_000,
    };
    let Response::Error { code, message } = admin.call_one(too_many_lines).await.unwrap() else { panic!() };
    assert_eq!(ErrorCode::from_number(code), Some(ErrorCode::LimitExceeded));
    assert!(message.contains("lines_per_reservation_max = 1000"), "{message}");

    // A staged import with a bad row applies nothing and names the line.
    let rows = vec![
        StockRow { sku: "SKU-2".into(), location: "MX-01".into(), on_hand: 5, safety_stock: None },
        StockRow { sku: "SKU-3".into(), location: "NOWHERE".into(), on_hand: 5, safety_stock: None },
    ];
    admin.call_one(Request::ImportRows { import_id: "i1".into(), first_line: 2, rows }).await.unwrap();
    let Response::Error { code, message } =
        admin.call_one(Request::ImportCommit { import_id: "i1".into() }).await.unwrap()
    else {
        panic!("a bad import was applied");
    };
    assert_eq!(ErrorCode::from_number(code), Some(ErrorCode::InvalidArgument));
    assert!(message.contains("line 3"), "{message}");
    let unknown = admin
        .call_one(Request::Availability { sku: "SKU-2".into(), location: "MX-01".into(), channel: None })
        .await
        .unwrap();
    assert_eq!(error_code(&unknown), Some(ErrorCode::NotFound), "{unknown:?}");

    // An aborted import drops its rows and cannot be committed.
    let rows = vec![StockRow { sku: "SKU-4".into(), location: "MX-01".into(), on_hand: 5, safety_stock: None }];
    admin.call_one(Request::ImportRows { import_id: "i2".into(), first_line: 2, rows }).await.unwrap();
    let aborted = admin.call_one(Request::ImportAbort { import_id: "i2".into() }).await.unwrap();
    assert_eq!(aborted, Response::ImportAborted { rows_dropped: 1 });
    let commit = admin.call_one(Request::ImportCommit { import_id: "i2".into() }).await.unwrap();
    assert_eq!(error_code(&commit), Some(ErrorCode::NotFound), "{commit:?}");

    reader.close().await;
    admin.close().await;
    running.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bytes_close_one_stream_only() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path(), None).await;
    let client = admin(&running, dir.path()).await;
    seed(&client).await;

    // A second connection that sends a hello, then garbage on a new stream.
    let rogue = admin(&running, dir.path()).await;
    for garbage in [vec![0xFFu8; 4], vec![8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8], vec![0, 0, 0, 0]] {
        let result = rogue.send_raw(&garbage).await;
        assert!(result.is_err() || result.is_ok_and(|bytes| !bytes.is_empty()));
    }

    // The first connection is unaffected.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(matches!(client.call_one(availability()).await.unwrap(), Response::Availability(_)));
    rogue.close().await;
    client.close().await;
    running.shut_down().await;
}

/// Iterations of `malformed_frames_never_crash_the_server`.
const BAD_FRAME_ITERATIONS: usize = 2_000;
/// Iterations between two checks of the well-behaved connection.
const CHECK_EVERY_ITERATIONS: usize = 100;
/// Time the malformed-frame test waits for each reply, in milliseconds. A reply that
/// does not come in time fails the test as a hang.
const REPLY_TIMEOUT_MS: u64 = 5_000;
/// SKU and location that only the malformed-frame test's valid frames name, so that no
/// damaged copy of them can change the position the well-behaved connection reads.
const FUZZ_SKU: &str = "FZ-100";
const FUZZ_LOCATION: &str = "MX-GDL-02";
const FUZZ_RESERVATION: &str = "fz-order-1";

/// Reads a seed from `PROMESA_TEST_SEED` (a decimal number), or takes `default`, and
/// prints it so a failing run can be replayed.
///
/// # Panics
/// If `PROMESA_TEST_SEED` is set but is not a decimal number.
fn test_seed(test: &str, default: u64) -> u64 {
    let seed = match std::env::var("PROMESA_TEST_SEED") {
        Ok(value) => value.parse().unwrap_or_else(|_| panic!("PROMESA_TEST_SEED={value:?} is not a decimal number")),
        Err(_) => default,
    };
    eprintln!("{test}: seed {seed} (replay with PROMESA_TEST_SEED={seed})");
    seed
}

/// Creates the fuzz position and an open reservation on it, which the valid frames of
/// the malformed-frame test name.
async fn seed_fuzz_targets(client: &Client) {
    let location = LocationRow {
        code: FUZZ_LOCATION.into(),
        kind: 1,
        lat: 20.6597,
        lon: -103.3496,
        methods: 3,
        daily_capacity: 0,
        active: true,
    };
    let responses = client
        .call(vec![
            Request::UpsertLocations { locations: vec![location] },
            Request::SetOnHand { sku: FUZZ_SKU.into(), location: FUZZ_LOCATION.into(), on_hand: 1_000_000 },
            Request::Reserve {
                reservation_id: FUZZ_RESERVATION.into(),
                channel: None,
                lines: vec![ReserveLine { sku: FUZZ_SKU.into(), location: FUZZ_LOCATION.into(), quantity: 5 }],
                partial: false,
                ttl_ms: 900_000,
            },
        ])
        .await
        .unwrap();
    for response in &responses {
        assert!(!matches!(response, Response::Error { .. }), "setting up the fuzz targets failed: {response:?}");
    }
}

/// Valid frames of every request kind, encoded with their length prefix, for the
/// malformed-frame test to cut short and damage.
fn valid_frames() -> Vec<Vec<u8>> {
    let (sku, location, reservation) = (FUZZ_SKU.to_owned(), FUZZ_LOCATION.to_owned(), FUZZ_RESERVATION.to_owned());
    let some_lines = Units::Lines(vec![LineQuantity { line: 0, quantity: 1 }]);
    let frames = vec![
        vec![Request::Ping, Request::Availability { sku: sku.clone(), location: location.clone(), channel: None }],
        vec![Request::UpsertLocations {
            locations: vec![LocationRow {
                code: location.clone(),
                kind: 1,
                lat: 20.6597,
                lon: -103.3496,
                methods: 3,
                daily_capacity: 250,
                active: true,
            }],
        }],
        vec![Request::UpsertChannel { code: "fz-web".into(), may_sell_safety_stock: true }],
        vec![Request::SetOnHand { sku: sku.clone(), location: location.clone(), on_hand: 1_000_000 }],
        vec![Request::AdjustOnHand {
            sku: sku.clone(),
            location: location.clone(),
            delta: -3,
            reason: 1,
            op_id: "fz-adjust-1".into(),
        }],
        vec![Request::SetSafetyStock { sku: sku.clone(), location: location.clone(), units: 4 }],
        vec![
            Request::ImportRows {
                import_id: "fz-import".into(),
                first_line: 2,
                rows: vec![StockRow {
                    sku: sku.clone(),
                    location: location.clone(),
                    on_hand: 900,
                    safety_stock: Some(2),
                }],
            },
            Request::ImportCommit { import_id: "fz-import".into() },
        ],
        vec![Request::AvailabilityMany {
            skus: vec![sku.clone(), "FZ-200".into()],
            locations: vec![location.clone()],
            channel: Some("fz-web".into()),
            per_location: true,
        }],
        vec![Request::Reserve {
            reservation_id: "fz-order-2".into(),
            channel: None,
            lines: vec![
                ReserveLine { sku: sku.clone(), location: location.clone(), quantity: 2 },
                ReserveLine { sku: "FZ-200".into(), location: location.clone(), quantity: 1 },
            ],
            partial: true,
            ttl_ms: 60_000,
        }],
        vec![Request::Confirm {
            reservation_id: reservation.clone(),
            op_id: "fz-c1".into(),
            units: some_lines.clone(),
        }],
        vec![Request::Release {
            reservation_id: reservation.clone(),
            op_id: "fz-r1".into(),
            units: some_lines.clone(),
            from: 1,
        }],
        vec![Request::Fulfil { reservation_id: reservation.clone(), op_id: "fz-f1".into(), units: some_lines }],
        vec![Request::Extend {
            reservation_id: reservation.clone(),
            op_id: "fz-e1".into(),
            deadline_ms: 4_102_444_800_000,
        }],
        vec![Request::Get { reservation_id: reservation }, Request::Stats],
        vec![Request::Hello { major: 1, minor: 0, token: "fz-token".into() }],
    ];
    frames
        .into_iter()
        .enumerate()
        .map(|(index, requests)| {
            let first_id = 100 * (index as u64 + 1);
            let requests = requests
                .into_iter()
                .enumerate()
                .map(|(offset, request)| RequestEnvelope { id: first_id + offset as u64, request })
                .collect();
            encode_client_frame(&ClientFrame { requests })
        })
        .collect()
}

/// A request whose structure is valid but one of whose values is out of range, and the
/// text the error message must contain: the field and the value.
fn out_of_range_requests() -> Vec<(Request, &'static str)> {
    let line = |quantity| ReserveLine { sku: FUZZ_SKU.into(), location: FUZZ_LOCATION.into(), quantity };
    vec![
        (
            Request::Reserve {
                reservation_id: "fz-huge".into(),
                channel: None,
                lines: vec![line(u64::MAX)],
                partial: false,
                ttl_ms: 60_000,
            },
            "quantity 18446744073709551615",
        ),
        (
            Request::Reserve {
                reservation_id: "fz-no-ttl".into(),
                channel: None,
                lines: vec![line(1)],
                partial: false,
                ttl_ms: 0,
            },
            "ttl_ms 0",
        ),
        (
            Request::UpsertLocations {
                locations: vec![LocationRow {
                    code: "MX-MTY-09".into(),
                    kind: 9,
                    lat: 25.6866,
                    lon: -100.3161,
                    methods: 1,
                    daily_capacity: 0,
                    active: true,
                }],
            },
            "kind 9",
        ),
        (
            Request::Release {
                reservation_id: FUZZ_RESERVATION.into(),
                op_id: "fz-bad-from".into(),
                units: Units::All,
                from: 7,
            },
            "from 7",
        ),
        (
            Request::AdjustOnHand {
                sku: FUZZ_SKU.into(),
                location: FUZZ_LOCATION.into(),
                delta: 1,
                reason: 200,
                op_id: "fz-bad-reason".into(),
            },
            "reason 200",
        ),
    ]
}

/// Bytes that are not a valid frame, or a valid frame damaged so that it may not be.
fn bad_frame(rng: &mut StdRng, iteration: usize, valid: &[Vec<u8>]) -> (&'static str, Vec<u8>) {
    let frame = &valid[rng.gen_range(0..valid.len())];
    match iteration % 8 {
        0 => {
            let mut bytes = vec![0u8; rng.gen_range(0..256)];
            rng.fill(&mut bytes[..]);
            ("random bytes", bytes)
        }
        1 => {
            let mut payload = vec![0u8; rng.gen_range(0..256)];
            rng.fill(&mut payload[..]);
            let mut bytes = (payload.len() as u32).to_le_bytes().to_vec();
            bytes.extend_from_slice(&payload);
            ("random payload behind a correct length prefix", bytes)
        }
        2 => ("valid frame cut short", frame[..rng.gen_range(0..frame.len())].to_vec()),
        3..=5 => {
            // Only payload bytes change, so the length prefix still frames the payload.
            let mut bytes = frame.clone();
            for _ in 0..rng.gen_range(1..=3) {
                let at = rng.gen_range(LENGTH_PREFIX_BYTES..bytes.len());
                bytes[at] ^= rng.gen_range(1..=u8::MAX);
            }
            ("valid frame with payload bytes changed", bytes)
        }
        _ => {
            let mut bytes = u32::MAX.to_le_bytes().to_vec();
            let mut tail = vec![0u8; rng.gen_range(0..64)];
            rng.fill(&mut tail[..]);
            bytes.extend_from_slice(&tail);
            ("length prefix of 4 GiB", bytes)
        }
    }
}

/// The error frame a server must send for bytes that end in something other than a
/// whole valid frame.
#[derive(Debug)]
struct Rejection {
    codes: &'static [ErrorCode],
    message_contains: &'static str,
}

/// What a server must send back for bytes sent on one stream: one response frame per
/// valid frame they start with, and a rejection if what follows is not a whole valid
/// frame.
#[derive(Debug)]
struct ExpectedReply {
    /// Request ids of each valid frame, sorted.
    frames: Vec<Vec<u64>>,
    rejection: Option<Rejection>,
}

/// Splits `bytes` into frames as the protocol defines them, to predict the reply.
fn expected_reply(bytes: &[u8]) -> ExpectedReply {
    let malformed = Rejection { codes: &[ErrorCode::Malformed], message_contains: "" };
    let mut frames = Vec::new();
    let mut rest = bytes;
    loop {
        if rest.is_empty() {
            return ExpectedReply { frames, rejection: None };
        }
        let Some((prefix, after)) = rest.split_first_chunk::<LENGTH_PREFIX_BYTES>() else {
            return ExpectedReply { frames, rejection: Some(malformed) };
        };
        let Ok(len) = payload_len(*prefix) else {
            let too_large = Rejection {
                codes: &[ErrorCode::LimitExceeded],
                message_contains: "over the limit frame_bytes_max = 8388608",
            };
            return ExpectedReply { frames, rejection: Some(too_large) };
        };
        if after.len() < len {
            return ExpectedReply { frames, rejection: Some(malformed) };
        }
        let payload = payload_from(&after[..len]);
        match access_client_frame(&payload) {
            Ok(frame) => {
                let mut ids: Vec<u64> = frame.requests.iter().map(|envelope| envelope.id.to_native()).collect();
                ids.sort_unstable();
                frames.push(ids);
            }
            Err(FrameError::TooManyRequests { .. }) => {
                let too_many =
                    Rejection { codes: &[ErrorCode::LimitExceeded], message_contains: "requests_per_frame_max" };
                return ExpectedReply { frames, rejection: Some(too_many) };
            }
            Err(_) => return ExpectedReply { frames, rejection: Some(malformed) },
        }
        rest = &after[len..];
    }
}

/// Describes an input for failure messages: its kind, length and first bytes in hex.
fn describe(iteration: usize, kind: &str, bytes: &[u8]) -> String {
    let hex: Vec<String> = bytes.iter().take(64).map(|byte| format!("{byte:02x}")).collect();
    let more = if bytes.len() > 64 { " ..." } else { "" };
    format!("iteration {iteration}, {kind}, {} bytes: {}{more}", bytes.len(), hex.join(" "))
}

/// Sends `bytes` on a new stream of `client` and returns the reply, failing the test on
/// a timeout or a lost connection.
async fn send_raw_bounded(client: &Client, bytes: &[u8], input: &str) -> Vec<u8> {
    // send_raw bounds its read by the client's timeout but not the opening of the
    // stream or the write, so the whole call gets a bound of its own.
    let bound = Duration::from_millis(2 * REPLY_TIMEOUT_MS);
    match tokio::time::timeout(bound, client.send_raw(bytes)).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(error)) => panic!("{input}: send_raw failed: {error}"),
        Err(_) => panic!("{input}: timed out after {} ms waiting for the reply", bound.as_millis()),
    }
}

/// Checks that `reply` contains the response frames and the rejection that `expected`
/// predicts, in any order, and nothing else.
fn check_bad_reply(expected: &ExpectedReply, reply: &[u8], input: &str) {
    let mut reader = FrameReader::default();
    reader.push(reply);
    let mut answered: Vec<Vec<u64>> = Vec::new();
    let mut errors: Vec<(Option<ErrorCode>, String)> = Vec::new();
    while let Some(payload) =
        reader.next_payload().unwrap_or_else(|error| panic!("{input}: the reply is not framed: {error}"))
    {
        let frame = access_server_frame(&payload).unwrap_or_else(|error| panic!("{input}: invalid reply: {error}"));
        let mut ids: Vec<u64> = frame.responses.iter().map(|envelope| envelope.id.to_native()).collect();
        ids.sort_unstable();
        answered.push(ids);
        for envelope in frame.responses.iter() {
            if let ArchivedResponse::Error { code, message } = &envelope.response {
                let code = ErrorCode::from_number(code.to_native());
                assert_ne!(code, Some(ErrorCode::Internal), "{input}: internal error: {message}");
            }
        }
        if frame.responses.len() == 1
            && let ArchivedResponse::Error { code, message } = &frame.responses[0].response
        {
            errors.push((ErrorCode::from_number(code.to_native()), message.to_string()));
        }
    }
    assert_eq!(reader.buffered_bytes(), 0, "{input}: the reply ends inside a frame");

    let mut expected_frames = expected.frames.clone();
    if expected.rejection.is_some() {
        // The server sends the error for a frame it could not read with the id 0.
        expected_frames.push(vec![0]);
    }
    expected_frames.sort();
    answered.sort();
    assert_eq!(answered, expected_frames, "{input}: request ids of the reply frames; errors {errors:?}");

    if let Some(rejection) = &expected.rejection {
        let rejected = errors.iter().any(|(code, message)| {
            code.is_some_and(|code| rejection.codes.contains(&code)) && message.contains(rejection.message_contains)
        });
        assert!(rejected, "{input}: expected the rejection {rejection:?}, got the errors {errors:?}");
    }
}

/// Sends a valid frame with one out-of-range value and checks that the error names
/// the field and the value.
async fn check_out_of_range(rogue: &Client, iteration: usize, request: &Request, field_and_value: &str) {
    let id = iteration as u64 + 1;
    let bytes = encode_client_frame(&ClientFrame { requests: vec![RequestEnvelope { id, request: request.clone() }] });
    let input = describe(iteration, &format!("out-of-range {field_and_value}"), &bytes);
    let reply = send_raw_bounded(rogue, &bytes, &input).await;
    let payload = only_frame(&reply, &input);
    let frame = access_server_frame(&payload).unwrap_or_else(|error| panic!("{input}: invalid reply: {error}"));
    assert_eq!(frame.responses.len(), 1, "{input}: responses in the reply");
    assert_eq!(frame.responses[0].id.to_native(), id, "{input}: response id");
    let ArchivedResponse::Error { code, message } = &frame.responses[0].response else {
        panic!("{input}: expected an error response, got another response");
    };
    assert_eq!(ErrorCode::from_number(code.to_native()), Some(ErrorCode::InvalidArgument), "{input}: {message}");
    assert!(message.contains(field_and_value), "{input}: the message {message:?} does not name the value");
}

/// Returns the payload of the one frame that `reply` must consist of.
fn only_frame(reply: &[u8], input: &str) -> Payload {
    let mut reader = FrameReader::default();
    reader.push(reply);
    let payload = reader
        .next_payload()
        .unwrap_or_else(|error| panic!("{input}: the reply is not framed: {error}"))
        .unwrap_or_else(|| panic!("{input}: the stream closed without a reply"));
    assert_eq!(reader.buffered_bytes(), 0, "{input}: bytes after the reply frame");
    payload
}

/// Checks that the well-behaved connection still gets a pong and the exact counters of
/// the position `seed` created. It sends with `send_raw` because, unlike `call`, that
/// never reconnects, so a connection the server dropped fails the check.
async fn check_well_behaved(client: &Client, after: &str) {
    let requests =
        vec![RequestEnvelope { id: 1, request: Request::Ping }, RequestEnvelope { id: 2, request: availability() }];
    let input = format!("a ping and an availability after {after}");
    let reply = send_raw_bounded(client, &encode_client_frame(&ClientFrame { requests }), &input).await;
    let payload = only_frame(&reply, &input);
    let frame = access_server_frame(&payload).unwrap_or_else(|error| panic!("{input}: invalid reply: {error}"));

    assert_eq!(frame.responses.len(), 2, "{input}: responses in the reply");
    for envelope in frame.responses.iter() {
        match (envelope.id.to_native(), &envelope.response) {
            (1, ArchivedResponse::Pong { .. }) => {}
            (2, ArchivedResponse::Availability(read)) => {
                let counters = (
                    read.on_hand.to_native(),
                    read.reserved.to_native(),
                    read.allocated.to_native(),
                    read.safety_stock.to_native(),
                    read.atp.to_native(),
                    read.in_shortage,
                );
                assert_eq!(counters, (10, 0, 0, 0, 10, false), "{input}: SKU-1 at MX-01");
            }
            (id, _) => panic!("{input}: request {id} got an unexpected response"),
        }
    }
}

/// Sends malformed, damaged and out-of-range frames on one connection and checks each
/// reply, while a second connection keeps getting correct responses. A damaged frame
/// that still validates is a valid frame and gets ordinary responses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_never_crash_the_server() {
    let mut rng = StdRng::seed_from_u64(test_seed("malformed_frames_never_crash_the_server", 0x5EED_0002));
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path(), None).await;
    let config =
        ClientConfig { timeout_ms: REPLY_TIMEOUT_MS, ..ClientConfig::local(running.addr, dir.path()).unwrap() };
    let client = Client::connect(&config).await.expect("the well-behaved client connects");
    seed(&client).await;
    seed_fuzz_targets(&client).await;
    let rogue = Client::connect(&config).await.expect("the rogue client connects");

    let valid = valid_frames();
    let out_of_range = out_of_range_requests();
    let mut last_input = String::from("setup");
    for iteration in 0..BAD_FRAME_ITERATIONS {
        if iteration % 8 == 7 {
            let (request, field_and_value) = &out_of_range[(iteration / 8) % out_of_range.len()];
            check_out_of_range(&rogue, iteration, request, field_and_value).await;
            last_input = format!("iteration {iteration}, out-of-range {field_and_value}");
        } else {
            let (kind, bytes) = bad_frame(&mut rng, iteration, &valid);
            let input = describe(iteration, kind, &bytes);
            let reply = send_raw_bounded(&rogue, &bytes, &input).await;
            check_bad_reply(&expected_reply(&bytes), &reply, &input);
            last_input = input;
        }
        if (iteration + 1) % CHECK_EVERY_ITERATIONS == 0 {
            check_well_behaved(&client, &last_input).await;
        }
    }
    check_well_behaved(&client, &last_input).await;

    // Writes still go through the log after all of it.
    let reserved = client.call_one(reserve("order-after-fuzz", 2)).await.unwrap();
    assert!(matches!(&reserved, Response::Reserved { replayed: false, .. }), "{reserved:?}");
    let Response::Availability(read) = client.call_one(availability()).await.unwrap() else { panic!() };
    assert_eq!((read.on_hand, read.reserved, read.atp), (10, 2, 8));

    rogue.close().await;
    client.close().await;
    running.shut_down().await;
}
