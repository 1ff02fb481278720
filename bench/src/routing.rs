//! Routing figures: in-process routed reserves of 3-line orders over a network of 200
//! locations that all stock every SKU, on an engine without a log (durability none),
//! so the figures are the routing work and not the log.
//!
//! Each routed reserve plans the order (reads every position of its 3 SKUs, weighs
//! the 200 locations) and holds the plan. Stock is deep and capacity unlimited, so no
//! order is refused and the plans stay comparable from the first order to the last.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use promesa_engine::routing::{
    Destination, LocationRouting, QuoteRequest, RouteLine, RouteMethod, RoutedReserveRequest,
};
use promesa_engine::{Engine, EngineConfig, FulfilmentMethods, LocationKind, LocationSpec, PositionRow};
use serde::Serialize;

use crate::workload::SplitMix64;

/// Locations of the routing network.
pub const ROUTING_LOCATIONS: usize = 200;

/// SKUs, each stocked at every location.
pub const ROUTING_SKUS: usize = 1_000;

/// Lines per order.
pub const ORDER_LINES: usize = 3;

/// On hand of every position: deep enough that no run empties one.
const ON_HAND: u64 = 1_000_000_000;

/// Routing figures of the capacity report.
#[derive(Clone, Debug, Serialize)]
pub struct RoutingFigures {
    /// Locations in the network.
    pub locations: usize,
    /// SKUs, each at every location.
    pub skus: usize,
    /// Lines per order.
    pub order_lines: usize,
    /// Latency of one routed reserve (plan + hold) on 1 thread.
    pub route_reserve_3_lines_200_locations: Latency,
    /// Routed reserves per second on 2 threads: the median of the runs.
    pub orders_per_sec: f64,
    /// Every 2-thread run's routed reserves per second.
    pub orders_per_sec_runs: Vec<f64>,
    /// Shipments per order over the latency run.
    pub shipments_per_order: f64,
}

/// Latency percentiles in microseconds.
#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    /// Orders measured.
    pub count: u64,
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Slowest.
    pub max_us: f64,
}

/// Returns a number in `low..high` from the generator, so that every run routes the
/// same orders.
fn between(draws: &mut SplitMix64, low: f64, high: f64) -> f64 {
    low + (draws.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * (high - low)
}

/// Builds the network: 200 locations spread over central Mexico, every SKU at each.
pub fn build_routing_engine(now_ms: u64) -> Engine {
    let engine = Engine::new(EngineConfig {
        expected_skus: ROUTING_SKUS,
        expected_positions: ROUTING_SKUS * ROUTING_LOCATIONS,
        ..EngineConfig::default()
    });
    let mut draws = SplitMix64::new(7);
    let specs: Vec<LocationSpec> = (0..ROUTING_LOCATIONS)
        .map(|index| LocationSpec {
            code: format!("MX-{index:03}"),
            kind: if index % 10 == 0 { LocationKind::Warehouse } else { LocationKind::Store },
            lat: between(&mut draws, 17.0, 22.0),
            lon: between(&mut draws, -104.0, -97.0),
            methods: FulfilmentMethods::SHIP.with(FulfilmentMethods::PICKUP),
            daily_capacity: 0,
            active: true,
            routing: LocationRouting {
                shipment_cost_cents: 300 + (index as u32 % 7) * 50,
                ..LocationRouting::default()
            },
        })
        .collect();
    engine.upsert_locations(&specs).expect("generated locations are valid");
    let rows: Vec<PositionRow> = (0..ROUTING_SKUS)
        .flat_map(|sku| {
            specs.iter().map(move |spec| PositionRow {
                sku: format!("SKU-{sku:05}"),
                location: spec.code.clone(),
                on_hand: ON_HAND,
                safety_stock: None,
            })
        })
        .collect();
    engine.load_positions(&rows, now_ms).expect("generated positions are valid");
    engine
}

fn order(draws: &mut SplitMix64, id: String) -> RoutedReserveRequest {
    let lines = (0..ORDER_LINES)
        .map(|_| RouteLine {
            sku: format!("SKU-{:05}", draws.next_u64() % ROUTING_SKUS as u64),
            quantity: 1 + draws.next_u64() % 2,
        })
        .collect();
    RoutedReserveRequest {
        reservation_id: id,
        ttl_ms: 15 * 60 * 1_000,
        order: QuoteRequest {
            channel: None,
            destination: Destination::Point { lat: between(draws, 17.0, 22.0), lon: between(draws, -104.0, -97.0) },
            lines,
            method: RouteMethod::ShipCheapest,
            max_shipments: 3,
            allow_partial: false,
            allow_backorder: false,
        },
    }
}

/// Measures latency on 1 thread for `orders` orders, then throughput on 2 threads for
/// `repetitions` runs of `measurement` each.
pub fn measure_routing(orders: u64, measurement: Duration, repetitions: usize, now_ms: u64) -> RoutingFigures {
    let engine = build_routing_engine(now_ms);

    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
    let mut draws = SplitMix64::new(11);
    let mut shipments = 0u64;
    for index in 0..orders {
        let request = order(&mut draws, format!("lat-{index}"));
        let started = Instant::now();
        let outcome = engine.reserve_routed(&request, now_ms).expect("valid order");
        let nanos = started.elapsed().as_nanos() as u64;
        assert!(outcome.held, "deep stock fills every order");
        shipments += outcome.plan.shipments.len() as u64;
        histogram.record(nanos.max(1)).expect("within bounds");
    }
    let micros = |nanos: u64| nanos as f64 / 1_000.0;
    let latency = Latency {
        count: histogram.len(),
        p50_us: micros(histogram.value_at_quantile(0.50)),
        p99_us: micros(histogram.value_at_quantile(0.99)),
        p999_us: micros(histogram.value_at_quantile(0.999)),
        max_us: micros(histogram.max()),
    };
    eprintln!("routing: 1 thread p50 {:.1} us, p99 {:.1} us", latency.p50_us, latency.p99_us);

    let mut runs = Vec::with_capacity(repetitions);
    for run in 0..repetitions {
        let started = Instant::now();
        let done: u64 = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..2u64)
                .map(|thread| {
                    let engine = &engine;
                    scope.spawn(move || {
                        let mut draws = SplitMix64::new(100 + thread + 10 * run as u64);
                        let mut count = 0u64;
                        while started.elapsed() < measurement {
                            for _ in 0..64 {
                                let request = order(&mut draws, format!("run{run}-t{thread}-{count}"));
                                engine.reserve_routed(&request, now_ms).expect("valid order");
                                count += 1;
                            }
                        }
                        count
                    })
                })
                .collect();
            handles.into_iter().map(|handle| handle.join().expect("worker finished")).sum()
        });
        let rate = done as f64 / started.elapsed().as_secs_f64();
        eprintln!("routing: 2 threads run {} of {repetitions}: {rate:.0} orders/s", run + 1);
        runs.push(rate);
    }
    let mut sorted = runs.clone();
    sorted.sort_by(f64::total_cmp);

    RoutingFigures {
        locations: ROUTING_LOCATIONS,
        skus: ROUTING_SKUS,
        order_lines: ORDER_LINES,
        route_reserve_3_lines_200_locations: latency,
        orders_per_sec: sorted[sorted.len() / 2],
        orders_per_sec_runs: runs,
        shipments_per_order: shipments as f64 / orders.max(1) as f64,
    }
}
