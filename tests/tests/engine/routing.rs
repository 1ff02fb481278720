//! Routing: which locations fill an order, the cases the planner must get right, and
//! routed reservations through expiry, release and recovery.

use std::sync::Arc;

use promesa_engine::error::{ChannelError, RouteError};
use promesa_engine::routing::{
    ChannelSpec, Destination, DestinationSource, LocationRouting, METHOD_COUNT, Method, MethodTerms, PostalCodeRow,
    QuoteRequest, RouteLine, RouteMethod, RoutedReserveRequest, UnfilledReason,
};
use promesa_engine::wal::scan::ScanOptions;
use promesa_engine::wal::storage::{FsStorage, Storage};
use promesa_engine::wal::writer::LogConfig;
use promesa_engine::{
    Engine, EngineConfig, FulfilmentMethods, LineStatus, LocationKind, LocationSpec, ReleaseFrom, ReleaseRequest, Units,
};
use promesa_tests::{T0_MS, TTL_15_MIN_MS};

/// The Zócalo, Mexico City: where the test orders go.
const HOME: (f64, f64) = (19.4326, -99.1332);

/// Degrees of latitude per kilometre, near enough for placing test locations.
const DEGREES_PER_KM: f64 = 1.0 / 111.2;

/// Returns a location `km` kilometres north of `HOME`.
fn location(code: &str, kind: LocationKind, km: f64, methods: FulfilmentMethods) -> LocationSpec {
    LocationSpec {
        code: code.to_owned(),
        kind,
        lat: HOME.0 + km * DEGREES_PER_KM,
        lon: HOME.1,
        methods,
        daily_capacity: 0,
        active: true,
        routing: LocationRouting::default(),
    }
}

fn warehouse(code: &str, km: f64) -> LocationSpec {
    location(code, LocationKind::Warehouse, km, FulfilmentMethods::SHIP)
}

fn store(code: &str, km: f64) -> LocationSpec {
    location(code, LocationKind::Store, km, FulfilmentMethods::SHIP.with(FulfilmentMethods::PICKUP))
}

fn engine_with(locations: &[LocationSpec], stock: &[(&str, &str, u64)]) -> Engine {
    let engine = Engine::new(EngineConfig::default());
    for spec in locations {
        engine.upsert_location(spec).unwrap();
    }
    for &(sku, location, on_hand) in stock {
        engine.set_on_hand(sku, location, on_hand, T0_MS).unwrap();
    }
    engine
}

fn order(lines: &[(&str, u64)], method: RouteMethod, max_shipments: u32) -> QuoteRequest {
    QuoteRequest {
        channel: None,
        destination: Destination::Point { lat: HOME.0, lon: HOME.1 },
        lines: lines.iter().map(|&(sku, quantity)| RouteLine { sku: sku.to_owned(), quantity }).collect(),
        method,
        max_shipments,
        allow_partial: false,
        allow_backorder: false,
    }
}

fn routed(id: &str, order: QuoteRequest) -> RoutedReserveRequest {
    RoutedReserveRequest { reservation_id: id.to_owned(), ttl_ms: TTL_15_MIN_MS, order }
}

fn reserved(engine: &Engine, sku: &str, location: &str) -> u32 {
    engine.availability(sku, location, None, T0_MS).unwrap().reserved
}

/// (location, units of order line 0) per shipment.
fn placed(plan: &promesa_engine::routing::Plan) -> Vec<(String, u32)> {
    plan.shipments
        .iter()
        .map(|shipment| (shipment.location.clone(), shipment.lines.iter().map(|line| line.quantity).sum()))
        .collect()
}

