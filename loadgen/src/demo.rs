//! The demo. A real server runs in this process on a free loopback port, with a data
//! folder of its own. It gets the bundled Olist network and stock, inbound receipts at
//! one centre, and the bundled orders as routed reserves over QUIC. Then it restarts
//! from its snapshot and log, and the demo compares the state before and after the
//! restart and checks that nothing is oversold.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use promesa_client::{Client, ClientConfig};
use promesa_engine::snapshot::SnapshotPolicy;
use promesa_protocol::limits::CODES_PER_QUERY_MAX;
use promesa_protocol::{PositionAvailability, Request, ReservationView, Response};
use promesa_server::{Recovery, Server, ServerConfig};
use serde::Serialize;

use crate::dataset::{Dataset, Source};
use crate::replay::{Fate, Fates, NetworkLoaded, ReplayPlan, ReplayReport, grouped, labelled, load_network, replay};

/// Log growth that triggers a snapshot while the demo runs: small, so the restart
/// loads a snapshot and replays the log written after it.
const SNAPSHOT_LOG_BYTES: u64 = 1 << 20;
/// Size of a log segment: small, so the folder the demo leaves behind stays small (a
/// server's default is 64 MiB, allocated up front).
const SEGMENT_BYTES: u64 = 4 << 20;
/// How often the snapshot thread checks its triggers, in milliseconds.
const SNAPSHOT_CHECK_INTERVAL_MS: u64 = 50;
/// The fulfilment centre that expects inbound receipts.
const RECEIPT_LOCATION: &str = "FC-SAO-PAULO";
/// Units of each inbound receipt.
const RECEIPT_UNITS: u64 = 20;
/// Days until the receipts arrive.
const RECEIPT_ARRIVAL_DAYS: u64 = 14;
/// Requests per frame when reading state back or adding receipts.
const REQUESTS_PER_CALL: usize = 512;
/// Maximum wait for the abandoned holds to expire, in milliseconds.
const EXPIRY_WAIT_MS_MAX: u64 = 30_000;
/// Time between two reads of the abandoned holds, in milliseconds.
const EXPIRY_POLL_MS: u64 = 200;
/// Reservation state code of an open hold.
const STATE_HELD: u8 = 0;
/// Reservation state code of an expired hold.
const STATE_EXPIRED: u8 = 4;
/// Line status code of a backordered line.
const LINE_BACKORDERED: u32 = 7;

/// Settings of the demo.
#[derive(Clone, Debug)]
pub struct DemoPlan {
    /// Folder for the server's data and the report; `None` makes a new one under the
    /// system's temporary folder.
    pub folder: Option<PathBuf>,
    /// Replay only the first orders.
    pub orders_max: Option<usize>,
    /// Connections.
    pub connections: usize,
    /// Orders in flight per connection.
    pub in_flight: usize,
    /// Seed of the fates.
    pub seed: u64,
    /// Print progress.
    pub progress: bool,
}

/// The demo's result.
#[derive(Clone, Debug, Serialize)]
pub struct DemoReport {
    /// The folder of the server's data and this report.
    pub folder: PathBuf,
    /// Loading the network.
    pub network: NetworkLoaded,
    /// Inbound receipts added.
    pub receipts: u64,
    /// The replay.
    pub replay: ReplayReport,
    /// Holds left to expire that expired before the restart.
    pub expired: u64,
    /// The restart.
    pub restart: Restart,
    /// Units held or allocated beyond on hand, over every position; must be 0.
    pub oversold_units: u64,
    /// The server's own oversold counter after the restart; must be 0.
    pub server_oversold: u64,
}

/// The restart and the comparison of the state on both sides of it.
#[derive(Clone, Debug, Serialize)]
pub struct Restart {
    /// Seconds from asking the server to stop to it having stopped.
    pub shutdown_secs: f64,
    /// Seconds from starting the server again to it listening.
    pub start_secs: f64,
    /// The snapshot loaded.
    pub snapshot: Option<String>,
    /// Log records replayed after it.
    pub records_replayed: u64,
    /// Recovery time inside the engine, in milliseconds.
    pub recovery_ms: f64,
    /// Reservations compared.
    pub reservations: usize,
    /// Positions compared.
    pub positions: usize,
    /// The instant both states were judged at (milliseconds since the Unix epoch).
    pub judged_at_ms: u64,
    /// Differences found; empty when the states are equal.
    pub differences: Vec<String>,
}

