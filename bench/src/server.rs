//! Server figures: a real `promesa-server` (in this process, on its own runtime) and
//! real clients over QUIC on loopback, durable `sync` mode. Single-request round-trip
//! latency at low load, reserves per second with one reserve per frame and many
//! frames in flight, and reserves per second with batched frames.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use promesa_client::{Client, ClientConfig};
use promesa_protocol::{
    Destination, LocationRow, Request, ReserveLine, Response, RouteLine, RouteMethod, RouteOrder, StockRow,
};
use promesa_server::{Server, ServerConfig};
use serde::Serialize;

/// SKUs at one location, each with enough on hand that no run exhausts it.
pub const SERVER_SKUS: u64 = 10_000;
/// On hand of each SKU.
const ON_HAND: u64 = 1_000_000_000;
/// Maximum frame round trip the histograms record, in microseconds. Longer ones count
/// as this.
const FRAME_US_MAX: u64 = 60_000_000;
/// Rows per import request while seeding.
const SEED_ROWS_PER_REQUEST: usize = 10_000;
/// Locations of the routing network of the routed run, each stocking every routed SKU.
pub const ROUTED_LOCATIONS: u64 = 200;
/// SKUs of the routed run.
pub const ROUTED_SKUS: u64 = 1_000;
/// Lines per routed order.
const ROUTED_ORDER_LINES: u64 = 3;

/// Seconds of each throughput run by default.
pub const SECS_DEFAULT: f64 = 5.0;
/// Client connections of the throughput runs by default.
pub const CONNECTIONS_DEFAULT: usize = 4;
/// Frames in flight per connection by default.
pub const IN_FLIGHT_DEFAULT: usize = 64;
/// Reserves per frame of the batched runs by default.
pub const BATCH_DEFAULT: usize = 256;

/// Target of reserves per second with one reserve per frame.
pub const SINGLE_RESERVES_PER_SEC_TARGET_MIN: f64 = 300_000.0;
/// Target of reserves per second with batched frames.
pub const BATCHED_RESERVES_PER_SEC_TARGET_MIN: f64 = 1_000_000.0;
/// Target of routed reserves per second with batched frames.
pub const ROUTED_RESERVES_PER_SEC_TARGET_MIN: f64 = 200_000.0;

/// The tokio runtime that serves the endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerRuntime {
    /// One thread runs the endpoint and every connection.
    CurrentThread,
    /// Worker threads, one per core.
    MultiThread,
}

/// Settings of one server measurement.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServerPlan {
    /// Seconds each measured run lasts.
    pub secs: f64,
    /// Connections for the throughput runs.
    pub connections: usize,
    /// Frames in flight per connection.
    pub in_flight: usize,
    /// Reserves per frame in the batched run.
    pub batch: usize,
    /// The server's runtime.
    pub runtime: ServerRuntime,
}

impl ServerPlan {
    /// Returns the plan of the default settings, on the multi-thread runtime, with
    /// throughput runs of `secs` seconds.
    pub fn with_secs(secs: f64) -> ServerPlan {
        ServerPlan {
            secs,
            connections: CONNECTIONS_DEFAULT,
            in_flight: IN_FLIGHT_DEFAULT,
            batch: BATCH_DEFAULT,
            runtime: ServerRuntime::MultiThread,
        }
    }
}

/// One throughput run.
#[derive(Clone, Debug, Serialize)]
pub struct Throughput {
    /// Reserves per frame.
    pub reserves_per_frame: usize,
    /// Reserves acknowledged per second.
    pub reserves_per_sec: f64,
    /// Frames with a response per second.
    pub frames_per_sec: f64,
    /// Frame round trip p50, in microseconds.
    pub frame_us_p50: u64,
    /// Frame round trip p99, in microseconds.
    pub frame_us_p99: u64,
}

/// The figures of one server measurement.
#[derive(Clone, Debug, Serialize)]
pub struct ServerFigures {
    /// The settings.
    pub plan: ServerPlan,
    /// Ping round trip at low load (one call at a time), p50 and p99 in microseconds.
    pub ping_us_p50: u64,
    /// See `ping_us_p50`.
    pub ping_us_p99: u64,
    /// Durable reserve round trip at low load, p50 and p99 in microseconds.
    pub reserve_us_p50: u64,
    /// See `reserve_us_p50`.
    pub reserve_us_p99: u64,
    /// One reserve per frame, many frames in flight.
    pub single: Throughput,
    /// `plan.batch` reserves per frame, many frames in flight.
    pub batched: Throughput,
    /// `plan.batch` routed reserves per frame (3-line orders over 200 locations that
    /// all stock every SKU), many frames in flight; "reserves" count routed orders.
    pub routed_batched: Throughput,
}

