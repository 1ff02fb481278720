//! The load generator against a real server on loopback: a seeded catalogue, a mix of
//! requests bounded by count, the peer workload, and the JSON report.

use std::net::SocketAddr;
use std::time::Duration;

use promesa_client::ClientConfig;
use promesa_loadgen::draws::Distribution;
use promesa_loadgen::report::Operation;
use promesa_loadgen::run::{RunPlan, run};
use promesa_loadgen::seed::{SeedPlan, seed};
use promesa_server::{Server, ServerConfig};

/// Starts a server on its own thread and runtime; returns its address, its data folder
/// and the sender that stops it.
fn start_server() -> (SocketAddr, tempfile::TempDir, tokio::sync::watch::Sender<bool>, std::thread::JoinHandle<()>) {
    let data = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new(data.path().to_owned());
    config.listen = "127.0.0.1:0".parse().unwrap();
    let (addr_sent, addr_received) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(async move {
            let server = Server::start(config).expect("the server starts");
            addr_sent.send(server.local_addr()).unwrap();
            server.run(stopped).await.expect("the server shuts down cleanly");
        });
    });
    (addr_received.recv().unwrap(), data, stop, thread)
}

fn plan(mix: Vec<(Operation, u32)>, requests: u64) -> RunPlan {
    RunPlan {
        mix,
        skus: 40,
        locations: 2,
        distribution: Distribution::Zipf,
        zipf_exponent: 1.0,
        lines: 2,
        quantity: (1, 5),
        ttl_ms: 600_000,
        connections: 2,
        batch: 8,
        in_flight: 4,
        duration: None,
        requests: Some(requests),
        warmup: Duration::ZERO,
        seed: 7,
        progress: false,
        rate: None,
        ack_log: None,
    }
}

#[test]
fn mixes_and_the_peer_workload_run_against_a_real_server() {
    let (addr, data, stop, thread) = start_server();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let config = ClientConfig::local(addr, data.path()).unwrap();
    runtime.block_on(async {
        let seeded = seed(
            &config,
            &SeedPlan { skus: 40, locations: 2, on_hand: 1_000_000, rows_per_request: 25, progress: false },
        )
        .await
        .unwrap();
        assert_eq!(seeded, 80);

        // A mix bounded by count: every request answered once, none in error.
        let mix = vec![
            (Operation::Reserve, 50),
            (Operation::Confirm, 15),
            (Operation::Release, 15),
            (Operation::Fulfil, 5),
            (Operation::Availability, 15),
        ];
        let report = run(&config, &plan(mix, 2_000)).await.unwrap();
        assert_eq!(report.total.count, 2_000, "{}", report.table());
        assert_eq!(report.total.errors, 0, "{}", report.table());
        assert_eq!(report.total.refused, 0, "{}", report.table());
        for operation in ["reserve", "confirm", "release", "fulfil", "availability"] {
            assert!(report.operations.get(operation).is_some_and(|figures| figures.count > 0), "{operation}");
        }
        assert!(report.total.latency_us.p50 > 0);

        // The JSON report carries the keys scripts read.
        let json = serde_json::to_value(&report).unwrap();
        for key in ["ops_per_sec", "errors", "refused", "count"] {
            assert!(!json["total"][key].is_null(), "total.{key}: {json}");
            assert!(!json["operations"]["reserve"][key].is_null(), "reserve.{key}");
        }
        for key in ["p50", "p99", "p999"] {
            assert!(json["total"]["latency_us"][key].as_u64().is_some(), "latency_us.{key}");
        }
        assert_eq!(json["settings"]["distribution"], "zipf");

        // Open loop with an acknowledgement log: one line per change acknowledged.
        let log_path = data.path().join("acks.jsonl");
        let log = std::fs::File::create(&log_path).unwrap();
        let mut open = plan(vec![(Operation::Reserve, 60), (Operation::Release, 40)], 400);
        open.rate = Some(4_000.0);
        open.ack_log = Some(std::sync::Arc::new(std::sync::Mutex::new(std::io::BufWriter::new(log))));
        let report = run(&config, &open).await.unwrap();
        assert_eq!((report.total.count, report.total.errors), (400, 0), "{}", report.table());
        drop(open);
        let text = std::fs::read_to_string(&log_path).unwrap();
        let acks: Vec<serde_json::Value> = text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
        assert_eq!(acks.len(), 400);
        let releases = acks.iter().filter(|ack| ack["operation"] == "release").count() as u64;
        assert_eq!(releases, report.operations["release"].count);
        assert!(acks.iter().all(|ack| ack["reservation_id"].is_string() && ack["outcome"].is_object()));
        let hgrm = report.hgrm();
        assert!(hgrm.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)"), "{hgrm}");
        assert!(hgrm.contains("Total count    =          400"), "{hgrm}");

        // The peer workload: reserve only, one line at L-0, nothing refused with deep stock.
        let mut peer = plan(vec![(Operation::Reserve, 1)], 1_000);
        peer.lines = 1;
        peer.locations = 1;
        let report = run(&config, &peer).await.unwrap();
        assert_eq!(report.operations.len(), 1);
        assert_eq!((report.total.count, report.total.refused, report.total.errors), (1_000, 0, 0));

        // The server reports its memory, so the run gives the memory per open reservation.
        let memory = report.server_memory.as_ref().expect("the server reports its resident memory");
        assert_eq!(memory.open_reservations_after - memory.open_reservations_before, 1_000);
        assert!(memory.resident_bytes_after > 0);
        assert!(memory.bytes_per_open_reservation.is_some());
        assert!(report.table().contains(" bytes per reservation opened\n"), "{}", report.table());
    });
    stop.send(true).unwrap();
    thread.join().unwrap();
}