impl DemoReport {
    /// Returns true when every check passed.
    pub fn passed(&self) -> bool {
        self.restart.differences.is_empty()
            && self.oversold_units == 0
            && self.server_oversold == 0
            && self.replay.outcomes.errors_total() == 0
    }

    /// Renders the report as text.
    pub fn text(&self) -> String {
        let restart = &self.restart;
        let mut text = format!("Promesa demo: {}\n", self.replay.dataset);

        for note in &self.replay.notes {
            text.push_str(&labelled("data", note));
        }

        text.push_str(&labelled(
            "network",
            &format!(
                "{} locations and {} stock rows loaded in {:.2} s; {} inbound receipts of {RECEIPT_UNITS} units at \
                 {RECEIPT_LOCATION} in {RECEIPT_ARRIVAL_DAYS} days, one per ordered SKU no location stocks",
                grouped(self.network.locations as u64),
                grouped(self.network.positions),
                self.network.elapsed_secs,
                grouped(self.receipts),
            ),
        ));

        text.push_str(&self.replay.text());

        text.push_str(&labelled(
            "expiry",
            &format!("{} holds expired on their own before the restart", grouped(self.expired)),
        ));

        text.push_str(&labelled(
            "restart",
            &format!(
                "stopped in {:.2} s, started again in {:.2} s; recovery took {:.1} ms: snapshot {}, then {} log \
                 records",
                restart.shutdown_secs,
                restart.start_secs,
                restart.recovery_ms,
                restart.snapshot.as_deref().unwrap_or("none"),
                grouped(restart.records_replayed),
            ),
        ));

        if restart.differences.is_empty() {
            text.push_str(&labelled(
                "recovered",
                &format!(
                    "state after the restart equals the state before: {} reservations, {} positions (holds \
                     judged at the same instant)",
                    grouped(restart.reservations as u64),
                    grouped(restart.positions as u64),
                ),
            ));
        } else {
            let count = restart.differences.len();
            text.push_str(&labelled("RECOVERED", &format!("{count} DIFFERENCES after the restart, the first ones:")));
            for difference in restart.differences.iter().take(10) {
                text.push_str(&labelled("", difference));
            }
        }

        text.push_str(&labelled(
            "oversold",
            &format!(
                "{} oversold: units held or allocated beyond on hand, over every position (the server counts {})",
                self.oversold_units, self.server_oversold,
            ),
        ));

        text.push_str(&labelled(
            "files",
            &format!("{} (server data and report.json); to serve that state again:", self.folder.display()),
        ));

        text.push_str(&labelled(
            "",
            &format!("cargo run --release -p promesa-server -- --data-dir {}", self.folder.join("server").display()),
        ));

        text
    }
}

/// A server on its own thread and runtime.
struct Running {
    addr: SocketAddr,
    recovery: Recovery,
    stop: tokio::sync::watch::Sender<bool>,
    thread: std::thread::JoinHandle<Result<(), String>>,
}

impl Running {
    fn start(data_dir: &Path) -> Result<Running, String> {
        let mut config = ServerConfig::new(data_dir.to_owned());
        config.listen = "127.0.0.1:0".parse().expect("a loopback address parses");
        config.log.segment_bytes_max = SEGMENT_BYTES;
        config.log.snapshot = SnapshotPolicy {
            interval_ms: 0,
            log_bytes: SNAPSHOT_LOG_BYTES,
            on_close: false,
            check_interval_ms: SNAPSHOT_CHECK_INTERVAL_MS,
        };
        let (started_sender, started) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("promesa-server".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()
                    .map_err(|error| format!("failed to start the server's runtime: {error}"))?;
                runtime.block_on(async move {
                    let server = match Server::start(config) {
                        Ok(server) => server,
                        Err(error) => {
                            let _ = started_sender.send(Err(error.clone()));
                            return Err(error);
                        }
                    };
                    let _ = started_sender.send(Ok((server.local_addr(), server.recovery().clone())));
                    server.run(stopped).await
                })
            })
            .map_err(|error| format!("failed to start the server thread: {error}"))?;
        match started.recv() {
            Ok(Ok((addr, recovery))) => Ok(Running { addr, recovery, stop, thread }),
            Ok(Err(error)) => Err(format!("the server did not start: {error}")),
            Err(_) => Err(format!("the server did not start: {:?}", thread.join())),
        }
    }

    fn stop(self) -> Result<(), String> {
        let _ = self.stop.send(true);
        match self.thread.join() {
            Ok(result) => result.map_err(|error| format!("the server did not stop cleanly: {error}")),
            Err(_) => Err("the server thread panicked".to_owned()),
        }
    }
}

