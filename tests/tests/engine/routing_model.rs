//! Routing against a reference model: random networks of locations and random orders,
//! each plan checked against the model's stock and capacity, and routed reserves from
//! many threads at once checked for oversell.
//!
//! `PROMESA_PROPTEST_CASES` sets the number of sequences (default 200); the seed comes
//! from `PROMESA_TEST_SEED` and is printed.

use std::collections::HashMap;

use promesa_engine::routing::{
    ChannelSpec, Destination, LocationRouting, Method, Plan, QuoteRequest, RouteLine, RouteMethod, RoutedReserveRequest,
};
use promesa_engine::{
    Engine, EngineConfig, FulfilmentMethods, LocationKind, LocationSpec, ReleaseFrom, ReleaseRequest, Units,
};
use promesa_tests::{T0_MS, TTL_15_MIN_MS, seed};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SKUS: [&str; 3] = ["A", "B", "C"];
const CASES_DEFAULT: u32 = 200;
const SEED_DEFAULT: u64 = 20_261_205;

/// A location of the random network, as the model records it.
#[derive(Clone, Debug)]
struct ModelLocation {
    code: String,
    active: bool,
    pickup_only: bool,
    methods: FulfilmentMethods,
    capacity: u32,
    in_channel: bool,
}

/// A shipment of a held reservation: its location and (SKU, units) per line.
type ModelShipment = (String, Vec<(String, u32)>);

/// What the engine should hold.
#[derive(Default, Debug)]
struct Model {
    locations: Vec<ModelLocation>,
    /// (SKU, location code) to (on hand, reserved).
    stock: HashMap<(String, String), (u32, u32)>,
    /// Orders routed to each location today.
    capacity_used: HashMap<String, u32>,
    /// Reservation id to its shipments.
    reservations: HashMap<String, Vec<ModelShipment>>,
}

impl Model {
    fn atp(&self, sku: &str, location: &str) -> u32 {
        self.stock.get(&(sku.to_owned(), location.to_owned())).map_or(0, |&(on_hand, reserved)| on_hand - reserved)
    }

    fn location(&self, code: &str) -> &ModelLocation {
        self.locations.iter().find(|location| location.code == code).expect("plan names a model location")
    }

    /// Returns whether the location may take this order at all, ignoring stock.
    fn eligible(&self, location: &ModelLocation, method: &RouteMethod, channel: bool) -> bool {
        let offers = |bits| location.methods.contains(bits);
        let method_ok = match method {
            RouteMethod::ShipCheapest | RouteMethod::ShipFastest => {
                !location.pickup_only && (offers(FulfilmentMethods::SHIP) || offers(FulfilmentMethods::DROP_SHIP))
            }
            RouteMethod::PickupNearest { .. } | RouteMethod::PickupAt { .. } => offers(FulfilmentMethods::PICKUP),
            RouteMethod::SameDay => unreachable!("not generated"),
        };
        let capacity_ok =
            location.capacity == 0 || self.capacity_used.get(&location.code).copied().unwrap_or(0) < location.capacity;
        location.active && (!channel || location.in_channel) && method_ok && capacity_ok
    }
}