/// Seeds 40 SKUs at 2 locations, with deep stock, through the load generator's seed.
async fn seed_deep_stock(config: &ClientConfig) {
    let plan = SeedPlan { skus: 40, locations: 2, on_hand: 1_000_000, rows_per_request: 25, progress: false };
    assert_eq!(seed(config, &plan).await.unwrap(), 80);
}

/// Runs `body` against a fresh seeded server, then stops the server.
fn with_seeded_server(body: impl AsyncFnOnce(&ClientConfig, &std::path::Path)) {
    let (addr, data, stop, thread) = start_server();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let config = ClientConfig::local(addr, data.path()).unwrap();
    runtime.block_on(async {
        seed_deep_stock(&config).await;
        body(&config, data.path()).await;
    });
    stop.send(true).unwrap();
    thread.join().unwrap();
}

#[test]
fn routed_mix_runs_without_errors() {
    with_seeded_server(async |config, _| {
        let mix = vec![
            (Operation::Routed, 40),
            (Operation::Reserve, 10),
            (Operation::Confirm, 20),
            (Operation::Release, 20),
            (Operation::Fulfil, 10),
        ];
        let report = run(config, &plan(mix, 1_000)).await.unwrap();
        assert_eq!(report.total.count, 1_000, "{}", report.table());
        assert_eq!(report.total.errors, 0, "{}", report.table());
        assert_eq!(report.total.refused, 0, "{}", report.table());
        assert!(report.operations.get("routed").is_some_and(|figures| figures.count > 0), "{}", report.table());

        // Without reserve in the mix, confirms and releases that find no reservation make
        // routed reserves.
        let mix = vec![(Operation::Routed, 50), (Operation::Confirm, 25), (Operation::Release, 25)];
        let report = run(config, &plan(mix, 500)).await.unwrap();
        assert_eq!((report.total.count, report.total.errors), (500, 0), "{}", report.table());
        assert!(!report.operations.contains_key("reserve"), "{}", report.table());
        for operation in ["routed", "confirm", "release"] {
            assert!(report.operations.get(operation).is_some_and(|figures| figures.count > 0), "{operation}");
        }
    });
}