#[test]
fn split_six_units_or_reject_without_splits() {
    let engine = engine_with(&[warehouse("L1", 5.0), warehouse("L2", 20.0)], &[("TV", "L1", 3), ("TV", "L2", 4)]);

    let refused = engine.reserve_routed(&routed("no-split", order(&[("TV", 6)], RouteMethod::ShipCheapest, 1)), T0_MS);
    let refused = refused.unwrap();
    assert!(!refused.held);
    assert!(refused.plan.shipments.is_empty());
    assert_eq!(refused.plan.unfilled.len(), 1);
    assert_eq!(refused.plan.unfilled[0].reason, UnfilledReason::ShipmentLimit);
    assert_eq!((reserved(&engine, "TV", "L1"), reserved(&engine, "TV", "L2")), (0, 0));
    assert!(engine.get("no-split", T0_MS).is_none(), "a refused routed reserve leaves no reservation");

    let split = engine.reserve_routed(&routed("split", order(&[("TV", 6)], RouteMethod::ShipCheapest, 2)), T0_MS);
    let split = split.unwrap();
    assert!(split.held, "{split:?}");
    assert_eq!(split.plan.shipments.len(), 2);
    let units: u32 = placed(&split.plan).iter().map(|(_, units)| units).sum();
    assert_eq!(units, 6);
    for (location, units) in placed(&split.plan) {
        let on_hand = if location == "L1" { 3 } else { 4 };
        assert!(units <= on_hand, "{location} ships {units} of {on_hand}");
        assert_eq!(reserved(&engine, "TV", &location), units);
    }
    let view = engine.get("split", T0_MS).unwrap();
    assert_eq!(view.lines.iter().map(|line| line.held).sum::<u32>(), 6);
}

#[test]
fn one_unit_at_each_of_two_locations_makes_two_shipments() {
    let engine = engine_with(&[warehouse("A", 3.0), warehouse("B", 30.0)], &[("CAM", "A", 1), ("CAM", "B", 1)]);
    let outcome = engine.reserve_routed(&routed("r", order(&[("CAM", 2)], RouteMethod::ShipCheapest, 2)), T0_MS);
    let outcome = outcome.unwrap();
    assert!(outcome.held);
    let mut shipments = placed(&outcome.plan);
    shipments.sort();
    assert_eq!(shipments, vec![("A".to_owned(), 1), ("B".to_owned(), 1)]);
    let lines: Vec<u32> = outcome
        .plan
        .shipments
        .iter()
        .flat_map(|shipment| &shipment.lines)
        .map(|line| line.reservation_line.unwrap())
        .collect();
    assert_eq!(lines, vec![0, 1], "each unit is in exactly one reservation line");
}

#[test]
fn a_single_location_that_fills_the_order_beats_a_nearer_split() {
    let engine = engine_with(
        &[warehouse("NEAR-1", 2.0), warehouse("NEAR-2", 3.0), warehouse("FAR", 40.0)],
        &[("A", "NEAR-1", 5), ("B", "NEAR-2", 5), ("A", "FAR", 5), ("B", "FAR", 5)],
    );
    let plan = engine.quote(&order(&[("A", 1), ("B", 1)], RouteMethod::ShipCheapest, 3), T0_MS).unwrap();
    assert_eq!(placed(&plan), vec![("FAR".to_owned(), 2)]);
    assert!(plan.explanations[0].starts_with("FAR: "), "{:?}", plan.explanations);
}

#[test]
fn cheapest_and_fastest_weigh_cost_and_promise() {
    // CHEAP is nearer but slow to hand over; QUICK is farther and ships at once.
    let mut cheap = warehouse("CHEAP", 10.0);
    cheap.routing.terms[Method::Ship as usize].handling_minutes = 3 * 24 * 60;
    let mut quick = warehouse("QUICK", 50.0);
    quick.routing.shipment_cost_cents = 400;
    let engine = engine_with(&[cheap, quick], &[("X", "CHEAP", 1), ("X", "QUICK", 1)]);

    let fastest = engine.quote(&order(&[("X", 1)], RouteMethod::ShipFastest, 1), T0_MS).unwrap();
    assert_eq!(fastest.shipments[0].location, "QUICK");
    assert_eq!(fastest.shipments[0].promise_ms, T0_MS + 24 * 60 * 60 * 1_000, "one day in transit");

    // QUICK costs 400 + 50 = 450 cents; CHEAP 500 + 10 = 510 plus 2 days late: QUICK.
    let cheapest = engine.quote(&order(&[("X", 1)], RouteMethod::ShipCheapest, 1), T0_MS).unwrap();
    assert_eq!(cheapest.shipments[0].location, "QUICK");
    assert_eq!(cheapest.shipments[0].cost_cents, 450);
}

