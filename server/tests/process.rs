//! The `promesa-server` binary as a process: killed with SIGKILL under contention,
//! stopped with SIGTERM with requests in flight, and its connection limit.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use promesa_client::{Client, ClientConfig, ClientError};
use promesa_protocol::{ErrorCode, LocationRow, Request, ReserveLine, Response};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// SKUs the clients compete for, and units of each.
const SKUS: usize = 3;
const UNITS_PER_SKU: u64 = 40;
/// Clients reserving at once.
const CLIENTS: usize = 32;
/// Reserves one client tries at most.
const ATTEMPTS_PER_CLIENT_MAX: u64 = 1_000;
/// Refusals in a row after which a client stops: the stock is gone.
const REFUSALS_IN_A_ROW_MAX: u32 = 8;

struct ServerProcess {
    child: Child,
    addr: SocketAddr,
}

impl Drop for ServerProcess {
    /// Kills a server a failed test left running.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts the server on a free loopback port (unless `extra` names one) and waits
/// until it serves.
fn spawn_server(data_dir: &Path, extra: &[&str]) -> ServerProcess {
    let listen: &[&str] = if extra.contains(&"--listen") { &[] } else { &["--listen", "127.0.0.1:0"] };
    let mut child = Command::new(env!("CARGO_BIN_EXE_promesa-server"))
        .args(listen)
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promesa-server");
    let stderr = child.stderr.take().expect("piped stderr");
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines.next().expect("the server exited before serving").expect("read the server's log");
        if let Some(at) = line.find("listen=") {
            let addr = line[at + "listen=".len()..].split_whitespace().next().unwrap_or_default();
            break addr.parse().unwrap_or_else(|_| panic!("unexpected listen address in {line:?}"));
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    ServerProcess { child, addr }
}

fn seed() -> u64 {
    let seed = match std::env::var("PROMESA_TEST_SEED") {
        Ok(value) => value.parse().unwrap_or_else(|_| panic!("PROMESA_TEST_SEED={value:?} is not a decimal number")),
        Err(_) => 0x5EED_0001,
    };
    eprintln!("seed {seed} (replay with PROMESA_TEST_SEED={seed})");
    seed
}

fn sku(index: usize) -> String {
    format!("HOT-{index}")
}

async fn set_up(addr: SocketAddr, data_dir: &Path) {
    let client = Client::connect(&ClientConfig::local(addr, data_dir).unwrap()).await.unwrap();
    let location =
        LocationRow { code: "L0".into(), kind: 0, lat: 0.0, lon: 0.0, methods: 1, daily_capacity: 0, active: true };
    let mut requests = vec![Request::UpsertLocations { locations: vec![location] }];
    for index in 0..SKUS {
        requests.push(Request::SetOnHand { sku: sku(index), location: "L0".into(), on_hand: UNITS_PER_SKU });
    }
    for response in client.call(requests).await.unwrap() {
        assert!(!matches!(response, Response::Error { .. }), "{response:?}");
    }
    client.close().await;
}

/// Acknowledged reservations, shared by the client tasks: id to (SKU index, units).
type Acknowledged = Arc<std::sync::Mutex<BTreeMap<String, (usize, u64)>>>;

/// Runs `CLIENTS` clients that reserve 1 or 2 units of random SKUs until `stop` is
/// set, their connection fails or the stock is gone, recording every acknowledged
/// reservation.
async fn reserve_until_stopped(
    addr: SocketAddr,
    data_dir: std::path::PathBuf,
    seed: u64,
    acknowledged: Acknowledged,
    acks: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) {
    let mut tasks = Vec::new();
    for client_index in 0..CLIENTS {
        let config = ClientConfig { timeout_ms: 1_000, ..ClientConfig::local(addr, &data_dir).unwrap() };
        let (acknowledged, acks, stop) = (Arc::clone(&acknowledged), Arc::clone(&acks), Arc::clone(&stop));
        tasks.push(tokio::spawn(async move {
            let Ok(client) = Client::connect(&config).await else { return };
            let mut rng = StdRng::seed_from_u64(seed ^ client_index as u64);
            let mut refused_in_a_row = 0;
            for attempt in 0..ATTEMPTS_PER_CLIENT_MAX {
                if refused_in_a_row == REFUSALS_IN_A_ROW_MAX {
                    break;
                }
                if stop.load(Ordering::Acquire) {
                    break;
                }
                let (sku_index, quantity) = (rng.gen_range(0..SKUS), rng.gen_range(1..=2));
                let id = format!("s{seed}-c{client_index}-{attempt}");
                let request = Request::Reserve {
                    reservation_id: id.clone(),
                    channel: None,
                    lines: vec![ReserveLine { sku: sku(sku_index), location: "L0".into(), quantity }],
                    partial: false,
                    ttl_ms: 3_600_000,
                };
                match client.call_one(request).await {
                    Ok(Response::Reserved { lines, .. }) => {
                        if lines[0].held > 0 {
                            acknowledged.lock().unwrap().insert(id, (sku_index, lines[0].held));
                            acks.fetch_add(1, Ordering::AcqRel);
                            refused_in_a_row = 0;
                        } else {
                            refused_in_a_row += 1;
                        }
                    }
                    Ok(other) => panic!("unexpected response {other:?}"),
                    Err(ClientError::Connection(_) | ClientError::Timeout { .. }) => break,
                    // A frame read after a SIGTERM is rejected, and the ones before it got responses.
                    Err(ClientError::Refused { code, .. }) if code == ErrorCode::ShuttingDown.number() => break,
                    Err(error) => panic!("{error}"),
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

/// Client tasks reserving in the background, with their acknowledgement count.
struct Clients {
    task: tokio::task::JoinHandle<()>,
    acks: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Clients {
    /// Starts `reserve_until_stopped` on a task.
    fn start(addr: SocketAddr, data_dir: &Path, seed: u64, acknowledged: &Acknowledged) -> Clients {
        let (acks, stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let task = tokio::spawn(reserve_until_stopped(
            addr,
            data_dir.to_owned(),
            seed,
            Arc::clone(acknowledged),
            Arc::clone(&acks),
            Arc::clone(&stop),
        ));
        Clients { task, acks, stop }
    }

    /// Waits until `count` reservations are acknowledged or the clients ended.
    async fn wait_for_acks(&self, count: usize) {
        while self.acks.load(Ordering::Acquire) < count && !self.task.is_finished() {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }

    /// Tells the clients to stop and waits for them.
    async fn stop(self) {
        self.stop.store(true, Ordering::Release);
        self.finish().await;
    }

    /// Waits for the clients to end by themselves.
    async fn finish(self) {
        self.task.await.unwrap();
    }
}

/// Restarts the server and checks that every acknowledged reservation is there and
/// that no SKU has more units reserved than on hand.
async fn check_recovered(data_dir: &Path, acknowledged: &Acknowledged) {
    let server = spawn_server(data_dir, &[]);
    let client = Client::connect(&ClientConfig::local(server.addr, data_dir).unwrap()).await.unwrap();
    let acknowledged = acknowledged.lock().unwrap().clone();
    let mut acknowledged_units: BTreeMap<usize, u64> = BTreeMap::new();
    for (id, (sku_index, units)) in &acknowledged {
        *acknowledged_units.entry(*sku_index).or_default() += units;
        let response = client.call_one(Request::Get { reservation_id: id.clone() }).await.unwrap();
        let Response::Reservation(Some(view)) = response else { panic!("acknowledged reservation {id} was lost") };
        assert_eq!(view.lines[0].held, *units, "{id}");
    }
    for index in 0..SKUS {
        let request = Request::Availability { sku: sku(index), location: "L0".into(), channel: None };
        let Response::Availability(read) = client.call_one(request).await.unwrap() else { panic!() };
        assert!(
            read.reserved <= read.on_hand,
            "{}: reserved {} above on hand {}",
            sku(index),
            read.reserved,
            read.on_hand
        );
        let acked = acknowledged_units.get(&index).copied().unwrap_or(0);
        assert!(read.reserved >= acked, "{}: reserved {} below the {acked} acknowledged", sku(index), read.reserved);
    }
    client.close().await;
    stop_with_sigterm(server);
}

fn stop_with_sigterm(mut server: ServerProcess) {
    // SAFETY: the pid belongs to a child this test started and has not reaped.
    let status = unsafe { libc::kill(server.child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(status, 0, "SIGTERM could not be sent");
    let exit = server.child.wait().expect("wait for the server");
    assert!(exit.success(), "the server exited with {exit} after SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_contention_keeps_acknowledged_reservations() {
    let seed = seed();
    let dir = tempfile::tempdir().unwrap();
    let mut server = spawn_server(dir.path(), &[]);
    set_up(server.addr, dir.path()).await;

    // Kill after a seeded number of acknowledgements, below the total stock so that
    // the kill lands while clients still compete.
    let kill_after = StdRng::seed_from_u64(seed).gen_range(10..40);
    let acknowledged = Acknowledged::default();
    let clients = Clients::start(server.addr, dir.path(), seed, &acknowledged);
    clients.wait_for_acks(kill_after).await;
    server.child.kill().expect("SIGKILL the server");
    server.child.wait().unwrap();
    clients.stop().await;
    check_recovered(dir.path(), &acknowledged).await;

    // Again until the stock runs out: never more reserved than on hand.
    let server = spawn_server(dir.path(), &[]);
    Clients::start(server.addr, dir.path(), seed + 1, &acknowledged).finish().await;
    stop_with_sigterm(server);
    check_recovered(dir.path(), &acknowledged).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_requests_in_flight_loses_nothing() {
    let seed = seed();
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_server(dir.path(), &[]);
    set_up(server.addr, dir.path()).await;

    let acknowledged = Acknowledged::default();
    let clients = Clients::start(server.addr, dir.path(), seed, &acknowledged);
    clients.wait_for_acks(20).await;
    stop_with_sigterm(server);
    clients.stop().await;
    check_recovered(dir.path(), &acknowledged).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limit_named_on_rejection() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_server(dir.path(), &["--connections-max", "2"]);
    let config = ClientConfig::local(server.addr, dir.path()).unwrap();
    let first = Client::connect(&config).await.unwrap();
    let second = Client::connect(&config).await.unwrap();
    let third = Client::connect(&config).await.err().expect("a third connection is refused");
    assert!(third.to_string().contains("connections_max = 2"), "{third}");
    assert!(matches!(first.call_one(Request::Ping).await.unwrap(), Response::Pong { .. }));
    first.close().await;
    second.close().await;
    stop_with_sigterm(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_reconnects_and_retries_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = spawn_server(dir.path(), &[]);
    let addr = server.addr;
    set_up(addr, dir.path()).await;
    let config = ClientConfig { timeout_ms: 1_000, ..ClientConfig::local(addr, dir.path()).unwrap() };
    let client = Client::connect(&config).await.unwrap();
    let reserve = Request::Reserve {
        reservation_id: "order-A".into(),
        channel: None,
        lines: vec![ReserveLine { sku: sku(0), location: "L0".into(), quantity: 2 }],
        partial: false,
        ttl_ms: 3_600_000,
    };
    assert!(matches!(client.call_one(reserve.clone()).await.unwrap(), Response::Reserved { replayed: false, .. }));

    // Killed and started again on the same address: the same client's next call
    // reconnects, and a repeated reserve returns the first outcome.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let restarted = spawn_server(dir.path(), &["--listen", &addr.to_string()]);
    let retried = client.call_one(reserve).await.expect("the call is retried on a new connection");
    assert!(matches!(retried, Response::Reserved { replayed: true, .. }), "{retried:?}");
    client.close().await;
    stop_with_sigterm(restarted);
}
