//! A real server on loopback, driven by the real client: every request kind, roles,
//! limits, malformed bytes, and a restart that keeps the state.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use promesa_client::{Client, ClientConfig, ClientError, error_code};
use promesa_protocol::{ErrorCode, LocationRow, Request, ReserveLine, Response, StockRow, Units};
use promesa_server::{Server, ServerConfig};
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

    // A second connection that says hello, then sends garbage on a new stream.
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