#[test]
fn pickup_nearest_skips_a_nearer_store_without_stock() {
    let engine = engine_with(&[store("S2", 2.0), store("S9", 9.0)], &[("BIKE", "S2", 0), ("BIKE", "S9", 3)]);
    let plan = engine.quote(&order(&[("BIKE", 2)], RouteMethod::PickupNearest { curbside: false }, 1), T0_MS).unwrap();
    assert_eq!(placed(&plan), vec![("S9".to_owned(), 2)]);
    assert_eq!(plan.shipments[0].method, Method::Pickup);
    assert!(plan.explanations[0].contains("S2 nearer but has none available"), "{:?}", plan.explanations);

    let none = engine.quote(&order(&[("BIKE", 4)], RouteMethod::PickupNearest { curbside: false }, 1), T0_MS).unwrap();
    assert!(none.shipments.is_empty());
    assert_eq!(none.unfilled[0].reason, UnfilledReason::PickupStoreCannotFill);
    assert_eq!(none.unfilled[0].reason.describe(), "no pickup store can fill the order");
}

#[test]
fn a_pickup_only_store_never_ships_but_still_serves_pickup() {
    let mut pickup_only = store("KIOSK", 1.0);
    pickup_only.routing.pickup_only = true;
    let engine = engine_with(&[pickup_only, warehouse("DC", 100.0)], &[("PHONE", "KIOSK", 5), ("PHONE", "DC", 1)]);

    let ship = engine.reserve_routed(&routed("ship", order(&[("PHONE", 2)], RouteMethod::ShipCheapest, 2)), T0_MS);
    let ship = ship.unwrap();
    assert!(!ship.held, "the DC alone has 1, and the kiosk never ships");
    assert_eq!(ship.plan.unfilled[0].reason, UnfilledReason::InsufficientAtp);
    assert_eq!(reserved(&engine, "PHONE", "KIOSK"), 0);

    let ship_one = engine.reserve_routed(&routed("ship-1", order(&[("PHONE", 1)], RouteMethod::ShipFastest, 1)), T0_MS);
    assert_eq!(placed(&ship_one.unwrap().plan), vec![("DC".to_owned(), 1)]);

    let at_kiosk = RouteMethod::PickupAt { store: "KIOSK".into(), curbside: false };
    let pickup = engine.reserve_routed(&routed("pickup", order(&[("PHONE", 5)], at_kiosk, 1)), T0_MS).unwrap();
    assert!(pickup.held);
    assert_eq!(placed(&pickup.plan), vec![("KIOSK".to_owned(), 5)]);
}

#[test]
fn a_full_location_is_skipped_until_a_release_frees_its_capacity() {
    let mut near = warehouse("NEAR", 5.0);
    near.daily_capacity = 1;
    let engine = engine_with(&[near, warehouse("FAR", 80.0)], &[("SHOE", "NEAR", 10), ("SHOE", "FAR", 10)]);
    let ship = || order(&[("SHOE", 1)], RouteMethod::ShipCheapest, 1);

    let first = engine.reserve_routed(&routed("o1", ship()), T0_MS).unwrap();
    assert_eq!(placed(&first.plan), vec![("NEAR".to_owned(), 1)]);
    assert_eq!(engine.capacity_used("NEAR"), Some((1, 1)));

    let second = engine.reserve_routed(&routed("o2", ship()), T0_MS).unwrap();
    assert_eq!(placed(&second.plan), vec![("FAR".to_owned(), 1)]);
    assert!(second.plan.explanations[0].contains("NEAR nearer but full for today"), "{:?}", second.plan.explanations);

    let release = ReleaseRequest {
        reservation_id: "o1".into(),
        op_id: "cancel".into(),
        units: Units::All,
        from: ReleaseFrom::HeldFirst,
    };
    engine.release(&release, T0_MS).unwrap();
    assert_eq!(engine.capacity_used("NEAR"), Some((0, 1)));
    let third = engine.reserve_routed(&routed("o3", ship()), T0_MS).unwrap();
    assert_eq!(placed(&third.plan), vec![("NEAR".to_owned(), 1)]);

    // The next local day starts with the full capacity.
    let tomorrow = T0_MS + 24 * 60 * 60 * 1_000;
    assert_eq!(engine.quote(&ship(), tomorrow).unwrap().shipments[0].location, "NEAR");
}

#[test]
fn an_expired_routed_hold_gives_its_capacity_back() {
    let mut only = warehouse("ONLY", 5.0);
    only.daily_capacity = 1;
    let engine = engine_with(&[only], &[("HAT", "ONLY", 10)]);
    let mut request = routed("short", order(&[("HAT", 1)], RouteMethod::ShipCheapest, 1));
    request.ttl_ms = 1_000;
    assert!(engine.reserve_routed(&request, T0_MS).unwrap().held);
    assert_eq!(engine.capacity_used("ONLY"), Some((1, 1)));
    assert_eq!(engine.sweep(T0_MS + 1_000).len(), 1);
    assert_eq!(engine.capacity_used("ONLY"), Some((0, 1)));
}

