//! The capacity report: throughput of each workload at 1 and 2 threads, memory per
//! position and per ended reservation, and the retention the engine's bound on ended
//! reservations allows at the measured rate. The engines of these figures keep no log.
//! The figures of engines that write their log to disk (durable reserve + release
//! pairs, restarts from the log) come from [`crate::durable`] and run after the
//! engine's. The `network` section runs last: a real server in this process and real
//! clients over QUIC on loopback, from [`crate::server`].
//!
//! Each throughput figure is the median of [`Plan::repetitions`] runs of
//! [`Plan::measurement`] wall time each (see [`crate::measure::run_for`]). Engines use
//! the default configuration (24 h retention, 10,000,000 ended reservations kept). A
//! server that has run for a while keeps as many ended reservations as the bound
//! allows. So the full report first fills each reserve workload's own engine with
//! [`Plan::prefill_pairs`] reserve + release pairs (the bound), then measures reserves
//! at the bound, where each new ended reservation makes the engine forget the oldest.
//! The fill's own rate is the rate of an engine that still grows.
//!
//! The quick report skips the fill, so its reserve figures come from growing engines.
//! The engine's reservation storage doubles in steps while a run goes on, and a run
//! that meets such a step can be several times slower than the next one.
//!
//! Memory is measured twice: from the engine's own accounting ([`Engine::stats`]) and
//! from the growth of the process's resident set. The memory steps run first, in a
//! fresh process and with nothing freed in between, so the allocator cannot hand back
//! pages of an earlier engine and hide growth.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use promesa_engine::Engine;
use promesa_engine::limits::ENDED_RESERVATIONS_MAX_DEFAULT;
use serde::Serialize;

use crate::catalogue::{Catalogue, LOCATIONS, build_engine};
use crate::durable::{self, DurableFigures, RecoveryFigures, SnapshotFigures};
use crate::measure::{median, run_count, run_for};
use crate::routing::{RoutingFigures, measure_routing};
use crate::server::{self, ServerFigures, ServerPlan};
use crate::system;
use crate::workload::{HOLD_TTL_MS, Workload};

/// Sizes and durations of one report run.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// True for the short run (`--quick`).
    pub quick: bool,
    /// Positions of the small catalogue.
    pub positions_small: u64,
    /// Positions the large catalogue should have (10,000,000).
    pub positions_large_requested: u64,
    /// Positions the large catalogue has in this run.
    pub positions_large: u64,
    /// Wall time of one measured run.
    pub measurement: Duration,
    /// Runs per figure. The figure is their median.
    pub repetitions: usize,
    /// Reserve + release pairs made before measuring memory per ended reservation.
    pub ended_reservation_pairs: u64,
    /// SKUs per batch availability read.
    pub batch_skus: usize,
    /// Lines of the multi-line reservation.
    pub multi_line_lines: usize,
    /// Reserve + release pairs made on 2 threads before measuring reserves on an
    /// engine. With 0, reserves are measured on a fresh engine.
    pub prefill_pairs: u64,
    /// Thread counts of the durable reserve + release figures.
    pub durable_thread_counts: Vec<usize>,
    /// Thread counts of the durable runs that acknowledge a batch of pairs together.
    pub durable_batched_thread_counts: Vec<usize>,
    /// Reserve + release pairs logged after the large catalogue's positions, before
    /// the timed restarts.
    pub recovery_pairs: u64,
    /// Routed orders of the 1-thread routing latency run.
    pub routing_orders: u64,
    /// Settings of the `network` section; `None` skips it.
    pub network: Option<ServerPlan>,
}

impl Plan {
    /// Returns the plan of the full report: 10,000,000 positions, engines filled to the bound of ended
    /// reservations, 3 runs of 2 s per figure, and a restart from a log of 10,000,000
    /// positions and 5,000,000 pairs, then the network runs of 5 s each. Took 4 min 13 s
    /// without the network section and peaked at 4.3 GB resident on a 2-core Xeon VM.
    pub fn full() -> Self {
        Plan {
            quick: false,
            positions_small: 1_000,
            positions_large_requested: 10_000_000,
            positions_large: 10_000_000,
            measurement: Duration::from_secs(2),
            repetitions: 3,
            ended_reservation_pairs: 1_000_000,
            batch_skus: 100,
            multi_line_lines: 5,
            prefill_pairs: ENDED_RESERVATIONS_MAX_DEFAULT,
            durable_thread_counts: vec![2, 8, 32, 64],
            durable_batched_thread_counts: vec![1, 2, 4, 8],
            recovery_pairs: 5_000_000,
            routing_orders: 200_000,
            network: Some(ServerPlan::with_secs(server::SECS_DEFAULT)),
        }
    }