fn random_network(rng: &mut StdRng, engine: &Engine, model: &mut Model) {
    let count = rng.gen_range(2..=8);
    for index in 0..count {
        let methods = match rng.gen_range(0..4) {
            0 => FulfilmentMethods::SHIP,
            1 => FulfilmentMethods::SHIP.with(FulfilmentMethods::PICKUP),
            2 => FulfilmentMethods::PICKUP,
            _ => FulfilmentMethods::DROP_SHIP,
        };
        let location = ModelLocation {
            code: format!("L{index}"),
            active: rng.gen_bool(0.85),
            pickup_only: rng.gen_bool(0.15),
            methods,
            capacity: rng.gen_range(0..=3),
            in_channel: rng.gen_bool(0.6),
        };
        let mut routing = LocationRouting { pickup_only: location.pickup_only, ..LocationRouting::default() };
        routing.shipment_cost_cents = rng.gen_range(100..1_000);
        routing.terms[Method::Ship as usize].handling_minutes = rng.gen_range(0..3_000);
        let spec = LocationSpec {
            code: location.code.clone(),
            kind: LocationKind::Store,
            lat: 19.0 + rng.gen_range(-1.0..1.0),
            lon: -99.0 + rng.gen_range(-1.0..1.0),
            methods,
            daily_capacity: location.capacity,
            active: location.active,
            routing,
        };
        engine.upsert_location(&spec).unwrap();
        for sku in SKUS {
            if rng.gen_bool(0.7) {
                let on_hand = rng.gen_range(0..=5);
                engine.set_on_hand(sku, &location.code, u64::from(on_hand), T0_MS).unwrap();
                model.stock.insert((sku.to_owned(), location.code.clone()), (on_hand, 0));
            }
        }
        model.locations.push(location);
    }
    let in_channel = model.locations.iter().filter(|location| location.in_channel).map(|l| l.code.clone()).collect();
    let spec = ChannelSpec { code: "web".into(), may_sell_safety_stock: false, locations: Some(in_channel) };
    engine.upsert_channel_spec(&spec).unwrap();
}

fn random_order(rng: &mut StdRng, model: &Model) -> QuoteRequest {
    let line_count = rng.gen_range(1..=3);
    let lines = (0..line_count)
        .map(|_| RouteLine { sku: SKUS[rng.gen_range(0..SKUS.len())].to_owned(), quantity: rng.gen_range(1..=6) })
        .collect();
    let method = match rng.gen_range(0..4) {
        0 => RouteMethod::ShipCheapest,
        1 => RouteMethod::ShipFastest,
        2 => RouteMethod::PickupNearest { curbside: false },
        _ => RouteMethod::PickupAt {
            store: model.locations[rng.gen_range(0..model.locations.len())].code.clone(),
            curbside: false,
        },
    };
    QuoteRequest {
        channel: rng.gen_bool(0.3).then(|| "web".to_owned()),
        destination: Destination::Point { lat: 19.0 + rng.gen_range(-1.0..1.0), lon: -99.0 + rng.gen_range(-1.0..1.0) },
        lines,
        method,
        max_shipments: rng.gen_range(1..=3),
        allow_partial: rng.gen_bool(0.3),
        allow_backorder: false,
    }
}

/// Checks a plan against the model before the order: every shipment at an eligible
/// location, within its ATP, within the shipment limit, every unit accounted for, and a
/// single shipment whenever one eligible location could fill the whole order.
fn check_plan(model: &Model, order: &QuoteRequest, plan: &Plan) -> Result<(), String> {
    let channel = order.channel.is_some();
    let max_shipments = if matches!(order.method, RouteMethod::PickupAt { .. } | RouteMethod::PickupNearest { .. }) {
        1
    } else {
        order.max_shipments as usize
    };
    if plan.shipments.len() > max_shipments {
        return Err(format!("{} shipments, limit {max_shipments}", plan.shipments.len()));
    }
    let mut taken: HashMap<(String, String), u32> = HashMap::new();
    for shipment in &plan.shipments {
        let location = model.location(&shipment.location);
        if !model.eligible(location, &order.method, channel) {
            return Err(format!("shipment from ineligible {location:?}"));
        }
        if let RouteMethod::PickupAt { store, .. } = &order.method
            && store != &shipment.location
        {
            return Err(format!("pickup at {store} planned at {}", shipment.location));
        }
        for line in &shipment.lines {
            *taken.entry((line.sku.clone(), shipment.location.clone())).or_default() += line.quantity;
        }
    }
    for ((sku, location), units) in &taken {
        let atp = model.atp(sku, location);
        if *units > atp {
            return Err(format!("{units} of {sku}@{location} planned, ATP {atp}"));
        }
    }
    for (index, line) in order.lines.iter().enumerate() {
        let placed: u32 = plan
            .shipments
            .iter()
            .flat_map(|shipment| &shipment.lines)
            .filter(|shipment_line| shipment_line.line as usize == index)
            .map(|shipment_line| shipment_line.quantity)
            .sum();
        let unfilled: u32 =
            plan.unfilled.iter().filter(|unfilled| unfilled.line as usize == index).map(|u| u.unfilled).sum();
        let refused = !plan.fills_all() && !order.allow_partial;
        if !refused && placed + unfilled != line.quantity as u32 {
            return Err(format!("line {index}: {placed} placed + {unfilled} unfilled != {}", line.quantity));
        }
    }

    // Could one eligible location fill everything?
    let mut need: HashMap<&str, u32> = HashMap::new();
    for line in &order.lines {
        *need.entry(line.sku.as_str()).or_default() += line.quantity as u32;
    }
    let single = model.locations.iter().any(|location| {
        let at_store = match &order.method {
            RouteMethod::PickupAt { store, .. } => store == &location.code,
            _ => true,
        };
        at_store
            && model.eligible(location, &order.method, channel)
            && need.iter().all(|(sku, units)| model.atp(sku, &location.code) >= *units)
    });
    if single && plan.shipments.len() != 1 {
        return Err(format!("one location fills the order, the plan has {} shipments", plan.shipments.len()));
    }
    if single && !plan.fills_all() {
        return Err("one location fills the order, the plan leaves units unfilled".into());
    }
    Ok(())
}