#[test]
fn inactive_and_channel_excluded_locations_are_never_used() {
    let mut closed = warehouse("CLOSED", 1.0);
    closed.active = false;
    let engine = engine_with(
        &[closed, warehouse("OTHER", 2.0), warehouse("WEB-DC", 50.0)],
        &[("MUG", "CLOSED", 9), ("MUG", "OTHER", 9), ("MUG", "WEB-DC", 9)],
    );
    let spec = ChannelSpec { code: "web".into(), may_sell_safety_stock: false, locations: Some(vec!["WEB-DC".into()]) };
    engine.upsert_channel_spec(&spec).unwrap();

    let mut web = order(&[("MUG", 1)], RouteMethod::ShipCheapest, 1);
    web.channel = Some("web".into());
    let plan = engine.quote(&web, T0_MS).unwrap();
    assert_eq!(placed(&plan), vec![("WEB-DC".to_owned(), 1)]);
    assert!(plan.explanations[0].contains("CLOSED nearer but inactive"), "{:?}", plan.explanations);

    let any = engine.quote(&order(&[("MUG", 1)], RouteMethod::ShipCheapest, 1), T0_MS).unwrap();
    assert_eq!(placed(&any), vec![("OTHER".to_owned(), 1)]);

    let unknown =
        ChannelSpec { code: "app".into(), may_sell_safety_stock: false, locations: Some(vec!["NOPE".into()]) };
    assert_eq!(
        engine.upsert_channel_spec(&unknown).unwrap_err(),
        ChannelError::UnknownLocation { channel: "app".into(), location: "NOPE".into() }
    );
}

#[test]
fn postal_codes_resolve_by_code_or_region() {
    let engine = engine_with(&[warehouse("DC", 10.0)], &[("BOOK", "DC", 5)]);
    let rows = [
        PostalCodeRow { country: "MX".into(), postal_code: "06700".into(), lat: 19.4165, lon: -99.1617 },
        PostalCodeRow { country: "MX".into(), postal_code: "06*".into(), lat: 19.43, lon: -99.14 },
    ];
    assert_eq!(engine.upsert_postal_codes(&rows).unwrap(), 2);

    let mut by_postal = order(&[("BOOK", 1)], RouteMethod::ShipCheapest, 1);
    by_postal.destination = Destination::Postal { country: "MX".into(), postal_code: "06700".into() };
    let plan = engine.quote(&by_postal, T0_MS).unwrap();
    assert_eq!(plan.destination.source, DestinationSource::PostalCode);
    assert_eq!(plan.destination.lat, 19.4165);

    by_postal.destination = Destination::Postal { country: "mx".into(), postal_code: "06600".into() };
    let plan = engine.quote(&by_postal, T0_MS).unwrap();
    assert_eq!(plan.destination.source, DestinationSource::PostalRegion { prefix: "06".into() });

    by_postal.destination = Destination::Postal { country: "MX".into(), postal_code: "64000".into() };
    let error = engine.quote(&by_postal, T0_MS).unwrap_err();
    assert!(matches!(error, RouteError::UnknownPostalCode { .. }), "{error}");
    assert_eq!(
        engine.reserve_routed(&routed("r", by_postal), T0_MS).unwrap_err().to_string(),
        "postal code MX:64000 is not known and no region prefix in the postal table covers it"
    );
    assert_eq!(reserved(&engine, "BOOK", "DC"), 0);
}