    /// Returns the plan of the quick report: 1,000,000 positions in place of 10,000,000, fresh engines,
    /// 3 runs of 0.3 s per figure, and network runs of 2 s. Meant to finish within a minute on 2 cores.
    pub fn quick() -> Self {
        Plan {
            quick: true,
            positions_large: 1_000_000,
            measurement: Duration::from_millis(300),
            ended_reservation_pairs: 200_000,
            prefill_pairs: 0,
            recovery_pairs: 500_000,
            routing_orders: 20_000,
            network: Some(ServerPlan::with_secs(QUICK_NETWORK_SECS)),
            ..Plan::full()
        }
    }
}

/// Seconds of each network throughput run in the quick report.
const QUICK_NETWORK_SECS: f64 = 2.0;

/// The whole report, written as JSON.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The machine it ran on.
    pub machine: Machine,
    /// When it started: UTC, ISO 8601.
    pub date: String,
    /// True for the short run, which uses a smaller large catalogue.
    pub quick: bool,
    /// Positions of the catalogue behind `engine.reserve_release_10m_positions`: 10,000,000,
    /// or fewer in a quick run.
    pub positions_10m_actual: u64,
    /// Sizes and durations used.
    pub sizes: Sizes,
    /// The engine configuration in force.
    pub config: ConfigUsed,
    /// The figures.
    pub engine: EngineFigures,
    /// Reserve + release pairs on engines that write their log to disk.
    pub durable: DurableFigures,
    /// Restarts from the log.
    pub recovery: RecoveryFigures,
    /// Snapshot figures.
    pub snapshot: SnapshotFigures,
    /// Routed reserves over 200 locations, in process, without a log.
    pub routing: RoutingFigures,
    /// A real server on loopback, durable: round trips at low load, and reserves per
    /// second with one reserve per frame, with batched frames and with batched routed
    /// reserves. `None` when the plan skips it.
    pub network: Option<ServerFigures>,
}

/// The machine the report ran on.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// `model name` from `/proc/cpuinfo`, or "unknown".
    pub cpu_model: String,
    /// Threads the process may run in parallel.
    pub cores: usize,
    /// Page size in bytes, used to turn resident pages into bytes.
    pub page_size_bytes: Option<u64>,
    /// 1-minute load average when the report started: above 0 by much more than
    /// the report's own threads means other processes shared the CPUs.
    pub load_average_1m_before: Option<f64>,
    /// 1-minute load average when the report ended.
    pub load_average_1m_after: Option<f64>,
}

/// Sizes and durations of a run.
#[derive(Clone, Debug, Serialize)]
pub struct Sizes {
    /// Positions of the small catalogue (reserve_release, hot SKU, multi-line, reads).
    pub positions_small: u64,
    /// Positions the large catalogue should have.
    pub positions_10m_requested: u64,
    /// Positions the large catalogue had.
    pub positions_10m_actual: u64,
    /// Locations of every catalogue. Each SKU has a position at each.
    pub locations: u64,
    /// Wall time of one measured run, in seconds.
    pub measurement_secs: f64,
    /// Runs per figure. Each figure is their median.
    pub repetitions: usize,
    /// SKUs per batch availability read.
    pub batch_skus: usize,
    /// Lines of the multi-line reservation.
    pub multi_line_lines: usize,
    /// Pairs made before measuring memory per ended reservation.
    pub ended_reservation_pairs: u64,
    /// Pairs made on each engine before measuring its reserves.
    pub prefill_pairs: u64,
    /// Time-to-live of every hold, in milliseconds.
    pub hold_ttl_ms: u64,
}

/// The engine settings the report ran with (the defaults).
#[derive(Clone, Debug, Serialize)]
pub struct ConfigUsed {
    /// Retention of ended reservations, in milliseconds.
    pub retention_ms: u64,
    /// Bound on ended reservations kept for retries.
    pub ended_reservations_max: u64,
}