/// Runs the demo. Returns the report; `DemoReport::passed` returns whether every check
/// passed.
pub async fn demo(plan: &DemoPlan) -> Result<DemoReport, String> {
    let replay_plan = ReplayPlan {
        connections: plan.connections,
        in_flight: plan.in_flight,
        speed: None,
        ttl_ms: 30 * 60 * 1000,
        expire_ttl_ms: 2_000,
        fates: Fates { confirm_pct: 35, fulfil_pct: 25, cancel_pct: 15, expire_pct: 10 },
        max_shipments: 3,
        allow_backorder: true,
        seed: plan.seed,
        orders_max: plan.orders_max,
        id_prefix: "olist-".to_owned(),
        progress: plan.progress,
    };
    replay_plan.check()?;

    let folder = match &plan.folder {
        Some(folder) => {
            std::fs::create_dir_all(folder)
                .map_err(|error| format!("failed to create the folder {}: {error}", folder.display()))?;
            folder.clone()
        }
        None => tempfile::Builder::new()
            .prefix("promesa-demo-")
            .tempdir()
            .map_err(|error| format!("failed to make a temporary folder: {error}"))?
            .keep(),
    };
    let data_dir = folder.join("server");
    if data_dir.exists() {
        return Err(format!("{} exists; the demo starts from an empty server folder", data_dir.display()));
    }
    let say = |line: String| {
        if plan.progress {
            eprintln!("{line}");
        }
    };
    say(format!("promesa demo: files in {}", folder.display()));

    let dataset = Arc::new(Dataset::load(&Source::Bundled, plan.seed)?);
    say(format!("starting promesa-server on 127.0.0.1 with its data in {}", data_dir.display()));
    let server = Running::start(&data_dir)?;
    let config = ClientConfig::local(server.addr, &data_dir).map_err(|error| error.to_string())?;
    let client = Client::connect(&config).await.map_err(|error| error.to_string())?;

    say(format!(
        "loading {} locations and {} stock rows, and inbound receipts at {RECEIPT_LOCATION}",
        grouped(dataset.sites.len() as u64),
        grouped(dataset.stock.len() as u64)
    ));
    let network = load_network(&client, &dataset, "demo-network").await?;
    let receipts = add_receipts(&client, &dataset).await?;

    say(format!(
        "replaying {} orders as routed reserves (cheapest, up to 3 shipments, partial and backorder allowed)",
        grouped(plan.orders_max.map_or(dataset.orders.len(), |max| max.min(dataset.orders.len())) as u64)
    ));
    let report = replay(&config, Arc::clone(&dataset), &replay_plan).await?;

    say("waiting for the abandoned holds to expire".to_owned());
    let expiring: Vec<String> =
        report.reservations.iter().filter(|(_, fate)| *fate == Fate::Expire).map(|(id, _)| id.clone()).collect();
    let expired = wait_for_expiry(&client, &expiring).await?;

    let ids: Vec<String> = report.reservations.iter().map(|(id, _)| id.clone()).collect();
    let skus = dataset.skus();
    let before = State::read(&client, &ids, &skus).await?;
    let mut checks = Vec::new();
    let oversold_units = before.oversold(&mut checks);
    client.close().await;

    say("restarting the server from its snapshot and log".to_owned());
    let stopping = Instant::now();
    server.stop()?;
    let shutdown_secs = stopping.elapsed().as_secs_f64();
    let starting = Instant::now();
    let server = Running::start(&data_dir)?;
    let start_secs = starting.elapsed().as_secs_f64();
    let config = ClientConfig::local(server.addr, &data_dir).map_err(|error| error.to_string())?;
    let client = Client::connect(&config).await.map_err(|error| error.to_string())?;
    let mut after = State::read(&client, &ids, &skus).await?;
    let server_oversold = server_figure(&client, "oversold").await?;
    client.close().await;
    let recovery = server.recovery.clone();
    server.stop()?;

    let mut before = before;
    let judged_at_ms = after.read_at_ms;
    before.judge(judged_at_ms);
    after.judge(judged_at_ms);
    let mut differences: Vec<String> = checks.into_iter().map(|check| format!("before the restart: {check}")).collect();
    differences.extend(before.differences(&after));
    after.oversold(&mut differences);

    let report = DemoReport {
        folder: folder.clone(),
        network,
        receipts,
        replay: report,
        expired,
        restart: Restart {
            shutdown_secs,
            start_secs,
            snapshot: recovery.snapshot,
            records_replayed: recovery.records_replayed,
            recovery_ms: recovery.elapsed_us as f64 / 1000.0,
            reservations: ids.len(),
            positions: after.positions.len(),
            judged_at_ms,
            differences,
        },
        oversold_units,
        server_oversold,
    };
    let json = serde_json::to_string_pretty(&report).expect("the report serializes");
    std::fs::write(folder.join("report.json"), json + "\n")
        .map_err(|error| format!("failed to write {}: {error}", folder.join("report.json").display()))?;
    Ok(report)
}