#[test]
fn bad_orders_name_field_and_value() {
    let engine = engine_with(&[warehouse("DC", 10.0)], &[("BOOK", "DC", 5)]);
    let mut bad = order(&[("BOOK", 1)], RouteMethod::ShipCheapest, 9);
    assert_eq!(engine.quote(&bad, T0_MS).unwrap_err().to_string(), "max_shipments 9 is outside 1..=8");
    bad.max_shipments = 1;
    bad.destination = Destination::Point { lat: 95.0, lon: 0.0 };
    assert_eq!(engine.quote(&bad, T0_MS).unwrap_err().to_string(), "destination latitude 95 is not within -90..=90");
    bad.destination = Destination::Point { lat: 0.0, lon: 0.0 };
    bad.lines[0].quantity = 0;
    assert_eq!(engine.quote(&bad, T0_MS).unwrap_err().to_string(), "line 0: quantity 0 is outside 1..=1000000000");
    let at = RouteMethod::PickupAt { store: "NOWHERE".into(), curbside: false };
    assert_eq!(
        engine.quote(&order(&[("BOOK", 1)], at, 1), T0_MS).unwrap_err().to_string(),
        "pickup store NOWHERE is not known"
    );
    let unknown = engine.quote(&order(&[("NO-SUCH-SKU", 1)], RouteMethod::ShipCheapest, 1), T0_MS).unwrap();
    assert_eq!(unknown.unfilled[0].reason, UnfilledReason::UnknownSku);

    let mut cutoff = warehouse("LATE", 1.0);
    cutoff.routing.terms = [MethodTerms { handling_minutes: 0, cutoff_minute: 1441 }; METHOD_COUNT];
    assert_eq!(
        engine.upsert_location(&cutoff).unwrap_err().to_string(),
        "location LATE: ship cutoff_minute 1441 is not within 0..=1440"
    );
}

#[test]
fn a_repeated_routed_reserve_returns_the_first_plan() {
    let engine = engine_with(&[warehouse("A", 5.0), warehouse("B", 9.0)], &[("SKU", "A", 2), ("SKU", "B", 2)]);
    let request = routed("order-9", order(&[("SKU", 3)], RouteMethod::ShipCheapest, 2));
    let first = engine.reserve_routed(&request, T0_MS).unwrap();
    assert!(first.held);
    assert!(!first.replayed);

    // Stock changes do not change the outcome of a retry.
    engine.set_on_hand("SKU", "A", 100, T0_MS).unwrap();
    let again = engine.reserve_routed(&request, T0_MS + 10).unwrap();
    assert!(again.replayed && again.held);
    assert_eq!(placed(&again.plan), placed(&first.plan));
    assert_eq!(again.deadline_ms, first.deadline_ms);
    assert_eq!(again.plan.shipments[0].lines[0].sku, "SKU");

    let mut different = request.clone();
    different.order.max_shipments = 1;
    assert!(matches!(
        engine.reserve_routed(&different, T0_MS),
        Err(RouteError::Reserve(promesa_engine::error::ReserveError::IdReusedWithDifferentContent { .. }))
    ));
}

#[test]
fn same_day_needs_the_method_a_short_distance_and_the_cut_off() {
    let methods = FulfilmentMethods::SHIP.with(FulfilmentMethods::SAME_DAY);
    let mut near = location("CITY", LocationKind::DarkStore, 8.0, methods);
    // Cut-off at 14:00 local time, UTC-6: 20:00 UTC.
    near.routing.utc_offset_minutes = -360;
    near.routing.terms[Method::SameDay as usize] = MethodTerms { handling_minutes: 120, cutoff_minute: 14 * 60 };
    let far = location("REGION", LocationKind::DarkStore, 200.0, methods);
    let engine = engine_with(&[near, far], &[("MILK", "CITY", 5), ("MILK", "REGION", 5)]);

    let morning = T0_MS + 15 * 60 * 60 * 1_000; // 09:00 local.
    let plan = engine.quote(&order(&[("MILK", 1)], RouteMethod::SameDay, 1), morning).unwrap();
    assert_eq!(placed(&plan), vec![("CITY".to_owned(), 1)]);
    assert_eq!(plan.shipments[0].method, Method::SameDay);

    let evening = T0_MS + 21 * 60 * 60 * 1_000; // 15:00 local, past the cut-off.
    let plan = engine.quote(&order(&[("MILK", 1)], RouteMethod::SameDay, 1), evening).unwrap();
    assert!(plan.shipments.is_empty(), "{plan:?}");
    assert_eq!(plan.unfilled[0].reason, UnfilledReason::InsufficientAtp);
}