/// Throughput of one workload at 1 and 2 threads.
#[derive(Clone, Debug, Serialize)]
pub struct ThreadRates {
    /// The unit counted: "pairs", "reads" or "skus".
    pub unit: &'static str,
    /// Median units per second with 1 thread.
    pub threads_1: f64,
    /// Median units per second with 2 threads.
    pub threads_2: f64,
    /// Every run's units per second with 1 thread.
    pub runs_threads_1: Vec<f64>,
    /// Every run's units per second with 2 threads.
    pub runs_threads_2: Vec<f64>,
    /// Every 1-thread run's CPU share: process CPU time over wall time (see
    /// [`crate::measure::Measurement::cpu_share`]).
    pub cpu_share_runs_threads_1: Vec<Option<f64>>,
    /// Every 2-thread run's CPU share: process CPU time over wall time times 2.
    pub cpu_share_runs_threads_2: Vec<Option<f64>>,
    /// Ended reservations the engine kept before the first run (reserve workloads).
    pub ended_reservations_kept_before: Option<u64>,
    /// Ended reservations the engine kept after the last run (reserve workloads).
    pub ended_reservations_kept_after: Option<u64>,
    /// Ended reservations forgotten because of the bound during the runs.
    pub forgotten_by_bound: Option<u64>,
    /// The fill of the engine before the runs, if the plan fills engines.
    pub prefill: Option<Prefill>,
}

/// Every figure of the report.
#[derive(Clone, Debug, Serialize)]
pub struct EngineFigures {
    /// Reserve + release pairs per second, one line on a random position of the small
    /// catalogue.
    pub reserve_release: ThreadRates,
    /// As `reserve_release`, on the large catalogue.
    pub reserve_release_10m_positions: ThreadRates,
    /// Reserve + release pairs per second, all on one position.
    pub hot_sku_reserve: ThreadRates,
    /// Reserve + release pairs per second of multi-line reservations on random
    /// positions of the small catalogue.
    pub multi_line_reserve_release: ThreadRates,
    /// Single availability reads by code per second (`Engine::availability`).
    pub availability_read: ThreadRates,
    /// SKUs read per second through `Engine::availability_batch`, all locations.
    pub availability_batch_read: ThreadRates,
    /// `Stats::position_bytes / Stats::positions` of the large catalogue: positions
    /// and their indexes, without code strings.
    pub bytes_per_position: f64,
    /// `Stats::code_bytes / Stats::positions` of the large catalogue.
    pub code_bytes_per_position: f64,
    /// Resident set growth while building the large catalogue, per position. Includes
    /// code strings, the allocator's slack and the buffers of one load batch.
    pub rss_bytes_per_position: Option<f64>,
    /// Seconds to build the large catalogue.
    pub build_secs_10m_positions: f64,
    /// `Stats::reservation_bytes / Stats::ended_reservations_kept` after
    /// `sizes.ended_reservation_pairs` pairs on a fresh engine.
    pub bytes_per_ended_reservation: f64,
    /// Resident set growth during those pairs, per ended reservation.
    pub rss_bytes_per_ended_reservation: Option<f64>,
    /// Ended reservations kept when memory per ended reservation was measured.
    pub ended_reservations_measured: u64,
    /// Seconds of retries the bound on ended reservations covers at the measured
    /// `reserve_release.threads_2` rate: bound / pairs per second.
    pub retention_secs_at_bound: f64,
    /// Estimated memory of a full bound of ended reservations, in bytes:
    /// `bytes_per_ended_reservation` times the bound.
    pub ended_reservation_bytes_at_bound: f64,
}

/// Reserve + release pairs made on a fresh engine before measuring it: the rate of
/// an engine that still grows its reservation table.
#[derive(Clone, Debug, Serialize)]
pub struct Prefill {
    /// Pairs made.
    pub pairs: u64,
    /// Threads that made them.
    pub threads: usize,
    /// Wall time, in seconds.
    pub secs: f64,
    /// Pairs per second.
    pub pairs_per_second: f64,
}

/// Thread counts every throughput figure is measured at.
const THREADS: [usize; 2] = [1, 2];