/// Starts a server in this process, seeds it, and measures.
pub fn measure_server(plan: &ServerPlan) -> ServerFigures {
    let data = tempfile::Builder::new().prefix("promesa-bench-server-").tempdir().expect("create a data folder");
    let mut config = ServerConfig::new(data.path().to_owned());
    config.listen = "127.0.0.1:0".parse().expect("a loopback address");

    // The server runs on its own runtime and thread, as the binary does.
    let (addr_sent, addr_received) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let runtime_kind = plan.runtime;
    let server_thread = std::thread::spawn(move || {
        let runtime = match runtime_kind {
            ServerRuntime::CurrentThread => tokio::runtime::Builder::new_current_thread().enable_all().build(),
            ServerRuntime::MultiThread => tokio::runtime::Builder::new_multi_thread().enable_all().build(),
        }
        .expect("start the server's runtime");
        runtime.block_on(async move {
            let server = Server::start(config).expect("the server starts");
            addr_sent.send(server.local_addr()).expect("the measuring thread waits");
            server.run(stopped).await.expect("the server shuts down cleanly");
        });
    });
    let addr: SocketAddr = addr_received.recv().expect("the server reports its address");

    let client_runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("client runtime");
    let figures = client_runtime.block_on(async {
        let config = ClientConfig::local(addr, data.path()).expect("the server wrote its certificate and token");
        seed(&config).await;
        let (ping_us_p50, ping_us_p99) = low_load(&config, |_| Request::Ping, plan.secs / 4.0).await;
        let (reserve_us_p50, reserve_us_p99) = low_load(&config, reserve, plan.secs / 4.0).await;
        let single = throughput(&config, plan, 1, reserve).await;
        let batched = throughput(&config, plan, plan.batch, reserve).await;
        seed_routing(&config).await;
        let routed_batched = throughput(&config, plan, plan.batch, routed_reserve).await;
        ServerFigures {
            plan: plan.clone(),
            ping_us_p50,
            ping_us_p99,
            reserve_us_p50,
            reserve_us_p99,
            single,
            batched,
            routed_batched,
        }
    });
    stop.send(true).expect("the server listens for the stop");
    server_thread.join().expect("the server thread panicked");
    figures
}

fn reserve(index: u64) -> Request {
    Request::Reserve {
        reservation_id: format!("r-{index}"),
        channel: None,
        lines: vec![ReserveLine { sku: format!("SKU-{}", index % SERVER_SKUS), location: "MX-01".into(), quantity: 1 }],
        partial: false,
        ttl_ms: 3_600_000,
    }
}

/// A 3-line order to a point in central Mexico, the same for the same index.
fn routed_reserve(index: u64) -> Request {
    let draw = |salt: u64| index.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(salt).rotate_left(17) % 10_007;
    let lines = (0..ROUTED_ORDER_LINES)
        .map(|line| RouteLine { sku: format!("R-SKU-{}", draw(line) % ROUTED_SKUS), quantity: 1 + draw(7 + line) % 2 })
        .collect();
    Request::ReserveRouted {
        reservation_id: format!("routed-{index}"),
        ttl_ms: 3_600_000,
        order: RouteOrder {
            channel: None,
            destination: Destination::Point {
                lat: 17.0 + (draw(11) % 500) as f64 / 100.0,
                lon: -104.0 + (draw(13) % 700) as f64 / 100.0,
            },
            lines,
            method: RouteMethod::ShipCheapest,
            max_shipments: 3,
            allow_partial: false,
            allow_backorder: false,
        },
    }
}