#[test]
fn routed_reservations_and_routing_state_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn Storage> = Arc::new(FsStorage::new(dir.path()).unwrap());
    let open = |now_ms| {
        Engine::open(
            EngineConfig::default(),
            Arc::clone(&storage),
            LogConfig::default(),
            ScanOptions::default(),
            now_ms,
        )
        .unwrap()
    };

    let mut near = warehouse("NEAR", 5.0);
    near.daily_capacity = 2;
    near.routing.utc_offset_minutes = -360;
    let (engine, _) = open(T0_MS);
    for spec in [near.clone(), warehouse("FAR", 60.0)] {
        engine.upsert_location(&spec).unwrap();
    }
    engine.set_on_hand("SKU", "NEAR", 10, T0_MS).unwrap();
    engine.set_on_hand("SKU", "FAR", 10, T0_MS).unwrap();
    let rows = [PostalCodeRow { country: "MX".into(), postal_code: "06*".into(), lat: HOME.0, lon: HOME.1 }];
    engine.upsert_postal_codes(&rows).unwrap();
    engine
        .upsert_channel_spec(&ChannelSpec {
            code: "web".into(),
            may_sell_safety_stock: false,
            locations: Some(vec!["NEAR".into()]),
        })
        .unwrap();
    let mut by_postal = order(&[("SKU", 1)], RouteMethod::ShipCheapest, 1);
    by_postal.destination = Destination::Postal { country: "MX".into(), postal_code: "06010".into() };
    let first = engine.reserve_routed(&routed("kept", by_postal.clone()), T0_MS).unwrap();
    assert!(first.held);

    drop(engine);

    let check = |engine: &Engine, from: &str| {
        let info = near.clone();
        let expected = promesa_engine::LocationInfo {
            code: info.code,
            kind: info.kind,
            lat: info.lat,
            lon: info.lon,
            methods: info.methods,
            daily_capacity: info.daily_capacity,
            active: info.active,
            routing: info.routing,
        };
        assert_eq!(engine.location("NEAR").unwrap(), expected, "{from}");
        assert_eq!(engine.capacity_used("NEAR"), Some((1, 2)), "{from}: capacity counted again");
        let again = engine.reserve_routed(&routed("kept", by_postal.clone()), T0_MS + 1).unwrap();
        assert!(again.replayed, "{from}");
        assert_eq!(placed(&again.plan), placed(&first.plan), "{from}");
        assert_eq!(again.plan.destination, first.plan.destination, "{from}");
        let mut web = order(&[("SKU", 1)], RouteMethod::ShipCheapest, 1);
        web.channel = Some("web".into());
        web.destination = Destination::Point { lat: HOME.0 + 1.0, lon: HOME.1 };
        assert_eq!(placed(&engine.quote(&web, T0_MS + 1).unwrap()), vec![("NEAR".to_owned(), 1)], "{from}");
    };
    let (engine, report) = open(T0_MS + 1);
    assert!(report.snapshot.is_none());
    check(&engine, "the log");
    engine.snapshot().expect("snapshot");
    drop(engine);
    let (engine, report) = open(T0_MS + 1);
    assert!(report.snapshot.is_some());
    check(&engine, "a snapshot");
}

/// Reads `country,postal_code,lat,lon` rows.
fn postal_rows(reader: impl std::io::Read) -> Vec<PostalCodeRow> {
    csv::Reader::from_reader(reader)
        .deserialize::<(String, String, f64, f64)>()
        .map(|row| {
            let (country, postal_code, lat, lon) = row.expect("a valid row");
            PostalCodeRow { country, postal_code, lat, lon }
        })
        .collect()
}

/// Loads postal rows in upserts of the engine's limit.
fn load_postal(engine: &Engine, rows: &[PostalCodeRow]) {
    for chunk in rows.chunks(promesa_engine::limits::POSTAL_ROWS_PER_UPSERT_MAX) {
        engine.upsert_postal_codes(chunk).unwrap();
    }
}

/// Warehouses in Mexico City and Monterrey, and an order from a Mexico City postal code
/// and a Monterrey one.
fn check_mexican_routes(engine: &Engine) {
    let cdmx = LocationSpec { lat: 19.4326, lon: -99.1332, ..warehouse("CDMX", 0.0) };
    let mty = LocationSpec { lat: 25.6866, lon: -100.3161, ..warehouse("MTY", 0.0) };
    for spec in [cdmx, mty] {
        engine.upsert_location(&spec).unwrap();
        engine.set_on_hand("TV", &spec.code, 10, T0_MS).unwrap();
    }
    let to = |postal_code: &str| {
        let mut order = order(&[("TV", 1)], RouteMethod::ShipCheapest, 1);
        order.destination = Destination::Postal { country: "MX".into(), postal_code: postal_code.into() };
        engine.quote(&order, T0_MS).unwrap()
    };

    // Cuauhtémoc, Mexico City, and central Monterrey, each by its own code.
    let plan = to("06700");
    assert_eq!(plan.destination.source, DestinationSource::PostalCode);
    assert_eq!(placed(&plan), vec![("CDMX".to_owned(), 1)]);
    assert!(plan.shipments[0].distance_km < 15.0, "{plan:?}");
    let plan = to("64000");
    assert_eq!(placed(&plan), vec![("MTY".to_owned(), 1)]);
    assert!(plan.shipments[0].distance_km < 15.0, "{plan:?}");

    // A code the table does not list falls back to its state's point.
    let plan = to("06999");
    assert_eq!(plan.destination.source, DestinationSource::PostalRegion { prefix: "06".into() });
    assert_eq!(placed(&plan), vec![("CDMX".to_owned(), 1)]);
}