/// Runs the report and prints one progress line per measurement to stderr.
pub fn run(plan: &Plan) -> Report {
    let date = system::utc_now_iso8601();
    let load_average_1m_before = system::load_average_1m();
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis() as u64);
    let small = Catalogue::new(plan.positions_small);
    let large = Catalogue::new(plan.positions_large);

    // Memory steps run first, and the first engine stays alive until the second is
    // built, for the reason in the module doc.
    let ended = measure_ended_reservations(small, plan.ended_reservation_pairs, now_ms);
    let (large_engine, positions) = measure_positions(large, now_ms);
    drop(ended.engine);

    let one_line = Workload::ReserveRelease { lines: 1 };
    let prefill_10m = prefill(plan, &large_engine, large, "10m reserve_release", now_ms);
    let mut reserve_release_10m = measure_rates(plan, &large_engine, large, one_line, "10m reserve_release", now_ms);
    reserve_release_10m.prefill = prefill_10m;
    let config = ConfigUsed {
        retention_ms: large_engine.config().retention_ms,
        ended_reservations_max: large_engine.config().ended_reservations_max,
    };
    drop(large_engine);

    let reserve_release = measure_reserves(plan, small, one_line, "reserve_release", now_ms);
    let hot_sku_reserve = measure_reserves(plan, small, Workload::HotReserveRelease, "hot_sku_reserve", now_ms);
    let multi_line = Workload::ReserveRelease { lines: plan.multi_line_lines };
    let multi_line_reserve_release = measure_reserves(plan, small, multi_line, "multi_line", now_ms);

    let routing = measure_routing(plan.routing_orders, plan.measurement, plan.repetitions, now_ms);

    let engine = build_engine(&small, now_ms);
    let availability_read =
        measure_rates(plan, &engine, small, Workload::AvailabilityRead, "availability_read", now_ms);
    let batch = Workload::AvailabilityBatch { skus: plan.batch_skus };
    let availability_batch_read = measure_rates(plan, &engine, small, batch, "availability_batch_read", now_ms);
    drop(engine);

    // The logging engines run last because the recovery step builds the largest engine
    // and log.
    let durable = durable::measure_durable(plan, now_ms);
    let (recovery, snapshot) = durable::measure_recovery(plan, now_ms);

    let network = plan.network.as_ref().map(|network_plan| {
        eprintln!("network: a server on loopback, 3 runs of {:.1} s after the round trips", network_plan.secs);
        let figures = server::measure_server(network_plan);
        eprint!("{}", server::render(&figures));
        figures
    });

    let bound = config.ended_reservations_max as f64;
    let engine_figures = EngineFigures {
        retention_secs_at_bound: bound / reserve_release.threads_2,
        ended_reservation_bytes_at_bound: bound * ended.bytes_per_ended,
        reserve_release,
        reserve_release_10m_positions: reserve_release_10m,
        hot_sku_reserve,
        multi_line_reserve_release,
        availability_read,
        availability_batch_read,
        bytes_per_position: positions.bytes_per_position,
        code_bytes_per_position: positions.code_bytes_per_position,
        rss_bytes_per_position: positions.rss_bytes_per_position,
        build_secs_10m_positions: positions.build_secs,
        bytes_per_ended_reservation: ended.bytes_per_ended,
        rss_bytes_per_ended_reservation: ended.rss_bytes_per_ended,
        ended_reservations_measured: ended.kept,
    };
    Report {
        machine: Machine {
            cpu_model: system::cpu_model().unwrap_or_else(|| "unknown".to_owned()),
            cores: system::cores(),
            page_size_bytes: system::page_size(),
            load_average_1m_before,
            load_average_1m_after: system::load_average_1m(),
        },
        date,
        quick: plan.quick,
        positions_10m_actual: plan.positions_large,
        sizes: Sizes {
            positions_small: plan.positions_small,
            positions_10m_requested: plan.positions_large_requested,
            positions_10m_actual: plan.positions_large,
            locations: LOCATIONS,
            measurement_secs: plan.measurement.as_secs_f64(),
            repetitions: plan.repetitions,
            batch_skus: plan.batch_skus,
            multi_line_lines: plan.multi_line_lines,
            ended_reservation_pairs: plan.ended_reservation_pairs,
            prefill_pairs: plan.prefill_pairs,
            hold_ttl_ms: HOLD_TTL_MS,
        },
        config,
        engine: engine_figures,
        durable,
        recovery,
        snapshot,
        routing,
        network,
    }
}

/// Measures a reserve workload on its own fresh engine, filled first when
/// [`Plan::prefill_pairs`] is above 0, so that no workload inherits another's ended
/// reservations.
fn measure_reserves(plan: &Plan, catalogue: Catalogue, workload: Workload, name: &str, now_ms: u64) -> ThreadRates {
    let engine = build_engine(&catalogue, now_ms);
    let fill = prefill(plan, &engine, catalogue, name, now_ms);
    let mut rates = measure_rates(plan, &engine, catalogue, workload, name, now_ms);
    rates.prefill = fill;
    rates
}

/// Makes [`Plan::prefill_pairs`] pairs on 2 threads, if any, and returns their rate.
fn prefill(plan: &Plan, engine: &Engine, catalogue: Catalogue, name: &str, now_ms: u64) -> Option<Prefill> {
    const THREADS: usize = 2;
    if plan.prefill_pairs == 0 {
        return None;
    }
    let workload = Workload::ReserveRelease { lines: 1 };
    let measurement = run_count(engine, catalogue, workload, THREADS, plan.prefill_pairs, now_ms);
    let fill = Prefill {
        pairs: measurement.units,
        threads: THREADS,
        secs: measurement.elapsed.as_secs_f64(),
        pairs_per_second: measurement.units_per_second(),
    };
    eprintln!("prefill {name}: {} pairs in {:.1} s, {:.0} pairs/s", fill.pairs, fill.secs, fill.pairs_per_second);
    Some(fill)
}