#[test]
fn report_json_has_the_schema_keys() {
    with_seeded_server(async |config, _| {
        let mix = vec![(Operation::Routed, 50), (Operation::Release, 30), (Operation::Availability, 20)];
        let report = run(config, &plan(mix, 400)).await.unwrap();
        let json = serde_json::to_value(&report).unwrap();

        let figures: Vec<(String, &serde_json::Value)> = ["routed", "release", "availability"]
            .into_iter()
            .map(|operation| (format!("operations.{operation}"), &json["operations"][operation]))
            .chain(std::iter::once(("total".to_owned(), &json["total"])))
            .collect();
        for (name, figures) in figures {
            assert!(figures["ops_per_sec"].as_f64().is_some_and(|rate| rate > 0.0), "{name}.ops_per_sec: {json}");
            assert_eq!(figures["errors"].as_u64(), Some(0), "{name}.errors");
            assert!(figures["errors_by_code"].is_object(), "{name}.errors_by_code");
            for key in ["p50", "p99", "p999"] {
                assert!(figures["latency_us"][key].as_u64().is_some_and(|us| us > 0), "{name}.latency_us.{key}");
            }
        }

        // Without a warm-up the per-second series contains every response of the run.
        let per_second = json["per_second"].as_array().unwrap();
        assert!(!per_second.is_empty());
        let counted: u64 = per_second.iter().map(|second| second["count"].as_u64().unwrap()).sum();
        assert_eq!(counted, 400);
        assert!(per_second.iter().all(|second| second["warmup"] == false && second["latency_us"]["p999"].is_u64()));
    });
}

#[test]
fn ack_log_request_ids_are_unique() {
    with_seeded_server(async |config, data| {
        let log_path = data.join("acks.jsonl");
        let log = std::fs::File::create(&log_path).unwrap();
        let mix =
            vec![(Operation::Reserve, 30), (Operation::Routed, 30), (Operation::Confirm, 20), (Operation::Release, 20)];
        let mut logged = plan(mix, 600);
        logged.ack_log = Some(std::sync::Arc::new(std::sync::Mutex::new(std::io::BufWriter::new(log))));
        let report = run(config, &logged).await.unwrap();
        assert_eq!((report.total.count, report.total.errors), (600, 0), "{}", report.table());
        drop(logged);

        let text = std::fs::read_to_string(&log_path).unwrap();
        let acks: Vec<serde_json::Value> = text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
        assert_eq!(acks.len(), 600);
        let ids: std::collections::HashSet<u64> =
            acks.iter().map(|ack| ack["request_id"].as_u64().expect("request_id is a number")).collect();
        assert_eq!(ids.len(), acks.len(), "request ids repeat");
        assert!(acks.iter().all(|ack| ack["reservation_id"].is_string() && ack["outcome"].is_object()));

        let routed: Vec<&serde_json::Value> = acks.iter().filter(|ack| ack["operation"] == "routed").collect();
        assert_eq!(routed.len() as u64, report.operations["routed"].count);
        for ack in routed {
            assert!(ack["outcome"]["held"].as_u64().is_some_and(|units| units > 0), "{ack}");
            assert!(ack["outcome"]["locations"].as_array().is_some_and(|codes| !codes.is_empty()), "{ack}");
        }
    });
}

#[test]
fn plot_of_a_short_run_is_an_svg() {
    with_seeded_server(async |config, data| {
        // Bounded by time, open loop at a low rate: a warm-up second and more.
        let mut timed = plan(vec![(Operation::Routed, 60), (Operation::Release, 40)], 0);
        timed.requests = None;
        timed.duration = Some(Duration::from_millis(2_500));
        timed.warmup = Duration::from_secs(1);
        timed.rate = Some(500.0);
        let report = run(config, &timed).await.unwrap();
        assert_eq!(report.total.errors, 0, "{}", report.table());
        assert!(report.per_second.first().is_some_and(|second| second.warmup), "{:?}", report.per_second);

        let path = data.join("run.svg");
        std::fs::write(&path, promesa_loadgen::plot::render_svg(&report.per_second).unwrap()).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg") || svg.starts_with("<?xml"), "{}", &svg[..80.min(svg.len())]);
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("<polyline") || svg.contains("<path"), "{svg}");
        assert!(svg.contains("latency per second"));
        assert!(svg.contains("throughput per second"));
    });
}