fn run_sequence(rng: &mut StdRng) -> Result<(), String> {
    let engine = Engine::new(EngineConfig::default());
    let mut model = Model::default();
    random_network(rng, &engine, &mut model);

    for step in 0..rng.gen_range(1..=20) {
        let id = format!("r{step}");
        if rng.gen_bool(0.2) && !model.reservations.is_empty() {
            // Release a random open reservation in full.
            let mut ids: Vec<_> = model.reservations.keys().cloned().collect();
            ids.sort();
            let id = ids[rng.gen_range(0..ids.len())].clone();
            let request = ReleaseRequest {
                reservation_id: id.clone(),
                op_id: "rel".into(),
                units: Units::All,
                from: ReleaseFrom::HeldFirst,
            };
            engine.release(&request, T0_MS).map_err(|error| format!("release {id}: {error}"))?;
            for (location, lines) in model.reservations.remove(&id).expect("listed") {
                for (sku, units) in lines {
                    model.stock.get_mut(&(sku, location.clone())).expect("held stock exists").1 -= units;
                }
                *model.capacity_used.get_mut(&location).expect("routed here") -= 1;
            }
            continue;
        }

        let order = random_order(rng, &model);
        let quote = engine.quote(&order, T0_MS).map_err(|error| format!("quote: {error}"))?;
        check_plan(&model, &order, &quote)
            .map_err(|error| format!("step {step} quote {order:?}: {error}\n{quote:?}"))?;
        let request = RoutedReserveRequest { reservation_id: id.clone(), ttl_ms: TTL_15_MIN_MS, order: order.clone() };
        let outcome = engine.reserve_routed(&request, T0_MS).map_err(|error| format!("reserve: {error}"))?;
        let units = |plan: &Plan| -> Vec<(String, u32, u32)> {
            let lines = plan.shipments.iter().flat_map(|shipment| {
                shipment.lines.iter().map(|line| (shipment.location.clone(), line.line, line.quantity))
            });
            lines.collect()
        };
        if outcome.held && units(&outcome.plan) != units(&quote) {
            return Err(format!("step {step}: the reserve placed other units than the quote\n{quote:?}\n{outcome:?}"));
        }
        if !outcome.held && quote.fills_all() && !quote.shipments.is_empty() {
            return Err(format!("step {step}: the quote fills the order but the reserve held nothing: {outcome:?}"));
        }
        if outcome.held {
            let mut shipments = Vec::new();
            for shipment in &outcome.plan.shipments {
                let lines: Vec<(String, u32)> =
                    shipment.lines.iter().map(|line| (line.sku.clone(), line.quantity)).collect();
                for (sku, units) in &lines {
                    model.stock.get_mut(&(sku.clone(), shipment.location.clone())).expect("planned stock exists").1 +=
                        units;
                }
                *model.capacity_used.entry(shipment.location.clone()).or_default() += 1;
                shipments.push((shipment.location.clone(), lines));
            }
            model.reservations.insert(id.clone(), shipments);
        } else if engine.get(&id, T0_MS).is_some() {
            return Err(format!("step {step}: an unheld routed reserve left reservation {id}"));
        }

        // The engine's counters equal the model's.
        for ((sku, location), &(on_hand, reserved)) in &model.stock {
            let read = engine.availability(sku, location, None, T0_MS).map_err(|error| error.to_string())?;
            if (read.on_hand, read.reserved) != (on_hand, reserved) {
                return Err(format!("step {step}: {sku}@{location} reads {read:?}, model ({on_hand}, {reserved})"));
            }
        }
        for location in &model.locations {
            let used = model.capacity_used.get(&location.code).copied().unwrap_or(0);
            if engine.capacity_used(&location.code) != Some((used, location.capacity)) {
                return Err(format!(
                    "step {step}: capacity of {} is {:?}, model {used}",
                    location.code,
                    engine.capacity_used(&location.code)
                ));
            }
        }
    }
    Ok(())
}