/// Memory per ended reservation, with the engine it was measured on.
struct EndedMemory {
    engine: Engine,
    kept: u64,
    bytes_per_ended: f64,
    rss_bytes_per_ended: Option<f64>,
}

/// Makes `pairs` reserve + release pairs on one thread of a fresh engine and divides
/// the engine's reservation bytes, and the resident set growth, by the ended
/// reservations kept.
fn measure_ended_reservations(catalogue: Catalogue, pairs: u64, now_ms: u64) -> EndedMemory {
    let engine = build_engine(&catalogue, now_ms);
    let before = engine.stats();
    let rss_before = system::resident_bytes();
    run_count(&engine, catalogue, Workload::ReserveRelease { lines: 1 }, 1, pairs, now_ms);
    let rss_after = system::resident_bytes();
    let after = engine.stats();

    let kept = after.ended_reservations_kept;
    assert!(kept > 0, "pairs leave ended reservations");
    let bytes = after.reservation_bytes.saturating_sub(before.reservation_bytes);
    let rss_growth = rss_before.zip(rss_after).map(|(before, after)| after.saturating_sub(before));
    eprintln!("ended reservations: {kept} kept, {bytes} bytes by engine accounting, rss growth {rss_growth:?} bytes");
    EndedMemory {
        engine,
        kept,
        bytes_per_ended: bytes as f64 / kept as f64,
        rss_bytes_per_ended: rss_growth.map(|growth| growth as f64 / kept as f64),
    }
}

/// Memory per position of the large catalogue.
struct PositionMemory {
    bytes_per_position: f64,
    code_bytes_per_position: f64,
    rss_bytes_per_position: Option<f64>,
    build_secs: f64,
}

/// Builds the large catalogue and measures its memory per position.
fn measure_positions(catalogue: Catalogue, now_ms: u64) -> (Engine, PositionMemory) {
    let rss_before = system::resident_bytes();
    let start = Instant::now();
    let engine = build_engine(&catalogue, now_ms);
    let build_secs = start.elapsed().as_secs_f64();
    let rss_after = system::resident_bytes();

    let stats = engine.stats();
    let positions = stats.positions as f64;
    let rss_growth = rss_before.zip(rss_after).map(|(before, after)| after.saturating_sub(before));
    eprintln!(
        "positions: {} built in {build_secs:.1} s, {} position bytes, {} code bytes, rss growth {rss_growth:?} bytes",
        stats.positions, stats.position_bytes, stats.code_bytes
    );
    let memory = PositionMemory {
        bytes_per_position: stats.position_bytes as f64 / positions,
        code_bytes_per_position: stats.code_bytes as f64 / positions,
        rss_bytes_per_position: rss_growth.map(|growth| growth as f64 / positions),
        build_secs,
    };
    (engine, memory)
}

/// Measures `workload` at each of [`THREADS`], [`Plan::repetitions`] runs each.
fn measure_rates(
    plan: &Plan,
    engine: &Engine,
    catalogue: Catalogue,
    workload: Workload,
    name: &str,
    now_ms: u64,
) -> ThreadRates {
    let before = engine.stats();
    let mut runs = [Vec::new(), Vec::new()];
    let mut cpu_shares = [Vec::new(), Vec::new()];
    for (slot, &threads) in THREADS.iter().enumerate() {
        for _ in 0..plan.repetitions {
            let measurement = run_for(engine, catalogue, workload, threads, plan.measurement, now_ms);
            eprintln!(
                "{name}: {threads} thread(s): {:.0} {}/s, cpu share {:.2}",
                measurement.units_per_second(),
                unit_name(workload),
                measurement.cpu_share().unwrap_or(f64::NAN)
            );
            runs[slot].push(measurement.units_per_second());
            cpu_shares[slot].push(measurement.cpu_share());
        }
    }

    let reserves = matches!(workload, Workload::ReserveRelease { .. } | Workload::HotReserveRelease);
    let stats = engine.stats();
    let [runs_threads_1, runs_threads_2] = runs;
    let [cpu_share_runs_threads_1, cpu_share_runs_threads_2] = cpu_shares;
    ThreadRates {
        unit: unit_name(workload),
        threads_1: median(&runs_threads_1),
        threads_2: median(&runs_threads_2),
        runs_threads_1,
        runs_threads_2,
        cpu_share_runs_threads_1,
        cpu_share_runs_threads_2,
        ended_reservations_kept_before: reserves.then_some(before.ended_reservations_kept),
        ended_reservations_kept_after: reserves.then_some(stats.ended_reservations_kept),
        forgotten_by_bound: reserves.then_some(stats.forgotten_by_bound - before.forgotten_by_bound),
        prefill: None,
    }
}