/// Adds the routing network: `ROUTED_LOCATIONS` locations over central Mexico, each
/// with deep stock of every routed SKU.
async fn seed_routing(config: &ClientConfig) {
    let client = Client::connect(config).await.expect("connect");
    let locations: Vec<LocationRow> = (0..ROUTED_LOCATIONS)
        .map(|index| LocationRow {
            code: format!("R-{index:03}"),
            kind: 1,
            lat: 17.0 + (index * 37 % 500) as f64 / 100.0,
            lon: -104.0 + (index * 53 % 700) as f64 / 100.0,
            methods: 1,
            daily_capacity: 0,
            active: true,
        })
        .collect();
    client.call_one(Request::UpsertLocations { locations }).await.expect("upsert the routing network");
    let rows: Vec<StockRow> = (0..ROUTED_SKUS)
        .flat_map(|sku| {
            (0..ROUTED_LOCATIONS).map(move |location| StockRow {
                sku: format!("R-SKU-{sku}"),
                location: format!("R-{location:03}"),
                on_hand: ON_HAND,
                safety_stock: None,
            })
        })
        .collect();
    for (chunk, rows) in rows.chunks(SEED_ROWS_PER_REQUEST).enumerate() {
        let request = Request::ImportRows {
            import_id: "routing".into(),
            first_line: (chunk * SEED_ROWS_PER_REQUEST) as u64,
            rows: rows.to_vec(),
        };
        client.call_one(request).await.expect("stage the routed stock");
    }
    let committed = client.call_one(Request::ImportCommit { import_id: "routing".into() }).await.expect("import");
    assert!(matches!(committed, Response::ImportCommitted { .. }), "{committed:?}");
    client.close().await;
}

async fn seed(config: &ClientConfig) {
    let client = Client::connect(config).await.expect("connect");
    let location = LocationRow {
        code: "MX-01".into(),
        kind: 0,
        lat: 19.43,
        lon: -99.13,
        methods: 1,
        daily_capacity: 0,
        active: true,
    };
    client.call_one(Request::UpsertLocations { locations: vec![location] }).await.expect("upsert the location");
    let rows: Vec<StockRow> = (0..SERVER_SKUS)
        .map(|sku| StockRow {
            sku: format!("SKU-{sku}"),
            location: "MX-01".into(),
            on_hand: ON_HAND,
            safety_stock: None,
        })
        .collect();
    for (chunk, rows) in rows.chunks(SEED_ROWS_PER_REQUEST).enumerate() {
        let request = Request::ImportRows {
            import_id: "seed".into(),
            first_line: (chunk * SEED_ROWS_PER_REQUEST) as u64,
            rows: rows.to_vec(),
        };
        client.call_one(request).await.expect("stage the stock");
    }
    let committed = client.call_one(Request::ImportCommit { import_id: "seed".into() }).await.expect("import");
    assert!(matches!(committed, Response::ImportCommitted { .. }), "{committed:?}");
    client.close().await;
}

/// Next reservation id, shared by every run so that no id repeats.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// One call at a time on one connection for `secs`; returns p50 and p99 in µs.
async fn low_load(config: &ClientConfig, request: impl Fn(u64) -> Request, secs: f64) -> (u64, u64) {
    let client = Client::connect(config).await.expect("connect");
    let mut histogram = hdrhistogram::Histogram::<u64>::new(3).expect("3 significant digits");
    let until = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < until {
        let started = Instant::now();
        let response = client.call_one(request(NEXT_ID.fetch_add(1, Ordering::Relaxed))).await.expect("a response");
        assert!(!matches!(response, Response::Error { .. }), "{response:?}");
        histogram.saturating_record(started.elapsed().as_micros() as u64);
    }
    client.close().await;
    (histogram.value_at_quantile(0.5), histogram.value_at_quantile(0.99))
}