#[test]
fn routing_matches_reference_model() {
    let seed = seed("routing_matches_reference_model", SEED_DEFAULT);
    let cases =
        std::env::var("PROMESA_PROPTEST_CASES").ok().and_then(|value| value.parse().ok()).unwrap_or(CASES_DEFAULT);
    for case in 0..cases {
        let mut rng = StdRng::seed_from_u64(seed.wrapping_add(u64::from(case)));
        if let Err(error) = run_sequence(&mut rng) {
            panic!("seed {seed}, sequence {case}: {error}");
        }
    }
}

#[test]
fn concurrent_routed_reserves_never_oversell_or_overfill_capacity() {
    let seed = seed("concurrent_routed_reserves_never_oversell_or_overfill_capacity", SEED_DEFAULT);
    const THREADS: usize = 4;
    const ORDERS_PER_THREAD: usize = 400;
    let engine = Engine::new(EngineConfig::default());
    let mut rng = StdRng::seed_from_u64(seed);
    let mut capacities = Vec::new();
    for index in 0..6 {
        let capacity = rng.gen_range(0..40);
        capacities.push(capacity);
        let spec = LocationSpec {
            code: format!("L{index}"),
            kind: LocationKind::Warehouse,
            lat: 19.0 + f64::from(index) * 0.1,
            lon: -99.0,
            methods: FulfilmentMethods::SHIP,
            daily_capacity: capacity,
            active: true,
            routing: LocationRouting::default(),
        };
        engine.upsert_location(&spec).unwrap();
        for sku in SKUS {
            engine.set_on_hand(sku, &spec.code, rng.gen_range(0..60), T0_MS).unwrap();
        }
    }

    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let engine = &engine;
            let thread_seed = seed.wrapping_add(thread as u64 + 1);
            scope.spawn(move || {
                let mut rng = StdRng::seed_from_u64(thread_seed);
                for order_index in 0..ORDERS_PER_THREAD {
                    let lines = (0..rng.gen_range(1..=2))
                        .map(|_| RouteLine {
                            sku: SKUS[rng.gen_range(0..3)].to_owned(),
                            quantity: rng.gen_range(1..=4),
                        })
                        .collect();
                    let order = QuoteRequest {
                        channel: None,
                        destination: Destination::Point { lat: 19.2, lon: -99.0 },
                        lines,
                        method: RouteMethod::ShipCheapest,
                        max_shipments: rng.gen_range(1..=3),
                        allow_partial: rng.gen_bool(0.3),
                        allow_backorder: false,
                    };
                    let request = RoutedReserveRequest {
                        reservation_id: format!("t{thread}-{order_index}"),
                        ttl_ms: TTL_15_MIN_MS,
                        order,
                    };
                    engine.reserve_routed(&request, T0_MS).unwrap();
                }
            });
        }
    });

    // Count what the reservations hold and ship, and compare with the positions.
    let mut held: HashMap<(String, String), u32> = HashMap::new();
    let mut orders: HashMap<String, u32> = HashMap::new();
    for thread in 0..THREADS {
        for order_index in 0..ORDERS_PER_THREAD {
            let Some(view) = engine.get(&format!("t{thread}-{order_index}"), T0_MS) else { continue };
            let mut locations: Vec<&str> = view.lines.iter().map(|line| line.location.as_str()).collect();
            locations.dedup();
            for location in locations {
                *orders.entry(location.to_owned()).or_default() += 1;
            }
            for line in &view.lines {
                *held.entry((line.sku.clone(), line.location.clone())).or_default() += line.held;
            }
        }
    }
    for (index, &capacity) in capacities.iter().enumerate() {
        let code = format!("L{index}");
        let used = orders.get(&code).copied().unwrap_or(0);
        assert!(capacity == 0 || used <= capacity, "seed {seed}: {code} took {used} orders, capacity {capacity}");
        assert_eq!(engine.capacity_used(&code), Some((used, capacity)), "seed {seed}: {code}");
        for sku in SKUS {
            let read = engine.availability(sku, &code, None, T0_MS).unwrap();
            assert!(read.reserved <= read.on_hand, "seed {seed}: {sku}@{code} oversold: {read:?}");
            assert_eq!(read.reserved, held.get(&(sku.to_owned(), code.clone())).copied().unwrap_or(0), "seed {seed}");
        }
    }
    assert_eq!(engine.stats().oversold, 0);
}