fn unit_name(workload: Workload) -> &'static str {
    match workload {
        Workload::ReserveRelease { .. } | Workload::HotReserveRelease => "pairs",
        Workload::AvailabilityRead => "reads",
        Workload::AvailabilityBatch { .. } => "skus",
    }
}

/// A throughput target at 2 threads, shown beside the measured figure.
struct Target {
    name: &'static str,
    rates: fn(&EngineFigures) -> &ThreadRates,
    per_second_min: Option<f64>,
}

const TARGETS: [Target; 6] = [
    Target { name: "reserve_release", rates: |figures| &figures.reserve_release, per_second_min: Some(5e6) },
    Target {
        name: "reserve_release_10m_positions",
        rates: |figures| &figures.reserve_release_10m_positions,
        per_second_min: Some(3e6),
    },
    Target { name: "hot_sku_reserve", rates: |figures| &figures.hot_sku_reserve, per_second_min: Some(2e6) },
    Target {
        name: "multi_line_reserve_release",
        rates: |figures| &figures.multi_line_reserve_release,
        per_second_min: None,
    },
    Target { name: "availability_read", rates: |figures| &figures.availability_read, per_second_min: Some(20e6) },
    Target { name: "availability_batch_read", rates: |figures| &figures.availability_batch_read, per_second_min: None },
];

/// Maximum bytes per position (engine accounting) the engine aims for.
const BYTES_PER_POSITION_TARGET_MAX: f64 = 64.0;

/// Renders the report as a short text table.
pub fn render_table(report: &Report) -> String {
    let mut out = String::new();
    let machine = &report.machine;
    out.push_str(&format!("{} ({} cores), {}{}\n", machine.cpu_model, machine.cores, report.date, quick_note(report)));
    out.push_str(&format!(
        "{:<32} {:>6} {:>14} {:>14} {:>12} {:>8}\n",
        "workload", "unit", "1 thread/s", "2 threads/s", "target (2)", "cpu (2)"
    ));
    for target in &TARGETS {
        let rates = (target.rates)(&report.engine);
        let goal = match target.per_second_min {
            Some(min) => format!("{}{}", if rates.threads_2 >= min { ">= " } else { "SHORT " }, millions(min)),
            None => "-".to_owned(),
        };
        let cpu_shares: Vec<f64> = rates.cpu_share_runs_threads_2.iter().flatten().copied().collect();
        let cpu_share = if cpu_shares.is_empty() { "-".to_owned() } else { format!("{:.2}", median(&cpu_shares)) };
        out.push_str(&format!(
            "{:<32} {:>6} {:>14} {:>14} {:>12} {:>8}\n",
            target.name,
            rates.unit,
            millions(rates.threads_1),
            millions(rates.threads_2),
            goal,
            cpu_share
        ));
    }

    let figures = &report.engine;
    let position_goal = if figures.bytes_per_position <= BYTES_PER_POSITION_TARGET_MAX { "<=" } else { "SHORT, >" };
    out.push_str(&format!(
        "bytes per position: {:.1} (target {position_goal} {BYTES_PER_POSITION_TARGET_MAX}), codes {:.1}, rss {}\n",
        figures.bytes_per_position,
        figures.code_bytes_per_position,
        optional_bytes(figures.rss_bytes_per_position)
    ));
    out.push_str(&format!(
        "bytes per ended reservation: {:.1}, rss {}; the bound of {} covers {:.1} s at {} pairs/s\n",
        figures.bytes_per_ended_reservation,
        optional_bytes(figures.rss_bytes_per_ended_reservation),
        report.config.ended_reservations_max,
        figures.retention_secs_at_bound,
        millions(figures.reserve_release.threads_2)
    ));
    out.push_str(concat!(
        "cpu (2): median CPU time of the 2-thread runs over 2 x wall time; ",
        "below about 0.9, threads waited or other processes took the CPUs\n",
    ));
    out.push_str(&durable::render_table(&report.durable, &report.recovery, &report.snapshot));
    let routing = &report.routing;
    let latency = &routing.route_reserve_3_lines_200_locations;
    let goal = if latency.p99_us <= ROUTE_P99_US_TARGET_MAX { "<=" } else { "SHORT, >" };
    out.push_str(&format!(
        "routed reserve, {}-line orders over {} locations, no log: p50 {:.1} us, p99 {:.1} us (target {goal} \
         {ROUTE_P99_US_TARGET_MAX}); {:.0} orders/s on 2 threads\n",
        routing.order_lines, routing.locations, latency.p50_us, latency.p99_us, routing.orders_per_sec
    ));
    if let Some(network) = &report.network {
        out.push_str(&server::render_table(network));
    }
    out
}