/// `plan.connections` connections with `plan.in_flight` frames of `per_frame`
/// requests made by `request` in flight each, for `plan.secs`. Every response must
/// hold its units.
async fn throughput(
    config: &ClientConfig,
    plan: &ServerPlan,
    per_frame: usize,
    request: fn(u64) -> Request,
) -> Throughput {
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..plan.connections {
        clients.push(Arc::new(Client::connect(config).await.expect("connect")));
    }

    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in &clients {
        for _ in 0..plan.in_flight {
            let (client, stop) = (Arc::clone(client), Arc::clone(&stop));
            tasks.push(tokio::spawn(async move {
                let mut histogram =
                    hdrhistogram::Histogram::<u64>::new_with_bounds(1, FRAME_US_MAX, 3).expect("valid bounds");
                let mut reserves = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let first = NEXT_ID.fetch_add(per_frame as u64, Ordering::Relaxed);
                    let requests = (first..first + per_frame as u64).map(request).collect();
                    let sent = Instant::now();
                    let responses = client.call(requests).await.expect("a response frame");
                    histogram.saturating_record(sent.elapsed().as_micros() as u64);
                    for response in &responses {
                        let held = match response {
                            Response::Reserved { .. } => true,
                            Response::ReservedRouted(outcome) => outcome.held,
                            _ => false,
                        };
                        assert!(held, "{response:?}");
                    }
                    reserves += responses.len() as u64;
                }
                (reserves, histogram)
            }));
        }
    }
    tokio::time::sleep(Duration::from_secs_f64(plan.secs)).await;
    stop.store(true, Ordering::Relaxed);

    let mut reserves = 0;
    let mut histogram = hdrhistogram::Histogram::<u64>::new_with_bounds(1, FRAME_US_MAX, 3).expect("valid bounds");
    for task in tasks {
        let (count, part) = task.await.expect("a client task panicked");
        reserves += count;
        histogram.add(part).expect("histograms of the same precision add");
    }
    let elapsed = started.elapsed().as_secs_f64();
    for client in clients {
        if let Some(client) = Arc::into_inner(client) {
            client.close().await;
        }
    }
    Throughput {
        reserves_per_frame: per_frame,
        reserves_per_sec: reserves as f64 / elapsed,
        frames_per_sec: histogram.len() as f64 / elapsed,
        frame_us_p50: histogram.value_at_quantile(0.5),
        frame_us_p99: histogram.value_at_quantile(0.99),
    }
}

/// Renders the figures as lines of text.
pub fn render(figures: &ServerFigures) -> String {
    let plan = &figures.plan;
    let mut out = format!(
        "server on loopback ({:?} runtime, durable sync mode), {} connections x {} frames in flight:\n",
        plan.runtime, plan.connections, plan.in_flight
    );
    out.push_str(&format!(
        "  low load round trip: ping p50 {} us, p99 {} us; reserve p50 {} us, p99 {} us\n",
        figures.ping_us_p50, figures.ping_us_p99, figures.reserve_us_p50, figures.reserve_us_p99
    ));
    for (kind, run) in [("", &figures.single), ("", &figures.batched), ("routed ", &figures.routed_batched)] {
        out.push_str(&format!(
            "  {} {kind}reserve(s) per frame: {:.0} reserves/s, {:.0} frames/s, frame p50 {} us, p99 {} us\n",
            run.reserves_per_frame, run.reserves_per_sec, run.frames_per_sec, run.frame_us_p50, run.frame_us_p99
        ));
    }
    out
}

/// Renders the figures as the capacity report's `network` section: a table of the
/// throughput runs, each beside its target.
pub fn render_table(figures: &ServerFigures) -> String {
    let plan = &figures.plan;
    let mut out = format!(
        "network: server on loopback ({:?} runtime, durable sync mode), {} connections x {} frames in flight, \
         {:.1} s per run\n",
        plan.runtime, plan.connections, plan.in_flight, plan.secs
    );
    out.push_str(&format!(
        "round trip at low load: ping p50 {} us, p99 {} us; durable reserve p50 {} us, p99 {} us\n",
        figures.ping_us_p50, figures.ping_us_p99, figures.reserve_us_p50, figures.reserve_us_p99
    ));
    out.push_str(&format!(
        "{:<32} {:>12} {:>14} {:>10} {:>13} {:>13}\n",
        "network run", "reserves/s", "target", "frames/s", "frame p50 us", "frame p99 us"
    ));
    let runs = [
        ("reserve", &figures.single, SINGLE_RESERVES_PER_SEC_TARGET_MIN),
        ("reserve", &figures.batched, BATCHED_RESERVES_PER_SEC_TARGET_MIN),
        ("routed reserve", &figures.routed_batched, ROUTED_RESERVES_PER_SEC_TARGET_MIN),
    ];
    for (kind, run, target_min) in runs {
        let goal = if run.reserves_per_sec >= target_min { ">=" } else { "SHORT" };
        out.push_str(&format!(
            "{:<32} {:>12} {:>14} {:>10.0} {:>13} {:>13}\n",
            format!("{kind}, {} per frame", run.reserves_per_frame),
            format!("{:.2}M", run.reserves_per_sec / 1e6),
            format!("{goal} {:.2}M", target_min / 1e6),
            run.frames_per_sec,
            run.frame_us_p50,
            run.frame_us_p99
        ));
    }
    out
}
