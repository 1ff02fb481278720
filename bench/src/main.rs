//! `promesa-bench`: measures the engine's capacity on this machine and writes the
//! figures as a table and, on request, as JSON.

use std::path::PathBuf;
use std::process::ExitCode;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand, ValueEnum};
use promesa_bench::capacity::{self, Plan};
use promesa_bench::catalogue::{Catalogue, build_engine, load_catalogue};
use promesa_bench::durable::LogFolder;
use promesa_bench::measure::{Batch, OPERATIONS_PER_CHECK, run_count, run_for_in_batches};
use promesa_bench::server::{self, ServerPlan, ServerRuntime, measure_server};
use promesa_bench::workload::Workload;
use promesa_engine::wal::writer::Durability;

// The engine allocates for every reservation. A server built on it would use
// mimalloc, so the figures include mimalloc's costs and not the system allocator's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Measures Promesa's engine.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Starts a server in this process on loopback (durable sync mode, data in a
    /// temporary folder) and measures it through real clients: round-trip latency at
    /// low load, and reserves per second with one and with many reserves per frame.
    Server {
        /// Seconds of each throughput run.
        #[arg(long, default_value_t = server::SECS_DEFAULT)]
        secs: f64,
        /// Client connections.
        #[arg(long, default_value_t = server::CONNECTIONS_DEFAULT)]
        connections: usize,
        /// Frames in flight per connection.
        #[arg(long, default_value_t = server::IN_FLIGHT_DEFAULT)]
        in_flight: usize,
        /// Reserves per frame in the batched run.
        #[arg(long, default_value_t = server::BATCH_DEFAULT)]
        batch: usize,
        /// The server's tokio runtime.
        #[arg(long, value_enum, default_value = "multi-thread")]
        runtime: RuntimeName,
        /// Also writes the figures as JSON to this file.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
    /// Measures throughput at 1 and 2 threads, memory per position and per ended
    /// reservation, durable reserve + release pairs with the log in the temporary
    /// folder (TMPDIR, else /tmp), restarts from the log, and a server on loopback as
    /// `server` does (its `network` section), then prints a table.
    Capacity {
        /// Also writes the figures as JSON to this file.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Uses 1,000,000 positions in place of 10,000,000, 500,000 logged pairs in
        /// place of 5,000,000 before the restarts, 0.3 s engine runs and 2 s network
        /// runs, to finish in about a minute on 2 cores.
        #[arg(long)]
        quick: bool,
    },
    /// Measures routed reserves of 3-line orders over 200 locations in process,
    /// without a log: latency on 1 thread and orders per second on 2 threads.
    Routing {
        /// Orders of the latency run.
        #[arg(long, default_value_t = 100_000)]
        orders: u64,
        /// Seconds of each 2-thread run.
        #[arg(long, default_value_t = 2.0)]
        secs: f64,
        /// 2-thread runs; the figure is their median.
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Plans capacity from a capacity report: what one node sustains for an order
    /// volume, the headroom at peak, memory and disk, and when a second node is needed.
    Plan {
        /// Orders per day.
        #[arg(long)]
        orders_per_day: f64,
        /// Peak order rate over the day's average rate.
        #[arg(long, default_value_t = 5.0)]
        peak_factor: f64,
        /// SKUs.
        #[arg(long)]
        skus: u64,
        /// Locations.
        #[arg(long)]
        locations: u64,
        /// Positions, if not every SKU is at every location.
        #[arg(long)]
        positions: Option<u64>,
        /// Logged changes per order (reserve, confirm, fulfil).
        #[arg(long, default_value_t = 3.0)]
        changes_per_order: f64,
        /// Hours ended reservations are kept for retries.
        #[arg(long, default_value_t = 24.0)]
        retention_hours: f64,
        /// The capacity report (`capacity --json FILE`) to plan from.
        #[arg(long = "from", value_name = "FILE", default_value = "capacity.json")]
        report: PathBuf,
        /// Also writes the plan as JSON to this file.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
    /// Runs one workload for a while and prints its rate: a target for profilers.
    Run {
        /// The workload.
        #[arg(long, value_enum)]
        workload: WorkloadName,
        /// Threads running it.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Positions of the catalogue.
        #[arg(long, default_value_t = 1_000)]
        positions: u64,
        /// Lines per reservation (reserve-release only).
        #[arg(long, default_value_t = 1)]
        lines: usize,
        /// SKUs per call (availability-batch only).
        #[arg(long, default_value_t = 100)]
        batch_skus: usize,
        /// Seconds to run.
        #[arg(long, default_value_t = 5.0)]
        secs: f64,
        /// Reserve + release pairs to make on 2 threads before the run, such as
        /// 10000000 to run at the default bound of ended reservations.
        #[arg(long, default_value_t = 0)]
        prefill: u64,
        /// Writes the engine's log to a temporary folder (TMPDIR, else /tmp) with
        /// this durability. Without it, the engine keeps no log.
        #[arg(long, value_enum)]
        log: Option<LogDurability>,
        /// With `--log`: operations each thread acknowledges together with
        /// `Engine::batch` (one wait for the log per batch). 0 waits per call.
        #[arg(long, default_value_t = 0)]
        acknowledge_batch: u64,
    },
}

/// Runtimes of the `server` subcommand.
#[derive(Clone, Copy, ValueEnum)]
enum RuntimeName {
    /// One thread for the endpoint and every connection.
    CurrentThread,
    /// A worker thread per core.
    MultiThread,
}

/// Workloads of the `run` subcommand.
#[derive(Clone, Copy, ValueEnum)]
enum WorkloadName {
    /// Reserve and release random positions.
    ReserveRelease,
    /// Reserve and release one position.
    HotSku,
    /// Single availability reads by code.
    AvailabilityRead,
    /// Batch availability reads.
    AvailabilityBatch,
}

/// Durability of the `run` subcommand's log.
#[derive(Clone, Copy, ValueEnum)]
enum LogDurability {
    /// Each call returns after the fdatasync that covers its record.
    Sync,
    /// Records are written but never synced (not durable).
    NotDurable,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Server { secs, connections, in_flight, batch, runtime, json } => {
            let runtime = match runtime {
                RuntimeName::CurrentThread => ServerRuntime::CurrentThread,
                RuntimeName::MultiThread => ServerRuntime::MultiThread,
            };
            let plan = ServerPlan { secs, connections, in_flight, batch, runtime };
            let figures = measure_server(&plan);
            print!("{}", promesa_bench::server::render(&figures));
            if let Some(path) = json {
                let text = serde_json::to_string_pretty(&figures).expect("the figures serialize");
                if let Err(error) = std::fs::write(&path, text) {
                    eprintln!("promesa-bench: failed to write {}: {error}", path.display());
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Command::Capacity { json, quick } => {
            let plan = if quick { Plan::quick() } else { Plan::full() };
            let report = capacity::run(&plan);
            print!("{}", capacity::render_table(&report));
            if let Some(path) = json {
                let text = serde_json::to_string_pretty(&report).expect("the report serializes");
                if let Err(error) = std::fs::write(&path, text + "\n") {
                    eprintln!("error: failed to write the JSON report to {}: {error}", path.display());
                    return ExitCode::FAILURE;
                }
                eprintln!("wrote {}", path.display());
            }
            ExitCode::SUCCESS
        }
        Command::Routing { orders, secs, runs } => {
            let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis() as u64);
            let figures = promesa_bench::routing::measure_routing(orders, Duration::from_secs_f64(secs), runs, now_ms);
            println!("{}", serde_json::to_string_pretty(&figures).expect("the figures serialize"));
            ExitCode::SUCCESS
        }
        Command::Plan {
            orders_per_day,
            peak_factor,
            skus,
            locations,
            positions,
            changes_per_order,
            retention_hours,
            report,
            json,
        } => {
            let text = match std::fs::read_to_string(&report) {
                Ok(text) => text,
                Err(error) => {
                    eprintln!(
                        "error: failed to read the capacity report {}: {error}; write one with \
                         `promesa-bench capacity --json {}`",
                        report.display(),
                        report.display()
                    );
                    return ExitCode::FAILURE;
                }
            };
            let report_value: serde_json::Value = match serde_json::from_str(&text) {
                Ok(value) => value,
                Err(error) => {
                    eprintln!("error: {} is not a capacity report: {error}", report.display());
                    return ExitCode::FAILURE;
                }
            };
            let input = promesa_bench::plan::PlanInput {
                orders_per_day,
                peak_factor,
                skus,
                locations,
                positions: positions.unwrap_or(skus * locations),
                changes_per_order,
                retention_hours,
                ended_reservations_max: promesa_engine::limits::ENDED_RESERVATIONS_MAX_DEFAULT as f64,
                machine_memory_bytes: promesa_bench::system::memory_bytes().map(|bytes| bytes as f64),
            };
            let plan = match promesa_bench::plan::plan(input, &report_value) {
                Ok(plan) => plan,
                Err(error) => {
                    eprintln!("error: {error}");
                    return ExitCode::FAILURE;
                }
            };
            print!("{}", promesa_bench::plan::render(&plan));
            if let Some(path) = json {
                let text = serde_json::to_string_pretty(&plan).expect("the plan serializes");
                if let Err(error) = std::fs::write(&path, text + "\n") {
                    eprintln!("error: failed to write {}: {error}", path.display());
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Command::Run { workload, threads, positions, lines, batch_skus, secs, prefill, log, acknowledge_batch } => {
            let workload = match workload {
                WorkloadName::ReserveRelease => Workload::ReserveRelease { lines },
                WorkloadName::HotSku => Workload::HotReserveRelease,
                WorkloadName::AvailabilityRead => Workload::AvailabilityRead,
                WorkloadName::AvailabilityBatch => Workload::AvailabilityBatch { skus: batch_skus },
            };
            let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis() as u64);
            let catalogue = Catalogue::new(positions);
            // Declared before the engine, so the engine and its log writer stop before
            // the folder is removed.
            let folder = log.map(|_| LogFolder::create());
            let engine = match (&folder, log) {
                (Some(folder), Some(log)) => {
                    let durability = match log {
                        LogDurability::Sync => Durability::Sync,
                        LogDurability::NotDurable => Durability::NotDurable,
                    };
                    eprintln!("log folder: {}", folder.path().display());
                    let (engine, _) = folder.open(durability, now_ms);
                    load_catalogue(&engine, &catalogue, now_ms);
                    engine
                }
                _ => build_engine(&catalogue, now_ms),
            };
            if prefill > 0 {
                let fill = run_count(&engine, catalogue, Workload::ReserveRelease { lines: 1 }, 2, prefill, now_ms);
                eprintln!("prefill: {prefill} pairs in {:.1} s", fill.elapsed.as_secs_f64());
            }
            // A logging engine's calls wait for the disk, so threads check the stop flag
            // after every operation.
            let batch = match (log.is_some(), acknowledge_batch) {
                (true, 0) => Batch::checks_every(1),
                (true, operations) => Batch { operations, acknowledged_together: true },
                (false, _) => Batch::checks_every(OPERATIONS_PER_CHECK),
            };
            let duration = Duration::from_secs_f64(secs);
            let measurement = run_for_in_batches(&engine, catalogue, workload, threads, duration, now_ms, batch);
            println!(
                "{workload:?}, {threads} thread(s), {positions} positions: {:.0} units/s over {:.2} s",
                measurement.units_per_second(),
                measurement.elapsed.as_secs_f64()
            );
            if let Some(stats) = engine.log_stats() {
                println!("log: {stats:?}");
            }
            ExitCode::SUCCESS
        }
    }
}