/// Adds one inbound receipt at the receipt centre for every ordered SKU that no
/// location stocks (products on a purchase order), so their lines are backordered.
async fn add_receipts(client: &Client, dataset: &Dataset) -> Result<u64, String> {
    let arrival_ms = now_ms() + RECEIPT_ARRIVAL_DAYS * 24 * 60 * 60 * 1000;
    let stocked: BTreeSet<&str> = dataset.stock.iter().map(|stock| stock.sku.as_str()).collect();
    let missing: BTreeSet<&str> = dataset
        .orders
        .iter()
        .flat_map(|order| &order.lines)
        .map(|(sku, _)| sku.as_str())
        .filter(|sku| !stocked.contains(sku))
        .collect();
    let requests: Vec<Request> = missing
        .iter()
        .map(|sku| Request::AddSupply {
            receipt_id: format!("PO-{sku}"),
            sku: (*sku).to_owned(),
            location: RECEIPT_LOCATION.to_owned(),
            quantity: RECEIPT_UNITS,
            arrival_ms,
        })
        .collect();
    for chunk in requests.chunks(REQUESTS_PER_CALL) {
        for response in client.call(chunk.to_vec()).await.map_err(|error| error.to_string())? {
            if let Response::Error { message, .. } = response {
                return Err(format!("the server refused an inbound receipt: {message}"));
            }
        }
    }
    Ok(requests.len() as u64)
}

/// Waits until every hold left to expire has expired; returns how many there were.
async fn wait_for_expiry(client: &Client, ids: &[String]) -> Result<u64, String> {
    let started = Instant::now();
    loop {
        let views = reservations(client, ids).await?;
        let open = views.values().filter(|view| view.state != STATE_EXPIRED).count();
        if open == 0 {
            return Ok(ids.len() as u64);
        }
        if started.elapsed() > Duration::from_millis(EXPIRY_WAIT_MS_MAX) {
            return Err(format!(
                "{open} of {} holds left to expire had not expired after {EXPIRY_WAIT_MS_MAX} ms",
                ids.len()
            ));
        }
        tokio::time::sleep(Duration::from_millis(EXPIRY_POLL_MS)).await;
    }
}

async fn reservations(client: &Client, ids: &[String]) -> Result<BTreeMap<String, ReservationView>, String> {
    let mut views = BTreeMap::new();
    for chunk in ids.chunks(REQUESTS_PER_CALL) {
        let requests = chunk.iter().map(|id| Request::Get { reservation_id: id.clone() }).collect();
        let responses = client.call(requests).await.map_err(|error| error.to_string())?;
        for (id, response) in chunk.iter().zip(responses) {
            match response {
                Response::Reservation(Some(view)) => {
                    views.insert(id.clone(), view);
                }
                Response::Reservation(None) => return Err(format!("reservation {id} is not known to the server")),
                other => return Err(format!("reading reservation {id} got {other:?}")),
            }
        }
    }
    Ok(views)
}

async fn server_figure(client: &Client, name: &str) -> Result<u64, String> {
    match client.call_one(Request::Stats).await.map_err(|error| error.to_string())? {
        Response::Stats(figures) => figures
            .into_iter()
            .find(|figure| figure.name == name)
            .map(|figure| figure.value)
            .ok_or_else(|| format!("the server's figures have no {name}")),
        other => Err(format!("stats got {other:?}")),
    }
}

