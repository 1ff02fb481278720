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
    });
    stop.send(true).unwrap();
    thread.join().unwrap();
}
