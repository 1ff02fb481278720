//! The demo and the replay against real servers on loopback. A short demo runs with its
//! restart, comparison and oversell check. With the data folder in `PROMESA_DATA_DIR`,
//! the full Olist item table and the UCI invoices are replayed too.

use std::path::PathBuf;
use std::sync::Arc;

use promesa_client::{Client, ClientConfig};
use promesa_loadgen::dataset::{Dataset, Source};
use promesa_loadgen::demo::{DemoPlan, demo};
use promesa_loadgen::replay::{Fates, ReplayPlan, load_network, replay};
use promesa_server::{Server, ServerConfig};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn demo_short_run_recovers_same_state() {
    let folder = tempfile::tempdir().unwrap();
    let plan = DemoPlan {
        folder: Some(folder.path().to_owned()),
        orders_max: Some(1_500),
        connections: 2,
        in_flight: 8,
        seed: 3,
        progress: false,
    };
    eprintln!("demo seed {}", plan.seed);
    let report = runtime().block_on(demo(&plan)).unwrap();
    let text = report.text();
    assert!(report.passed(), "{text}\n{:?}", report.restart.differences);
    assert_eq!(report.replay.outcomes.orders, 1_500, "{text}");
    assert!(report.restart.snapshot.is_some(), "the restart loads a snapshot: {text}");
    assert!(report.restart.records_replayed > 0, "the restart replays log after the snapshot: {text}");
    assert_eq!(report.restart.reservations, report.replay.reservations.len());
    assert!(report.expired > 0, "{text}");
    assert_eq!(report.expired, report.replay.outcomes.expiring, "{text}");
    assert!(text.contains("\noversold    0 oversold"), "{text}");
    assert!(text.contains("state after the restart equals the state before"), "{text}");

    // The report is also on disk, with the figures a script reads.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(folder.path().join("report.json")).unwrap()).unwrap();
    for key in ["fill_rate", "order_fill_rate", "split_rate", "distance_km_mean", "distance_km_p95", "orders_per_sec"] {
        assert!(json["replay"][key].is_number(), "replay.{key}: {json}");
    }
    assert!(json["replay"]["operations"]["routed_reserve"]["latency_us"]["p99"].is_u64());
    assert_eq!(json["oversold_units"], 0);
    assert_eq!(json["restart"]["differences"].as_array().map(Vec::len), Some(0));

    // A second demo into the same folder is refused, naming the folder.
    let error = runtime().block_on(demo(&plan)).unwrap_err();
    assert!(error.ends_with("exists; the demo starts from an empty server folder"), "{error}");
}

#[test]
fn extract_malformed_rows_named_by_line() {
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(folder.path().join("locations.csv"), "code,kind,lat,lon,methods\nW1,warehouse,19.4,-99.1,ship\n")
        .unwrap();
    std::fs::write(folder.path().join("stock.csv"), "sku,location,on_hand\nA,W1,-3\n").unwrap();
    std::fs::write(
        folder.path().join("orders.csv"),
        "order_id,purchase_time,lat,lon,lines\n1,2020-01-01 10:00,19,-99,A:1\n",
    )
    .unwrap();
    let error = Dataset::load(&Source::Extract(folder.path().to_owned()), 1).unwrap_err();
    assert_eq!(error, "stock.csv line 2: on_hand \"-3\" is not a whole number");

    std::fs::write(folder.path().join("stock.csv"), "sku,location,on_hand\nA,W1,3\n").unwrap();
    std::fs::write(folder.path().join("orders.csv"), "order_id,purchase_time,lat,lon,lines\n1,tomorrow,19,-99,A:1\n")
        .unwrap();
    let error = Dataset::load(&Source::Extract(folder.path().to_owned()), 1).unwrap_err();
    assert_eq!(error, "orders.csv line 2: time \"tomorrow\" is not YYYY-MM-DD HH:MM");

    let cases = [
        ("", "orders.csv: the header is \"\"; it must be \"order_id,purchase_time,lat,lon,lines\""),
        (
            "id,when,lat,lon,lines\n",
            "orders.csv: the header is \"id,when,lat,lon,lines\"; it must be \"order_id,purchase_time,lat,lon,lines\"",
        ),
        ("order_id,purchase_time,lat,lon,lines\n", "orders.csv has no orders"),
        (
            "order_id,purchase_time,lat,lon,lines\n1,2020-01-01 10:00,95,-99,A:1\n",
            "orders.csv line 2: point 95, -99 is off the globe (latitude -90 to 90, longitude -180 to 180)",
        ),
        (
            "order_id,purchase_time,lat,lon,lines\n1,2020-01-01 10:00,19,-99,A:0\n",
            "orders.csv line 2: quantity \"0\" is not a whole number >= 1",
        ),
        (
            "order_id,purchase_time,lat,lon,lines\n1,2020-01-01 10:00,19,-99,A:1\n1,2020-01-01 11:00,19,-99,A:2\n",
            "orders.csv line 3: order id \"1\" appears on an earlier line too",
        ),
    ];
    for (orders, expected) in cases {
        std::fs::write(folder.path().join("orders.csv"), orders).unwrap();
        let error = Dataset::load(&Source::Extract(folder.path().to_owned()), 1).unwrap_err();
        assert_eq!(error, expected, "orders.csv {orders:?}");
    }

    // --data one folder too deep names what it takes.
    let error = Dataset::load(&Source::OlistItems(folder.path().to_owned()), 1).unwrap_err();
    assert!(error.ends_with("has no folder olist/: --data takes the data folder that holds olist/ and online_retail/"));
}