/// The server's state: every reservation of the replay and every position.
struct State {
    reservations: BTreeMap<String, ReservationView>,
    positions: BTreeMap<(String, String), PositionAvailability>,
    /// When it was read.
    read_at_ms: u64,
}

impl State {
    async fn read(client: &Client, ids: &[String], skus: &[String]) -> Result<State, String> {
        let read_at_ms = now_ms();
        let reservations = reservations(client, ids).await?;
        let mut positions = BTreeMap::new();
        for chunk in skus.chunks(CODES_PER_QUERY_MAX.min(REQUESTS_PER_CALL)) {
            let request = Request::AvailabilityMany {
                skus: chunk.to_vec(),
                locations: Vec::new(),
                channel: None,
                per_location: true,
            };
            match client.call_one(request).await.map_err(|error| error.to_string())? {
                Response::AvailabilityMany(answers) => {
                    for answer in answers {
                        for location in answer.locations {
                            positions.insert((answer.sku.clone(), location.location), location.availability);
                        }
                    }
                }
                other => return Err(format!("availability got {other:?}")),
            }
        }
        Ok(State { reservations, positions, read_at_ms })
    }

    /// Expires, in this copy, every hold whose deadline has passed at `at_ms`, as the
    /// server would at that instant, so two reads taken at different times compare.
    fn judge(&mut self, at_ms: u64) {
        for view in self.reservations.values_mut() {
            if view.state == STATE_HELD && view.deadline_ms <= at_ms {
                for line in &mut view.lines {
                    if line.status != LINE_BACKORDERED
                        && let Some(position) = self.positions.get_mut(&(line.sku.clone(), line.location.clone()))
                    {
                        position.reserved = position.reserved.saturating_sub(line.held);
                        position.atp += line.held as i64;
                    }
                    line.released += line.held;
                    line.held = 0;
                }
                view.state = STATE_EXPIRED;
            }
            if view.state == STATE_EXPIRED && view.deadline_ms > self.read_at_ms {
                // Expired between the two reads: when the server noticed is not state.
                view.ended_ms = None;
            }
        }
    }

    /// Lists what differs from `other`.
    fn differences(&self, other: &State) -> Vec<String> {
        let mut differences = Vec::new();
        for (id, view) in &self.reservations {
            match other.reservations.get(id) {
                Some(after) if after == view => {}
                Some(after) => differences.push(format!("reservation {id}: {view:?} before, {after:?} after")),
                None => differences.push(format!("reservation {id} is gone")),
            }
        }
        for (key, position) in &self.positions {
            match other.positions.get(key) {
                Some(after) if after == position => {}
                Some(after) => differences.push(format!("position {key:?}: {position:?} before, {after:?} after")),
                None => differences.push(format!("position {key:?} is gone")),
            }
        }
        for key in other.positions.keys().filter(|key| !self.positions.contains_key(*key)) {
            differences.push(format!("position {key:?} is new after the restart"));
        }
        differences
    }

    /// Returns the units held or allocated beyond on hand over every position, and
    /// lists each position whose counters disagree with the reservations read.
    fn oversold(&self, differences: &mut Vec<String>) -> u64 {
        let mut counted: BTreeMap<(&str, &str), (u64, u64)> = BTreeMap::new();
        for view in self.reservations.values() {
            for line in view.lines.iter().filter(|line| line.status != LINE_BACKORDERED) {
                let entry = counted.entry((line.sku.as_str(), line.location.as_str())).or_default();
                entry.0 += line.held;
                entry.1 += line.allocated;
            }
        }
        let mut oversold = 0;
        for ((sku, location), position) in &self.positions {
            oversold += (position.reserved + position.allocated).saturating_sub(position.on_hand);
            let (held, allocated) = counted.get(&(sku.as_str(), location.as_str())).copied().unwrap_or_default();
            if (held, allocated) != (position.reserved, position.allocated) {
                differences.push(format!(
                    "position {sku} at {location}: reservations hold {held} and allocate {allocated}, the position \
                     counts {} and {}",
                    position.reserved, position.allocated
                ));
            }
        }
        oversold
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_millis() as u64)
}
