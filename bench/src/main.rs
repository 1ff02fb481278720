//! `promesa-bench`: measures the engine's capacity on this machine and writes the
//! figures as a table and, on request, as JSON.

use std::path::PathBuf;
use std::process::ExitCode;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand, ValueEnum};
use promesa_bench::capacity::{self, Plan};
use promesa_bench::catalogue::{Catalogue, build_engine};
use promesa_bench::measure::{run_count, run_for};
use promesa_bench::workload::Workload;

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
    /// Measures throughput at 1 and 2 threads and memory per position and per ended
    /// reservation, then prints a table.
    Capacity {
        /// Also writes the figures as JSON to this file.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Uses 1,000,000 positions in place of 10,000,000 and 0.3 s runs, to finish
        /// in under a minute on 2 cores.
        #[arg(long)]
        quick: bool,
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
    },
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
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
        Command::Run { workload, threads, positions, lines, batch_skus, secs, prefill } => {
            let workload = match workload {
                WorkloadName::ReserveRelease => Workload::ReserveRelease { lines },
                WorkloadName::HotSku => Workload::HotReserveRelease,
                WorkloadName::AvailabilityRead => Workload::AvailabilityRead,
                WorkloadName::AvailabilityBatch => Workload::AvailabilityBatch { skus: batch_skus },
            };
            let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis() as u64);
            let catalogue = Catalogue::new(positions);
            let engine = build_engine(&catalogue, now_ms);
            if prefill > 0 {
                let fill = run_count(&engine, catalogue, Workload::ReserveRelease { lines: 1 }, 2, prefill, now_ms);
                eprintln!("prefill: {prefill} pairs in {:.1} s", fill.elapsed.as_secs_f64());
            }
            let measurement = run_for(&engine, catalogue, workload, threads, Duration::from_secs_f64(secs), now_ms);
            println!(
                "{workload:?}, {threads} thread(s), {positions} positions: {:.0} units/s over {:.2} s",
                measurement.units_per_second(),
                measurement.elapsed.as_secs_f64()
            );
            ExitCode::SUCCESS
        }
    }
}