#[test]
fn mexican_postal_codes_from_the_sample_route_to_the_nearest_city() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mx-postal-sample.csv");
    let rows = postal_rows(std::fs::File::open(&path).expect("the sample is in the repository"));
    let engine = Engine::new(EngineConfig::default());
    load_postal(&engine, &rows);
    check_mexican_routes(&engine);
}

/// The whole Mexican table from the data folder (`PROMESA_DATA_DIR`, which CI sets):
/// 32,444 codes and the state fallbacks the sample's script would make.
#[test]
fn mexican_postal_codes_from_the_data_folder_route_to_the_nearest_city() {
    let Some(data) = std::env::var_os("PROMESA_DATA_DIR") else {
        eprintln!("PROMESA_DATA_DIR is not set: skipping the full Mexican postal table");
        return;
    };
    let path = std::path::Path::new(&data).join("mx_geo/mx_postal_codes.csv.gz");
    let file = std::fs::File::open(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let mut reader = csv::Reader::from_reader(flate2::read::GzDecoder::new(file));
    let headers = reader.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|header| header == name).expect("column exists");
    let (code, lat, lon) = (column("postal_code"), column("lat_route"), column("lng_route"));
    let mut rows: Vec<PostalCodeRow> = reader
        .records()
        .map(|record| {
            let record = record.unwrap();
            PostalCodeRow {
                country: "MX".into(),
                postal_code: record[code].to_owned(),
                lat: record[lat].parse().unwrap(),
                lon: record[lon].parse().unwrap(),
            }
        })
        .collect();
    assert_eq!(rows.len(), 32_444);
    // State fallbacks for the two prefixes the checks use, from the sample.
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mx-postal-sample.csv");
    rows.extend(
        postal_rows(std::fs::File::open(sample).unwrap()).into_iter().filter(|row| row.postal_code.ends_with('*')),
    );
    rows.retain(|row| row.postal_code != "06999");
    let engine = Engine::new(EngineConfig::default());
    load_postal(&engine, &rows);
    check_mexican_routes(&engine);
}

#[test]
fn units_no_location_stocks_are_backordered_against_inbound_supply() {
    const DAY_MS: u64 = 24 * 60 * 60 * 1_000;
    let engine = engine_with(&[warehouse("NEAR", 5.0), warehouse("FAR", 50.0)], &[("BIKE", "NEAR", 2)]);
    let receipt = promesa_engine::supply::SupplyRequest {
        receipt_id: "PO-1".into(),
        sku: "BIKE".into(),
        location: "FAR".into(),
        quantity: 10,
        arrival_ms: T0_MS + 5 * DAY_MS,
    };
    engine.add_supply(&receipt, T0_MS).unwrap();

    let mut six = order(&[("BIKE", 6)], RouteMethod::ShipCheapest, 2);
    let refused = engine.quote(&six, T0_MS).unwrap();
    assert!(refused.shipments.is_empty());
    assert_eq!(refused.unfilled[0].reason, UnfilledReason::InsufficientAtp);

    // Two units ship from stock now; four are promised from the receipt.
    six.allow_backorder = true;
    let request = routed("pre-order", six);
    let outcome = engine.reserve_routed(&request, T0_MS).unwrap();
    assert!(outcome.held, "{outcome:?}");
    let shipments: Vec<(String, u32, bool)> = outcome
        .plan
        .shipments
        .iter()
        .map(|shipment| (shipment.location.clone(), shipment.lines[0].quantity, shipment.backorder))
        .collect();
    assert_eq!(shipments, vec![("NEAR".to_owned(), 2, false), ("FAR".to_owned(), 4, true)]);
    assert!(outcome.plan.shipments[1].promise_ms >= T0_MS + 6 * DAY_MS, "arrival, then a day in transit");
    assert!(outcome.plan.explanations[0].starts_with("NEAR: "), "{:?}", outcome.plan.explanations);
    let view = engine.get("pre-order", T0_MS).unwrap();
    let statuses: Vec<LineStatus> = view.lines.iter().map(|line| line.status).collect();
    assert_eq!(statuses, vec![LineStatus::Held, LineStatus::Backordered]);
    assert_eq!(engine.availability("BIKE", "NEAR", None, T0_MS).unwrap().atp, 0);
    let by_arrival = engine.availability_by("BIKE", "FAR", None, T0_MS + 5 * DAY_MS, T0_MS).unwrap();
    assert_eq!((by_arrival.backordered, by_arrival.available), (4, 6));

    // A retry returns the first plan, backorder included.
    let again = engine.reserve_routed(&request, T0_MS).unwrap();
    assert!(again.replayed);
    assert!(again.plan.shipments[1].backorder);

    // With one shipment allowed, all six come from the receipt.
    let mut one = order(&[("BIKE", 6)], RouteMethod::ShipCheapest, 1);
    one.allow_backorder = true;
    let plan = engine.quote(&one, T0_MS).unwrap();
    let shipments: Vec<(String, u32, bool)> = plan
        .shipments
        .iter()
        .map(|shipment| (shipment.location.clone(), shipment.lines[0].quantity, shipment.backorder))
        .collect();
    assert_eq!(shipments, vec![("FAR".to_owned(), 6, true)]);
}