/// The routed reserve's p99 target, in microseconds.
const ROUTE_P99_US_TARGET_MAX: f64 = 10.0;

fn quick_note(report: &Report) -> String {
    if report.quick {
        format!(", quick: {} positions in place of 10M", report.positions_10m_actual)
    } else {
        String::new()
    }
}

fn millions(per_second: f64) -> String {
    format!("{:.2}M", per_second / 1e6)
}

fn optional_bytes(bytes: Option<f64>) -> String {
    bytes.map_or_else(|| "unknown".to_owned(), |bytes| format!("{bytes:.1}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_plan() -> Plan {
        Plan {
            quick: true,
            positions_small: 30,
            positions_large_requested: 10_000_000,
            positions_large: 50,
            measurement: Duration::from_millis(5),
            repetitions: 1,
            ended_reservation_pairs: 100,
            batch_skus: 4,
            multi_line_lines: 5,
            prefill_pairs: 200,
            durable_thread_counts: vec![2, 3],
            durable_batched_thread_counts: vec![2],
            recovery_pairs: 20,
            routing_orders: 50,
            network: None,
        }
    }

    /// Network figures as a server run fills them, without running one.
    fn filled_network() -> ServerFigures {
        let run = |reserves_per_frame, reserves_per_sec| server::Throughput {
            reserves_per_frame,
            reserves_per_sec,
            frames_per_sec: reserves_per_sec / reserves_per_frame as f64,
            frame_us_p50: 900,
            frame_us_p99: 4_000,
        };
        ServerFigures {
            plan: ServerPlan::with_secs(1.0),
            ping_us_p50: 80,
            ping_us_p99: 140,
            reserve_us_p50: 260,
            reserve_us_p99: 410,
            single: run(1, 93_100.0),
            batched: run(256, 1_200_000.0),
            routed_batched: run(256, 112_500.0),
        }
    }

    #[test]
    fn report_has_required_keys() {
        let report = run(&tiny_plan());
        let json = serde_json::to_value(&report).expect("the report serializes");

        for workload in [
            "reserve_release",
            "reserve_release_10m_positions",
            "hot_sku_reserve",
            "multi_line_reserve_release",
            "availability_read",
            "availability_batch_read",
        ] {
            for threads in ["threads_1", "threads_2"] {
                let rate = json["engine"][workload][threads].as_f64();
                assert!(rate.is_some_and(|rate| rate > 0.0), "{workload}.{threads} is {rate:?}");
            }
        }

        for figure in ["bytes_per_position", "bytes_per_ended_reservation", "retention_secs_at_bound"] {
            let value = json["engine"][figure].as_f64();
            assert!(value.is_some_and(|value| value > 0.0), "{figure} is {value:?}");
        }

        assert!(json["machine"]["cpu_model"].is_string());
        assert!(json["machine"]["cores"].as_u64().is_some_and(|cores| cores > 0));
        assert!(json["date"].as_str().is_some_and(|date| date.ends_with('Z')));
        assert_eq!(json["quick"], true);
        assert_eq!(json["positions_10m_actual"], 50);
        assert_eq!(json["config"]["ended_reservations_max"], 10_000_000);

        assert_eq!(json["engine"]["reserve_release"]["prefill"]["pairs"], 200);
        assert_eq!(json["engine"]["hot_sku_reserve"]["prefill"]["pairs"], 200);
        assert_eq!(json["engine"]["reserve_release_10m_positions"]["prefill"]["pairs"], 200);
        assert!(json["engine"]["availability_read"]["prefill"].is_null());
        assert_eq!(json["engine"]["reserve_release"]["ended_reservations_kept_before"], 200);

        let durable = &json["durable"];
        for rates in ["reserve_release", "reserve_release_not_durable"] {
            for key in ["ops_per_sec", "threads_2", "threads_3"] {
                let rate = durable[rates][key].as_f64();
                assert!(rate.is_some_and(|rate| rate > 0.0), "durable.{rates}.{key} is {rate:?}");
            }
        }
        assert_eq!(durable["reserve_release"]["durability"], "sync");
        assert_eq!(durable["reserve_release_not_durable"]["durability"], "not_durable");
        assert_eq!(durable["reserve_release_batched"]["acknowledged"], "per batch of 512 pairs");
        assert!(durable["reserve_release_batched"]["threads_2"].as_f64().is_some_and(|rate| rate > 0.0));
        let records_per_fsync = durable["records_per_fsync"].as_f64();
        assert!(records_per_fsync.is_some_and(|records| records >= 1.0), "records_per_fsync is {records_per_fsync:?}");
        assert!(durable["fsync_us_p99"].as_u64().is_some_and(|p99| p99 >= durable["fsync_us_p50"].as_u64().unwrap()));

        let recovery = &json["recovery"];
        assert_eq!(recovery["positions"], 50);
        assert_eq!(recovery["positions_requested"], 10_000_000);
        assert_eq!(recovery["reservation_pairs"], 20);
        // A snapshot holds the positions and the pairs of the snapshot measurement;
        // the log after it 2 records per pair.
        assert_eq!(recovery["records"], 2 * 20);
        assert_eq!(recovery["restarts"][0]["records"], 0);
        for figure in ["records_per_sec", "restart_10m_secs"] {
            let value = recovery[figure].as_f64();
            assert!(value.is_some_and(|value| value > 0.0), "recovery.{figure} is {value:?}");
        }

        assert_eq!(json["snapshot"]["positions"], 50);
        assert!(json["routing"]["route_reserve_3_lines_200_locations"]["p99_us"].as_f64().is_some_and(|us| us > 0.0));
        assert!(json["routing"]["orders_per_sec"].as_f64().is_some_and(|rate| rate > 0.0));
        assert_eq!(json["routing"]["route_reserve_3_lines_200_locations"]["count"], 50);
        assert!(json["snapshot"]["max_pause_ms"].as_f64().is_some_and(|ms| ms > 0.0));
        assert!(json["network"].is_null(), "the tiny plan skips the network section");
    }

    #[test]
    fn report_json_carries_network_figures() {
        let mut report = run(&tiny_plan());
        report.network = Some(filled_network());
        let json = serde_json::to_value(&report).expect("the report serializes");

        let network = &json["network"];
        for key in ["ping_us_p50", "ping_us_p99", "reserve_us_p50", "reserve_us_p99"] {
            assert!(network[key].as_u64().is_some_and(|us| us > 0), "network.{key}: {network}");
        }
        for run in ["single", "batched", "routed_batched"] {
            for key in ["reserves_per_sec", "frames_per_sec"] {
                let rate = network[run][key].as_f64();
                assert!(rate.is_some_and(|rate| rate > 0.0), "network.{run}.{key} is {rate:?}");
            }
            for key in ["reserves_per_frame", "frame_us_p50", "frame_us_p99"] {
                assert!(network[run][key].as_u64().is_some(), "network.{run}.{key}");
            }
        }
        assert_eq!(network["single"]["reserves_per_frame"], 1);
        assert_eq!(network["plan"]["secs"], 1.0);
        assert_eq!(network["plan"]["runtime"], "multi_thread");

        let table = render_table(&report);
        assert!(table.contains("reserve, 1 per frame"), "{table}");
        assert!(table.contains("SHORT 0.30M"), "{table}");
        assert!(table.contains(">= 1.00M"), "{table}");
        assert!(table.contains("routed reserve, 256 per frame"), "{table}");
        assert!(table.contains("SHORT 0.20M"), "{table}");
        assert!(table.contains("ping p50 80 us, p99 140 us"), "{table}");
    }

    #[test]
    fn table_lists_every_workload() {
        let report = run(&tiny_plan());
        let table = render_table(&report);
        for target in &TARGETS {
            assert!(table.contains(target.name), "{} is missing from\n{table}", target.name);
        }
        assert!(table.contains("bytes per ended reservation"));
        assert!(table.contains("durable reserve + release"));
        assert!(table.contains("NOT DURABLE"));
        assert!(table.contains("restart from a snapshot"));
        assert!(table.contains("longest reserve + release pair"));
    }

    #[test]
    fn quick_plan_is_smaller() {
        let (quick, full) = (Plan::quick(), Plan::full());
        assert!(quick.positions_large < full.positions_large);
        assert!(quick.measurement < full.measurement);
        assert_eq!(full.positions_large, full.positions_large_requested);
        assert_eq!(quick.prefill_pairs, 0);
        assert_eq!(full.prefill_pairs, ENDED_RESERVATIONS_MAX_DEFAULT);
        let (quick_network, full_network) = (quick.network.unwrap(), full.network.unwrap());
        assert!(quick_network.secs < full_network.secs);
        assert_eq!(full_network, ServerPlan::with_secs(server::SECS_DEFAULT));
    }
}