#[test]
fn routing_during_location_upserts() {
    const NEW_LOCATIONS: u32 = 200;
    let engine = Engine::new(EngineConfig::default());
    let spec = |index: u32| LocationSpec {
        code: format!("N{index}"),
        kind: LocationKind::Store,
        lat: 19.0 + f64::from(index) * 0.001,
        lon: -99.0,
        methods: FulfilmentMethods::SHIP,
        daily_capacity: 0,
        active: true,
        routing: LocationRouting::default(),
    };
    engine.upsert_location(&spec(0)).unwrap();
    engine.set_on_hand("A", "N0", 1_000, T0_MS).unwrap();

    std::thread::scope(|scope| {
        let engine = &engine;
        scope.spawn(move || {
            for index in 1..=NEW_LOCATIONS {
                engine.upsert_location(&spec(index)).unwrap();
                engine.set_on_hand("A", &format!("N{index}"), 1, T0_MS).unwrap();
            }
        });
        for thread in 0..2 {
            scope.spawn(move || {
                for order in 0..500 {
                    let request = RoutedReserveRequest {
                        reservation_id: format!("t{thread}-{order}"),
                        ttl_ms: TTL_15_MIN_MS,
                        order: QuoteRequest {
                            channel: None,
                            destination: Destination::Point { lat: 19.1, lon: -99.0 },
                            lines: vec![RouteLine { sku: "A".into(), quantity: 1 }],
                            method: RouteMethod::ShipFastest,
                            max_shipments: 1,
                            allow_partial: false,
                            allow_backorder: false,
                        },
                    };
                    // Racing the other thread for one-unit locations may use up every
                    // attempt. Then nothing is held, and the outcome reports the attempts.
                    let outcome = engine.reserve_routed(&request, T0_MS).unwrap();
                    let limit = promesa_engine::limits::ROUTE_ATTEMPTS_MAX;
                    assert!(outcome.held || outcome.attempts == limit, "{outcome:?}");
                }
            });
        }
    });
    for index in 0..=NEW_LOCATIONS {
        let read = engine.availability("A", &format!("N{index}"), None, T0_MS).unwrap();
        assert!(read.reserved <= read.on_hand, "N{index}: {read:?}");
    }
    assert_eq!(engine.stats().oversold, 0);
}
