//! Criterion benchmarks of the engine's hot paths, each at 1 and 2 threads.
//!
//! Multi-thread benchmarks use `iter_custom`: criterion's iteration count is split
//! over the threads and the wall time of the whole batch is returned, so a figure is
//! the combined throughput of all threads.
//!
//! Reserve benchmarks run on engines that keep every ended reservation up to the
//! default bound of 10,000,000, so the reservation table grows during a run and its
//! growth steps widen the confidence intervals. `promesa-bench capacity` (without
//! `--quick`) measures reserves on engines filled to that bound instead.
//!
//! Under `cargo test --benches` (criterion's test mode: no `--bench` argument, or
//! `--test`) every benchmark runs once on small catalogues, so the large catalogue is
//! never built there.

use std::cell::OnceCell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use promesa_bench::catalogue::{Catalogue, build_engine};
use promesa_bench::measure::run_count;
use promesa_bench::workload::Workload;
use promesa_engine::Engine;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Positions of the small catalogue.
const POSITIONS_SMALL: u64 = 1_000;

/// Positions of the large catalogue.
const POSITIONS_LARGE: u64 = 10_000_000;

/// Positions of every catalogue in test mode.
const POSITIONS_TEST: u64 = 50;

/// SKUs per batch availability read.
const BATCH_SKUS: usize = 100;

const THREADS: [usize; 2] = [1, 2];

/// True when criterion runs each benchmark once as a test, by its own rule: unless
/// `--bench` is given (as `cargo bench` does), or when `--test` is.
fn test_mode() -> bool {
    let mut bench = false;
    let mut test = false;
    for argument in std::env::args() {
        bench |= argument == "--bench";
        test |= argument == "--test";
    }
    test || !bench
}

fn size(positions: u64) -> Catalogue {
    Catalogue::new(if test_mode() { POSITIONS_TEST } else { positions })
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis() as u64)
}

/// Adds one benchmark per thread count to `group`, each running `workload` on the
/// engine `engine` returns (built on first use, so a filtered-out benchmark costs
/// nothing).
fn bench_threads<'e>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    engine: &dyn Fn() -> &'e Engine,
    catalogue: Catalogue,
    workload: Workload,
) {
    group.throughput(Throughput::Elements(workload.units_per_operation()));
    for threads in THREADS {
        group.bench_function(BenchmarkId::new("threads", threads), |bencher| {
            let engine = engine();
            bencher.iter_custom(|iterations| {
                run_count(engine, catalogue, workload, threads, iterations, now_ms()).elapsed
            });
        });
    }
}

fn reserve_release(criterion: &mut Criterion) {
    let catalogue = size(POSITIONS_SMALL);
    let engine = OnceCell::new();
    let mut group = criterion.benchmark_group("reserve_release/positions_1000");
    bench_threads(&mut group, &|| engine.get_or_init(|| build_engine(&catalogue, now_ms())), catalogue, ONE_LINE);
    group.finish();
}

fn reserve_release_large(criterion: &mut Criterion) {
    let catalogue = size(POSITIONS_LARGE);
    let engine = OnceCell::new();
    let mut group = criterion.benchmark_group("reserve_release/positions_10m");
    bench_threads(&mut group, &|| engine.get_or_init(|| build_engine(&catalogue, now_ms())), catalogue, ONE_LINE);
    group.finish();
}

fn hot_sku(criterion: &mut Criterion) {
    let catalogue = size(POSITIONS_SMALL);
    let engine = OnceCell::new();
    let mut group = criterion.benchmark_group("hot_sku_reserve_release");
    let workload = Workload::HotReserveRelease;
    bench_threads(&mut group, &|| engine.get_or_init(|| build_engine(&catalogue, now_ms())), catalogue, workload);
    group.finish();
}

fn five_lines(criterion: &mut Criterion) {
    let catalogue = size(POSITIONS_SMALL);
    let engine = OnceCell::new();
    let mut group = criterion.benchmark_group("reserve_release_5_lines/positions_1000");
    let workload = Workload::ReserveRelease { lines: 5 };
    bench_threads(&mut group, &|| engine.get_or_init(|| build_engine(&catalogue, now_ms())), catalogue, workload);
    group.finish();
}

fn availability(criterion: &mut Criterion) {
    let catalogue = size(POSITIONS_SMALL);
    let engine = OnceCell::new();
    let engine = &|| engine.get_or_init(|| build_engine(&catalogue, now_ms()));

    let mut group = criterion.benchmark_group("availability_read/positions_1000");
    bench_threads(&mut group, engine, catalogue, Workload::AvailabilityRead);
    group.finish();

    let mut group = criterion.benchmark_group("availability_batch_100/positions_1000");
    bench_threads(&mut group, engine, catalogue, Workload::AvailabilityBatch { skus: BATCH_SKUS });
    group.finish();
}

const ONE_LINE: Workload = Workload::ReserveRelease { lines: 1 };

/// Short runs, so that the whole suite takes a few minutes.
fn config() -> Criterion {
    Criterion::default().sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3))
}

/// The group lives in a private module because `criterion_group!` makes a public,
/// undocumented function.
mod suite {
    use super::*;

    criterion_group! {
        name = benches;
        config = config();
        targets = reserve_release, reserve_release_large, hot_sku, five_lines, availability
    }
}

criterion_main!(suite::benches);