/// The demo's real marketplace extract: the network and stock load, and routing all
/// its orders splits some and leaves some lines short, as the extract's stock rule
/// intends, without overselling.
#[test]
fn olist_demo_orders_route_over_the_extract_network() {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/olist-demo");
    let read = |name: &str| csv::Reader::from_path(folder.join(name)).expect("the extract is in the repository");

    let engine = Engine::new(EngineConfig::default());
    let mut specs = Vec::new();
    for row in read("locations.csv").deserialize::<(String, String, f64, f64, String)>() {
        let (code, kind, lat, lon, methods) = row.unwrap();
        let (kind, methods) = match (kind.as_str(), methods.as_str()) {
            ("warehouse", "ship") => (LocationKind::Warehouse, FulfilmentMethods::SHIP),
            ("drop_ship", "drop_ship") => (LocationKind::DropShipVendor, FulfilmentMethods::DROP_SHIP),
            other => panic!("unexpected location kind and methods {other:?}"),
        };
        specs.push(LocationSpec {
            code,
            kind,
            lat,
            lon,
            methods,
            daily_capacity: 0,
            active: true,
            routing: Default::default(),
        });
    }
    assert_eq!(specs.len(), 1_638);
    engine.upsert_locations(&specs).unwrap();
    let rows: Vec<promesa_engine::PositionRow> = read("stock.csv")
        .deserialize::<(String, String, u64)>()
        .map(|row| {
            let (sku, location, on_hand) = row.unwrap();
            promesa_engine::PositionRow { sku, location, on_hand, safety_stock: None }
        })
        .collect();
    engine.load_positions(&rows, T0_MS).unwrap();

    let (mut held, mut split, mut short) = (0, 0, 0);
    for (index, row) in read("orders.csv").deserialize::<(String, String, f64, f64, String)>().enumerate() {
        let (order_id, _, lat, lon, lines) = row.unwrap();
        let lines = lines
            .split('|')
            .map(|line| {
                let (sku, quantity) = line.split_once(':').expect("SKU:QUANTITY");
                RouteLine { sku: sku.to_owned(), quantity: quantity.parse().unwrap() }
            })
            .collect();
        let order = QuoteRequest {
            channel: None,
            destination: Destination::Point { lat, lon },
            lines,
            method: RouteMethod::ShipCheapest,
            max_shipments: 3,
            allow_partial: true,
            allow_backorder: false,
        };
        let outcome = engine.reserve_routed(&routed(&order_id, order), T0_MS + index as u64).unwrap();
        held += usize::from(outcome.held);
        split += usize::from(outcome.plan.shipments.len() > 1);
        short += usize::from(!outcome.plan.unfilled.is_empty());
    }
    eprintln!("{held} of 9,894 orders held, {split} split, {short} with lines short");
    assert!(held > 9_000, "{held} of 9,894 orders held");
    assert!(split > 0, "no order split");
    assert!(short > 0, "no line ran short");
    assert_eq!(engine.stats().oversold, 0);
}