/// Replays the first orders of a data-folder source into a fresh server; returns the
/// dataset and the report's text.
fn replay_from_data(source: Source, orders: usize) -> (Dataset, promesa_loadgen::replay::ReplayReport) {
    let data = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new(data.path().to_owned());
    config.listen = "127.0.0.1:0".parse().unwrap();
    let (addr_sent, addr_received) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let thread = std::thread::spawn(move || {
        runtime().block_on(async move {
            let server = Server::start(config).expect("the server starts");
            addr_sent.send(server.local_addr()).unwrap();
            server.run(stopped).await.expect("the server shuts down cleanly");
        });
    });
    let addr = addr_received.recv().unwrap();

    let dataset = Arc::new(Dataset::load(&source, 5).unwrap());
    let plan = ReplayPlan {
        connections: 2,
        in_flight: 4,
        speed: None,
        ttl_ms: 600_000,
        expire_ttl_ms: 600_000,
        fates: Fates { confirm_pct: 30, fulfil_pct: 30, cancel_pct: 20, expire_pct: 0 },
        max_shipments: 3,
        allow_backorder: false,
        seed: 5,
        orders_max: Some(orders),
        id_prefix: "test-".to_owned(),
        progress: false,
    };
    let report = runtime()
        .block_on(async {
            let config = ClientConfig::local(addr, data.path()).unwrap();
            let client = Client::connect(&config).await.unwrap();
            load_network(&client, &dataset, "test-network").await.unwrap();
            client.close().await;
            replay(&config, Arc::clone(&dataset), &plan).await
        })
        .unwrap();
    stop.send(true).unwrap();
    thread.join().unwrap();
    (Arc::try_unwrap(dataset).unwrap(), report)
}

fn data_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("PROMESA_DATA_DIR").map(PathBuf::from);
    if dir.is_none() {
        eprintln!("PROMESA_DATA_DIR is not set: the replays of the full data are skipped");
    }
    dir
}

#[test]
fn replay_olist_items_labels_synthetic_customers() {
    let Some(data) = data_dir() else { return };
    let (dataset, report) = replay_from_data(Source::OlistItems(data), 2_000);
    assert!(dataset.orders.len() > 98_000, "{} orders", dataset.orders.len());
    assert!(dataset.notes[0].starts_with("SYNTHETIC PAIRING: "), "{:?}", dataset.notes);
    let synthetic = dataset.orders.iter().filter(|order| order.synthetic_customer).count();
    assert!(synthetic > dataset.orders.len() * 8 / 10, "{synthetic} synthetic of {}", dataset.orders.len());
    let outcomes = &report.outcomes;
    assert_eq!((outcomes.orders, outcomes.errors_total()), (2_000, 0), "{}", report.text());
    assert!(outcomes.orders_synthetic_customer > 0);
    assert!(report.text().contains("\nSYNTHETIC   "), "{}", report.text());
    assert!(report.fill_rate > 0.9, "{}", report.text());
}

#[test]
fn replay_uci_invoices_splits_long_ones() {
    let Some(data) = data_dir() else { return };
    let (dataset, report) = replay_from_data(Source::OnlineRetail(data), 2_000);
    assert!(dataset.orders.len() > 20_000, "{} orders", dataset.orders.len());
    assert!(dataset.orders.iter().all(|order| order.lines.len() <= promesa_protocol::limits::ROUTE_LINES_MAX));
    assert!(dataset.notes.iter().any(|note| note.contains("more than 64 lines")), "{:?}", dataset.notes);
    let outcomes = &report.outcomes;
    assert_eq!((outcomes.orders, outcomes.errors_total()), (2_000, 0), "{}", report.text());
    assert!(outcomes.units_from_stock > 0, "{}", report.text());
}
