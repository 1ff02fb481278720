//! A real server on loopback, driven by the real client: every request kind, routing
//! and postal codes, inbound supply and backorders, roles, limits, malformed bytes, and
//! restarts that keep the state.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use promesa_client::{Client, ClientConfig, ClientError, error_code};
use promesa_protocol::frame::{
    LENGTH_PREFIX_BYTES, access_client_frame, access_server_frame, encode_client_frame, payload_from, payload_len,
};
use promesa_protocol::{
    ArchivedResponse, ClientFrame, Destination, DestinationSource, ErrorCode, FrameError, FrameReader, LineQuantity,
    LocationRouting, LocationRow, LocationWithRouting, MethodTerms, POLICY_BACKORDER, Payload, PostalCodeRow, Request,
    RequestEnvelope, ReserveLine, Response, RouteLine, RouteMethod, RouteOrder, StockRow, SupplyOutcome,
    TimedAvailability, Units,
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

/// Returns a one-line order shipped cheapest, split into at most two shipments.
fn sku_order(destination: Destination, sku: &str, quantity: u64) -> RouteOrder {
    RouteOrder {
        channel: None,
        destination,
        lines: vec![RouteLine { sku: sku.to_owned(), quantity }],
        method: RouteMethod::ShipCheapest,
        max_shipments: 2,
        allow_partial: false,
        allow_backorder: false,
    }
}

fn position_read(sku: &str, location: &str) -> Request {
    Request::Availability { sku: sku.to_owned(), location: location.to_owned(), channel: None }
}

/// Reads the units reserved at a position.
async fn reserved(client: &Client, sku: &str, location: &str) -> u64 {
    match client.call_one(position_read(sku, location)).await.unwrap() {
        Response::Availability(read) => read.reserved,
        other => panic!("availability of {sku}@{location}: {other:?}"),
    }
}

/// Upserts a Mexico City store that ships and offers pickup, six hours behind UTC with
/// an hour of handling, and a Monterrey warehouse that only ships. LAMP and BOOK are
/// stocked at both, but too few at either for the orders of the tests.
async fn seed_routing(client: &Client) {
    let store = LocationWithRouting {
        location: LocationRow {
            code: "MX-CDMX-01".into(),
            kind: 1,
            lat: 19.4326,
            lon: -99.1332,
            methods: 3,
            daily_capacity: 0,
            active: true,
        },
        routing: LocationRouting {
            utc_offset_minutes: -360,
            terms: [MethodTerms { handling_minutes: 60, cutoff_minute: 18 * 60 }; 5],
            ..LocationRouting::default()
        },
    };
    let warehouse = LocationWithRouting {
        location: LocationRow {
            code: "MX-MTY-DC".into(),
            kind: 0,
            lat: 25.6866,
            lon: -100.3161,
            methods: 1,
            daily_capacity: 0,
            active: true,
        },
        routing: LocationRouting::default(),
    };
    let (created, replaced) = client.upsert_locations_with_routing(vec![store, warehouse]).await.unwrap();
    assert_eq!((created, replaced), (2, 0));
    let mut stock = Vec::new();
    for (sku, location, on_hand) in [
        ("TV-55", "MX-CDMX-01", 2),
        ("TV-55", "MX-MTY-DC", 10),
        ("LAMP", "MX-CDMX-01", 2),
        ("LAMP", "MX-MTY-DC", 2),
        ("BOOK", "MX-CDMX-01", 1),
        ("BOOK", "MX-MTY-DC", 1),
    ] {
        stock.push(Request::SetOnHand { sku: sku.into(), location: location.into(), on_hand });
    }
    for response in client.call(stock).await.unwrap() {
        assert!(matches!(response, Response::StockChanged { .. }), "{response:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_quotes_holds_and_replays() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path(), None).await;
    let client = admin(&running, dir.path()).await;
    seed_routing(&client).await;
    let near_store = Destination::Point { lat: 19.42, lon: -99.16 };

    // A quote plans from the nearest store with the units and holds nothing.
    let plan = client.quote(sku_order(near_store.clone(), "TV-55", 1)).await.unwrap();
    assert_eq!(plan.destination.source, DestinationSource::Point);
    assert_eq!(plan.shipments.len(), 1, "{plan:?}");
    let shipment = &plan.shipments[0];
    assert_eq!((shipment.location.as_str(), shipment.method), ("MX-CDMX-01", 0));
    assert_eq!((shipment.lines[0].sku.as_str(), shipment.lines[0].quantity), ("TV-55", 1));
    assert_eq!(shipment.lines[0].reservation_line, None);
    assert!(shipment.distance_km < 10.0, "{plan:?}");
    assert!(plan.unfilled.is_empty(), "{plan:?}");
    assert_eq!(plan.explanations.len(), 1);
    assert!(plan.explanations[0].starts_with("MX-CDMX-01: "), "{:?}", plan.explanations);
    assert_eq!(reserved(&client, "TV-55", "MX-CDMX-01").await, 0);

    // A channel limited to the warehouse routes there.
    assert!(client.upsert_channel("web", false, Some(vec!["MX-MTY-DC".into()])).await.unwrap());
    let web_order = RouteOrder { channel: Some("web".into()), ..sku_order(near_store.clone(), "TV-55", 1) };
    let plan = client.quote(web_order).await.unwrap();
    assert_eq!(plan.shipments[0].location, "MX-MTY-DC", "{plan:?}");
    let unknown = client.upsert_channel("web", false, Some(vec!["MX-NOWHERE".into()])).await.err().unwrap();
    assert!(
        matches!(&unknown, ClientError::Rejected { code, message }
            if *code == ErrorCode::NotFound.number() && message.contains("MX-NOWHERE")),
        "{unknown}"
    );

    // Four lamps need both locations: the routed reserve holds two shipments.
    let lamps = sku_order(near_store.clone(), "LAMP", 4);
    let held = client.reserve_routed("routed-1", 900_000, lamps.clone()).await.unwrap();
    assert!(held.held, "{held:?}");
    assert!(!held.replayed, "{held:?}");
    assert_eq!(held.plan.shipments.len(), 2, "{held:?}");
    let reservation_lines: Vec<Option<u32>> =
        held.plan.shipments.iter().flat_map(|shipment| &shipment.lines).map(|line| line.reservation_line).collect();
    assert_eq!(reservation_lines, vec![Some(0), Some(1)]);
    assert_eq!(reserved(&client, "LAMP", "MX-CDMX-01").await, 2);
    assert_eq!(reserved(&client, "LAMP", "MX-MTY-DC").await, 2);

    // The same id and order returns the first plan without holding again.
    let replayed = client.reserve_routed("routed-1", 900_000, lamps.clone()).await.unwrap();
    assert!(replayed.held, "{replayed:?}");
    assert!(replayed.replayed, "{replayed:?}");
    assert_eq!(replayed.plan.shipments, held.plan.shipments);
    assert_eq!(replayed.deadline_ms, held.deadline_ms);
    assert!(replayed.plan.explanations.is_empty(), "{replayed:?}");
    assert_eq!(reserved(&client, "LAMP", "MX-CDMX-01").await, 2);
    let reused = client.reserve_routed("routed-1", 900_000, sku_order(near_store.clone(), "LAMP", 3)).await;
    assert!(
        matches!(&reused, Err(ClientError::Rejected { code, .. }) if *code == ErrorCode::IdReused.number()),
        "{reused:?}"
    );
    let Response::Reservation(Some(view)) =
        client.call_one(Request::Get { reservation_id: "routed-1".into() }).await.unwrap()
    else {
        panic!("routed-1 is not known");
    };
    let locations: Vec<&str> = view.lines.iter().map(|line| line.location.as_str()).collect();
    assert_eq!(locations, ["MX-CDMX-01", "MX-MTY-DC"]);

    // Two books fit only in two shipments: with one allowed, nothing is held.
    let books = RouteOrder { max_shipments: 1, ..sku_order(near_store.clone(), "BOOK", 2) };
    let refused = client.reserve_routed("routed-2", 900_000, books).await.unwrap();
    assert!(!refused.held, "{refused:?}");
    assert!(!refused.replayed, "{refused:?}");
    assert!(refused.plan.shipments.is_empty(), "{refused:?}");
    assert_eq!(refused.plan.unfilled.len(), 1, "{refused:?}");
    assert_eq!((refused.plan.unfilled[0].unfilled, refused.plan.unfilled[0].reason), (2, 3));
    assert_eq!(reserved(&client, "BOOK", "MX-CDMX-01").await, 0);
    assert_eq!(reserved(&client, "BOOK", "MX-MTY-DC").await, 0);
    let missing = client.call_one(Request::Get { reservation_id: "routed-2".into() }).await.unwrap();
    assert_eq!(missing, Response::Reservation(None));

    // Pickup at a store that does not stock the order is not an error but unfilled.
    let pickup = RouteOrder {
        method: RouteMethod::PickupAt { store: "MX-CDMX-01".into(), curbside: false },
        ..sku_order(near_store.clone(), "TV-55", 5)
    };
    let plan = client.quote(pickup).await.unwrap();
    assert!(plan.shipments.is_empty(), "{plan:?}");
    assert_eq!(plan.unfilled[0].reason, 4, "{plan:?}");
    let unknown_store = RouteOrder {
        method: RouteMethod::PickupAt { store: "MX-NOWHERE".into(), curbside: false },
        ..sku_order(near_store, "TV-55", 1)
    };
    let unknown = client.call_one(Request::Quote { order: unknown_store }).await.unwrap();
    assert_eq!(error_code(&unknown), Some(ErrorCode::NotFound), "{unknown:?}");

    let Response::Stats(figures) = client.call_one(Request::Stats).await.unwrap() else { panic!() };
    for name in ["latency_us.quote.count", "latency_us.reserve_routed.count"] {
        assert!(figures.iter().any(|figure| figure.name == name && figure.value > 0), "no {name} in {figures:?}");
    }

    client.close().await;
    running.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postal_codes_resolve_with_region_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path(), None).await;
    let client = admin(&running, dir.path()).await;
    seed_routing(&client).await;

    let row = |postal_code: &str, lat: f64, lon: f64| PostalCodeRow {
        country: "MX".into(),
        postal_code: postal_code.into(),
        lat,
        lon,
    };
    let rows = vec![row("06700", 19.4195, -99.1627), row("06*", 19.4326, -99.1332), row("64000", 25.6714, -100.309)];
    assert_eq!(client.upsert_postal_codes(rows).await.unwrap(), 3);

    let postal = |postal_code: &str| Destination::Postal { country: "mx".into(), postal_code: postal_code.into() };
    let exact = client.quote(sku_order(postal("06700"), "TV-55", 1)).await.unwrap();
    assert_eq!(exact.destination.source, DestinationSource::PostalCode);
    assert_eq!((exact.destination.lat, exact.destination.lon), (19.4195, -99.1627));
    let region = client.quote(sku_order(postal("06600"), "TV-55", 1)).await.unwrap();
    assert_eq!(region.destination.source, DestinationSource::PostalRegion { prefix: "06".into() });
    assert_eq!(region.shipments[0].location, "MX-CDMX-01");
    let north = client.quote(sku_order(postal("64000"), "TV-55", 1)).await.unwrap();
    assert_eq!(north.shipments[0].location, "MX-MTY-DC", "{north:?}");

    let unknown = client.call_one(Request::Quote { order: sku_order(postal("99999"), "TV-55", 1) }).await.unwrap();
    let Response::Error { code, message } = &unknown else { panic!("{unknown:?}") };
    assert_eq!(ErrorCode::from_number(*code), Some(ErrorCode::UnknownDestination));
    assert!(message.contains("mx:99999 is not known"), "{message}");

    // A bad row rejects the whole request and names its index.
    let bad = vec![row("01000", 19.35, -99.19), PostalCodeRow { country: "MEX".into(), ..row("01010", 19.3, -99.2) }];
    let rejected = client.upsert_postal_codes(bad).await.err().unwrap();
    assert!(
        matches!(&rejected, ClientError::Rejected { code, message }
            if *code == ErrorCode::InvalidArgument.number() && message.starts_with("rows[1]: country \"MEX\"")),
        "{rejected}"
    );
    assert_eq!(client.upsert_postal_codes(Vec::new()).await.unwrap(), 3, "the bad request added no row");

    let too_many = vec![row("06700", 19.4195, -99.1627); 20_001];
    let Response::Error { code, message } =
        client.call_one(Request::UpsertPostalCodes { rows: too_many }).await.unwrap()
    else {
        panic!("20,001 rows were accepted");
    };
    assert_eq!(ErrorCode::from_number(code), Some(ErrorCode::LimitExceeded));
    assert_eq!(message, "rows is 20001, over the limit postal_rows_per_request_max = 20000");

    // The table and a routed reservation made through it survive a restart.
    let held = client.reserve_routed("postal-1", 900_000, sku_order(postal("06600"), "TV-55", 1)).await.unwrap();
    assert!(held.held, "{held:?}");
    client.close().await;
    running.shut_down().await;

    let running = start(dir.path(), None).await;
    let client = admin(&running, dir.path()).await;
    let region = client.quote(sku_order(postal("06600"), "TV-55", 1)).await.unwrap();
    assert_eq!(region.destination.source, DestinationSource::PostalRegion { prefix: "06".into() });
    let replayed = client.reserve_routed("postal-1", 900_000, sku_order(postal("06600"), "TV-55", 1)).await.unwrap();
    assert!(replayed.replayed, "{replayed:?}");
    assert!(replayed.held, "{replayed:?}");
    assert_eq!(replayed.plan.shipments, held.plan.shipments);
    assert_eq!(reserved(&client, "TV-55", "MX-CDMX-01").await, 1);
    client.close().await;
    running.shut_down().await;
}

/// Milliseconds in a day.
const DAY_MS: u64 = 86_400_000;

/// Returns the server's clock, which supply times in this test count from.
async fn server_now_ms(client: &Client) -> u64 {
    match client.call_one(Request::Ping).await.unwrap() {
        Response::Pong { now_ms } => now_ms,
        other => panic!("ping: {other:?}"),
    }
}

/// Returns the error code and message of a rejected call.
fn rejection(error: ClientError) -> (Option<ErrorCode>, String) {
    match error {
        ClientError::Rejected { code, message } => (ErrorCode::from_number(code), message),
        other => panic!("expected a rejection, got {other}"),
    }
}

/// Starts a server with an admin token and a read token, and returns it with a client
/// for each.
async fn start_with_reader(data: &Path, tokens: &Path) -> (Running, Client, Client) {
    let running = start(data, Some(tokens)).await;
    let config = |token: &str| ClientConfig {
        addr: running.addr,
        server_name: "localhost".into(),
        ca: data.join("dev-cert.pem"),
        token: token.to_owned(),
        streams: 2,
        timeout_ms: 10_000,
    };
    let admin = Client::connect(&config("admin-token")).await.expect("the admin connects");
    let reader = Client::connect(&config("reader-token")).await.expect("the reader connects");
    (running, admin, reader)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_supply_backorders_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "admin-token admin\nreader-token read\n").unwrap();
    std::fs::set_permissions(&tokens, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let data = dir.path().join("data");
    let (running, admin, reader) = start_with_reader(&data, &tokens).await;
    seed(&admin).await;
    let start_ms = server_now_ms(&admin).await;
    let day = |days: u64| start_ms + days * DAY_MS;

    // A receipt of 500 pre-order units, none in stock, arriving on day 30.
    let added = admin.add_supply("po-1", "PRE-1", "MX-01", 500, day(30)).await.unwrap();
    assert_eq!(added, SupplyOutcome { replayed: false, inbound: 500, backordered: 0 });
    let again = admin.add_supply("po-1", "PRE-1", "MX-01", 500, day(30)).await.unwrap();
    assert!(again.replayed, "{again:?}");
    let reused = admin.add_supply("po-1", "PRE-1", "MX-01", 400, day(30)).await.unwrap_err();
    assert_eq!(rejection(reused).0, Some(ErrorCode::IdReused));

    let by_day_10 = reader.availability_by("PRE-1", "MX-01", None, day(10)).await.unwrap();
    assert_eq!(by_day_10, TimedAvailability { atp: 0, inbound_by: 0, backordered: 0, available: 0 });
    let by_day_30 = reader.availability_by("PRE-1", "MX-01", None, day(30)).await.unwrap();
    assert_eq!(by_day_30, TimedAvailability { atp: 0, inbound_by: 500, backordered: 0, available: 500 });
    assert_eq!(reader.earliest_available("PRE-1", "MX-01", None, 500).await.unwrap(), Some(day(30)));
    assert_eq!(reader.earliest_available("PRE-1", "MX-01", None, 501).await.unwrap(), None);

    // Moving the receipt to day 40 changes both reads.
    let moved = admin.move_supply("po-1", day(40)).await.unwrap();
    assert_eq!((moved.inbound, moved.backordered), (500, 0));
    assert_eq!(reader.availability_by("PRE-1", "MX-01", None, day(30)).await.unwrap().available, 0);
    assert_eq!(reader.availability_by("PRE-1", "MX-01", None, day(40)).await.unwrap().available, 500);
    assert_eq!(reader.earliest_available("PRE-1", "MX-01", None, 500).await.unwrap(), Some(day(40)));

    // A backorder reserve: the line in stock is held, the pre-order line backordered.
    let lines = vec![
        ReserveLine { sku: "SKU-1".into(), location: "MX-01".into(), quantity: 2 },
        ReserveLine { sku: "PRE-1".into(), location: "MX-01".into(), quantity: 120 },
    ];
    let outcome = admin.reserve_with_policy("pre-order-1", None, lines, POLICY_BACKORDER, 900_000).await.unwrap();
    assert_eq!(outcome.lines[0].status, 0, "line 0 is held: {outcome:?}");
    assert_eq!(outcome.lines[1].status, 7, "line 1 is backordered: {outcome:?}");
    assert_eq!(outcome.lines[1].held, 120);
    let by_day_40 = reader.availability_by("PRE-1", "MX-01", None, day(40)).await.unwrap();
    assert_eq!(by_day_40, TimedAvailability { atp: 0, inbound_by: 500, backordered: 120, available: 380 });
    let Response::Availability(stock) = reader.call_one(position_read("PRE-1", "MX-01")).await.unwrap() else {
        panic!("PRE-1 at MX-01 has no availability");
    };
    assert_eq!((stock.on_hand, stock.reserved, stock.atp), (0, 0, 0), "ATP now never counts inbound units");

    // A backordered line cannot ship, and its receipt cannot be cancelled.
    let fulfil = Request::Fulfil {
        reservation_id: "pre-order-1".into(),
        op_id: "f1".into(),
        units: Units::Lines(vec![LineQuantity { line: 1, quantity: 1 }]),
    };
    let Response::Error { code, message } = admin.call_one(fulfil).await.unwrap() else {
        panic!("a backordered line was fulfilled");
    };
    assert_eq!(ErrorCode::from_number(code), Some(ErrorCode::Conflict), "{message}");
    assert!(message.contains("line 1 is backordered"), "{message}");
    let (code, message) = rejection(admin.cancel_supply("po-1").await.unwrap_err());
    assert_eq!(code, Some(ErrorCode::Conflict), "{message}");
    assert!(message.contains("120 backordered"), "{message}");

    // Supply changes need the admin role; the reads need only read.
    let (code, message) = rejection(reader.add_supply("po-2", "PRE-1", "MX-01", 5, day(50)).await.unwrap_err());
    assert_eq!(code, Some(ErrorCode::Forbidden), "{message}");
    assert_eq!(message, "this request needs the admin role; the token has the read role");
    let (code, _) = rejection(admin.move_supply("po-404", day(50)).await.unwrap_err());
    assert_eq!(code, Some(ErrorCode::NotFound));
    let (code, message) = rejection(admin.add_supply("po-3", "PRE-1", "MX-01", 0, day(50)).await.unwrap_err());
    assert_eq!(code, Some(ErrorCode::InvalidArgument), "{message}");
    assert!(message.contains("quantity 0 is outside 1..=4294967295"), "{message}");

    let Response::Stats(figures) = admin.call_one(Request::Stats).await.unwrap() else { panic!("no stats") };
    for operation in ["add_supply", "move_supply", "cancel_supply", "availability_by", "earliest_available"] {
        let name = format!("latency_us.{operation}.count");
        assert!(figures.iter().any(|figure| figure.name == name && figure.value > 0), "no figure {name}");
    }

    reader.close().await;
    admin.close().await;
    running.shut_down().await;

    // The receipt, its new arrival and the backorder survive a restart.
    let (running, admin, reader) = start_with_reader(&data, &tokens).await;
    let by_day_40 = reader.availability_by("PRE-1", "MX-01", None, day(40)).await.unwrap();
    assert_eq!(by_day_40, TimedAvailability { atp: 0, inbound_by: 500, backordered: 120, available: 380 });
    assert_eq!(reader.earliest_available("PRE-1", "MX-01", None, 380).await.unwrap(), Some(day(40)));
    let Response::Reservation(Some(view)) =
        reader.call_one(Request::Get { reservation_id: "pre-order-1".into() }).await.unwrap()
    else {
        panic!("pre-order-1 was lost in the restart");
    };
    assert_eq!((view.policy, view.partial), (POLICY_BACKORDER, false));
    assert_eq!((view.lines[1].status, view.lines[1].held), (7, 120));
    let (code, _) = rejection(admin.cancel_supply("po-1").await.unwrap_err());
    assert_eq!(code, Some(ErrorCode::Conflict), "the backorder still needs the receipt");

    // Once the backorder is released, the receipt can be cancelled.
    let release = Request::Release {
        reservation_id: "pre-order-1".into(),
        op_id: "r1".into(),
        units: Units::Lines(vec![LineQuantity { line: 1, quantity: 120 }]),
        from: 1,
    };
    let released = admin.call_one(release).await.unwrap();
    assert!(matches!(&released, Response::Operated { moved, .. } if moved == &[0, 120]), "{released:?}");
    let cancelled = admin.cancel_supply("po-1").await.unwrap();
    assert_eq!(cancelled, SupplyOutcome { replayed: false, inbound: 0, backordered: 0 });
    assert_eq!(reader.availability_by("PRE-1", "MX-01", None, day(40)).await.unwrap().available, 0);

    reader.close().await;
    admin.close().await;
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

    // A quote is a read; a routed reserve needs the reserve role and holds nothing.
    let order = sku_order(Destination::Point { lat: 19.42, lon: -99.16 }, "SKU-1", 2);
    let plan = reader.quote(order.clone()).await.expect("a reader may quote");
    assert_eq!(plan.shipments[0].location, "MX-01");
    let refused = reader.reserve_routed("routed-9", 60_000, order.clone()).await.expect_err("a reader may not hold");
    assert!(
        matches!(&refused, ClientError::Rejected { code, message }
            if *code == ErrorCode::Forbidden.number() && message.contains("needs the reserve role")),
        "{refused}"
    );
    let Response::Availability(read) = reader.call_one(availability()).await.unwrap() else { panic!() };
    assert_eq!(read.reserved, 0, "the refused routed reserve held nothing");
    let postal = reader
        .call_one(Request::UpsertPostalCodes {
            rows: vec![PostalCodeRow { country: "MX".into(), postal_code: "06700".into(), lat: 19.4, lon: -99.1 }],
        })
        .await
        .unwrap();
    assert_eq!(error_code(&postal), Some(ErrorCode::Forbidden), "{postal:?}");

    let too_many_route_lines =
        RouteOrder { lines: (0..65).map(|_| RouteLine { sku: "SKU-1".into(), quantity: 1 }).collect(), ..order };
    let Response::Error { code, message } =
        admin.call_one(Request::Quote { order: too_many_route_lines }).await.unwrap()
    else {
        panic!("an order of 65 lines was planned");
    };
    assert_eq!(ErrorCode::from_number(code), Some(ErrorCode::LimitExceeded));
    assert_eq!(message, "lines is 65, over the limit route_lines_max = 64");

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
        vec![Request::UpsertChannel { code: "fz-web".into(), may_sell_safety_stock: true, locations: None }],
        vec![Request::UpsertChannel {
            code: "fz-store".into(),
            may_sell_safety_stock: false,
            locations: Some(vec![location.clone()]),
        }],
        vec![Request::UpsertLocationsWithRouting {
            locations: vec![LocationWithRouting {
                location: LocationRow {
                    code: location.clone(),
                    kind: 1,
                    lat: 20.6597,
                    lon: -103.3496,
                    methods: 3,
                    daily_capacity: 0,
                    active: true,
                },
                routing: LocationRouting { utc_offset_minutes: -360, ..LocationRouting::default() },
            }],
        }],
        vec![Request::UpsertPostalCodes {
            rows: vec![
                PostalCodeRow { country: "MX".into(), postal_code: "44100".into(), lat: 20.67, lon: -103.35 },
                PostalCodeRow { country: "MX".into(), postal_code: "44*".into(), lat: 20.66, lon: -103.34 },
            ],
        }],
        vec![Request::Quote {
            order: fuzz_order(Destination::Postal { country: "MX".into(), postal_code: "44600".into() }),
        }],
        vec![Request::ReserveRouted {
            reservation_id: "fz-routed-1".into(),
            ttl_ms: 60_000,
            order: fuzz_order(Destination::Point { lat: 20.7, lon: -103.4 }),
        }],
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
        vec![Request::AddSupply {
            receipt_id: "fz-po-1".into(),
            sku: sku.clone(),
            location: location.clone(),
            quantity: 50,
            arrival_ms: 4_102_444_800_000,
        }],
        vec![Request::MoveSupply { receipt_id: "fz-po-1".into(), arrival_ms: 4_103_049_600_000 }],
        vec![
            Request::AvailabilityBy {
                sku: sku.clone(),
                location: location.clone(),
                channel: None,
                by_ms: 4_103_049_600_000,
            },
            Request::EarliestAvailable {
                sku: sku.clone(),
                location: location.clone(),
                channel: Some("fz-web".into()),
                quantity: 10,
            },
        ],
        vec![Request::ReserveWithPolicy {
            reservation_id: "fz-order-3".into(),
            channel: None,
            lines: vec![ReserveLine { sku: "FZ-300".into(), location: location.clone(), quantity: 2 }],
            policy: POLICY_BACKORDER,
            ttl_ms: 60_000,
        }],
        vec![Request::CancelSupply { receipt_id: "fz-po-2".into() }],
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

/// Returns a one-line order of the fuzz SKU, shipped cheapest.
fn fuzz_order(destination: Destination) -> RouteOrder {
    RouteOrder {
        channel: None,
        destination,
        lines: vec![RouteLine { sku: FUZZ_SKU.into(), quantity: 1 }],
        method: RouteMethod::ShipCheapest,
        max_shipments: 2,
        allow_partial: false,
        allow_backorder: false,
    }
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
        (
            Request::Quote {
                order: RouteOrder { max_shipments: 0, ..fuzz_order(Destination::Point { lat: 20.7, lon: -103.4 }) },
            },
            "max_shipments 0",
        ),
        (Request::Quote { order: fuzz_order(Destination::Point { lat: 91.0, lon: 0.0 }) }, "latitude 91"),
        (
            Request::ReserveRouted {
                reservation_id: "fz-routed-no-ttl".into(),
                ttl_ms: 0,
                order: fuzz_order(Destination::Point { lat: 20.7, lon: -103.4 }),
            },
            "ttl_ms 0",
        ),
        (
            Request::UpsertLocationsWithRouting {
                locations: vec![LocationWithRouting {
                    location: LocationRow {
                        code: "MX-MTY-09".into(),
                        kind: 0,
                        lat: 25.6866,
                        lon: -100.3161,
                        methods: 1,
                        daily_capacity: 0,
                        active: true,
                    },
                    routing: LocationRouting { utc_offset_minutes: 900, ..LocationRouting::default() },
                }],
            },
            "utc_offset_minutes 900",
        ),
        (
            Request::UpsertPostalCodes {
                rows: vec![PostalCodeRow { country: "MX".into(), postal_code: "01000".into(), lat: 95.0, lon: 0.0 }],
            },
            "lat 95",
        ),
        (
            Request::AddSupply {
                receipt_id: "fz-po-0".into(),
                sku: FUZZ_SKU.into(),
                location: FUZZ_LOCATION.into(),
                quantity: 0,
                arrival_ms: 4_102_444_800_000,
            },
            "quantity 0",
        ),
        (
            Request::ReserveWithPolicy {
                reservation_id: "fz-bad-policy".into(),
                channel: None,
                lines: vec![line(1)],
                policy: 9,
                ttl_ms: 60_000,
            },
            "policy 9",
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
