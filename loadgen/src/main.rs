//! `promesa-loadgen`: load for a Promesa server. `seed` loads a synthetic catalogue;
//! `run` drives a mix of requests, or the peer workload, and reports per operation.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use promesa_client::{ClientConfig, STREAMS_DEFAULT, TIMEOUT_MS_DEFAULT};
use promesa_loadgen::draws::Distribution;
use promesa_loadgen::report::Operation;
use promesa_loadgen::run::{RunPlan, run};
use promesa_loadgen::seed::{SeedPlan, seed};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Load for a Promesa server.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: Command,
}

/// How to reach the server.
#[derive(Args)]
struct Connection {
    /// Server address [env: PROMESA_ADDR; default: 127.0.0.1:7400].
    #[arg(long, global = true)]
    addr: Option<SocketAddr>,
    /// A local server's data folder, for its development certificate and token.
    #[arg(long, global = true, value_name = "DIR")]
    server_data_dir: Option<PathBuf>,
    /// PEM file of the certificate to trust [env: PROMESA_CA].
    #[arg(long, global = true, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Token [env: PROMESA_TOKEN].
    #[arg(long, global = true)]
    token: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Loads locations L-0.. and every SKU SKU-0.. at each of them, through a staged import.
    Seed {
        /// SKUs.
        #[arg(long, default_value_t = 100_000)]
        skus: u64,
        /// Locations.
        #[arg(long, default_value_t = 1)]
        locations: u64,
        /// On hand of every position.
        #[arg(long, default_value_t = 1_000_000)]
        on_hand: u64,
    },
    /// Drives a mix of requests, closed-loop, and reports throughput and latency.
    Run(Box<RunArguments>),
}

#[derive(Clone, Copy, ValueEnum)]
enum Workload {
    /// The mix given by --mix.
    Mix,
    /// The peer workload: reserve only, one line of 1 to 5 units of SKU-0.. at L-0, as
    /// Redis and PostgreSQL run it.
    Peer,
}

#[derive(Clone, Copy, ValueEnum)]
enum DistributionName {
    /// Every SKU equally likely.
    Uniform,
    /// SKU of rank k with probability about 1/k (exponent 1).
    Zipf,
}

#[derive(Args)]
struct RunArguments {
    /// The workload.
    #[arg(long, value_enum, default_value = "mix")]
    workload: Workload,
    /// Operations and weights, as NAME=WEIGHT,...: availability, reserve, confirm,
    /// release, fulfil. Confirm, release and fulfil take reservations this run made.
    #[arg(long, default_value = "reserve=50,confirm=20,release=30")]
    mix: String,
    /// SKUs SKU-0.. to draw from, as seeded.
    #[arg(long, default_value_t = 100_000)]
    skus: u64,
    /// Locations L-0.. to draw from, as seeded.
    #[arg(long, default_value_t = 1)]
    locations: u64,
    /// The distribution SKUs are drawn from.
    #[arg(long = "dist", value_enum, default_value = "uniform")]
    distribution: DistributionName,
    /// Lines per reserve.
    #[arg(long, default_value_t = 1)]
    lines: u32,
    /// Units per line, as LOW..HIGH.
    #[arg(long, default_value = "1..5")]
    quantity: String,
    /// Time-to-live of each hold, in seconds.
    #[arg(long, default_value_t = 600)]
    ttl_secs: u64,
    /// Connections.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Requests per frame.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Frames in flight per connection.
    #[arg(long, default_value_t = 32)]
    in_flight: usize,
    /// Seconds to run, warm-up included.
    #[arg(long, default_value_t = 10.0)]
    duration_secs: f64,
    /// Stop after this many requests instead of after --duration-secs.
    #[arg(long)]
    requests: Option<u64>,
    /// Seconds at the start whose requests are not measured.
    #[arg(long, default_value_t = 1.0)]
    warmup_secs: f64,
    /// Seed of the draws.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Open loop at this many requests per second in total (latency from each frame's
    /// intended send time); without it the run is closed-loop.
    #[arg(long, value_name = "OPS_PER_SEC")]
    rate: Option<f64>,
    /// Write the latency distribution of every request, in HdrHistogram's percentile
    /// text format, to this file.
    #[arg(long, value_name = "FILE")]
    hgrm: Option<PathBuf>,
    /// Write one JSON line per acknowledged change (reservation id, operation, outcome)
    /// to this file, for checking a recovered server against it.
    #[arg(long, value_name = "FILE")]
    ack_log: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("promesa-loadgen: {message}");
            ExitCode::FAILURE
        }
    }
}

fn execute(cli: Cli) -> Result<(), String> {
    let config = client_config(&cli.connection)?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|error| error.to_string())?;
    match cli.command {
        Command::Seed { skus, locations, on_hand } => {
            let plan = SeedPlan { skus, locations, on_hand, rows_per_request: 10_000, progress: true };
            let positions = runtime.block_on(seed(&config, &plan))?;
            println!("seeded {positions} positions: {skus} SKUs at {locations} locations, on hand {on_hand} each");
            Ok(())
        }
        Command::Run(arguments) => {
            let plan = run_plan(&arguments)?;
            let report = runtime.block_on(run(&config, &plan)).map_err(|error| error.to_string())?;
            print!("{}", report.table());
            if let Some(path) = &arguments.hgrm {
                std::fs::write(path, report.hgrm())
                    .map_err(|error| format!("failed to write {}: {error}", path.display()))?;
                eprintln!("wrote {}", path.display());
            }
            if let Some(path) = arguments.json {
                let text = serde_json::to_string_pretty(&report).expect("the report serializes");
                std::fs::write(&path, text + "\n")
                    .map_err(|error| format!("failed to write {}: {error}", path.display()))?;
                eprintln!("wrote {}", path.display());
            }
            Ok(())
        }
    }
}

fn run_plan(arguments: &RunArguments) -> Result<RunPlan, String> {
    let mix = match arguments.workload {
        Workload::Peer => vec![(Operation::Reserve, 1)],
        Workload::Mix => parse_mix(&arguments.mix)?,
    };
    let quantity = parse_range(&arguments.quantity)?;
    let positive = |name: &str, value: u64| {
        if value == 0 { Err(format!("--{name} is 0; it must be at least 1")) } else { Ok(value) }
    };
    positive("skus", arguments.skus)?;
    positive("locations", arguments.locations)?;
    positive("lines", u64::from(arguments.lines))?;
    positive("connections", arguments.connections as u64)?;
    positive("batch", arguments.batch as u64)?;
    positive("in-flight", arguments.in_flight as u64)?;
    let peer = matches!(arguments.workload, Workload::Peer);
    if let Some(rate) = arguments.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        return Err(format!("--rate {rate} is not a positive number of requests per second"));
    }
    let ack_log = match &arguments.ack_log {
        None => None,
        Some(path) => {
            let file =
                std::fs::File::create(path).map_err(|error| format!("failed to create {}: {error}", path.display()))?;
            Some(std::sync::Arc::new(std::sync::Mutex::new(std::io::BufWriter::new(file))))
        }
    };
    Ok(RunPlan {
        mix,
        skus: arguments.skus,
        locations: if peer { 1 } else { arguments.locations },
        distribution: match arguments.distribution {
            DistributionName::Uniform => Distribution::Uniform,
            DistributionName::Zipf => Distribution::Zipf,
        },
        lines: if peer { 1 } else { arguments.lines },
        quantity: if peer { (1, 5) } else { quantity },
        ttl_ms: arguments.ttl_secs * 1_000,
        connections: arguments.connections,
        batch: arguments.batch,
        in_flight: arguments.in_flight,
        duration: arguments.requests.is_none().then(|| Duration::from_secs_f64(arguments.duration_secs)),
        requests: arguments.requests,
        warmup: Duration::from_secs_f64(arguments.warmup_secs),
        seed: arguments.seed,
        progress: true,
        rate: arguments.rate,
        ack_log,
    })
}

/// Parses `NAME=WEIGHT,...`.
fn parse_mix(text: &str) -> Result<Vec<(Operation, u32)>, String> {
    let mut mix = Vec::new();
    for part in text.split(',') {
        let (name, weight) = part.split_once('=').ok_or_else(|| format!("--mix part {part:?} is not NAME=WEIGHT"))?;
        let operation = Operation::from_name(name.trim()).ok_or_else(|| {
            format!("--mix operation {name:?} is not one of availability, reserve, confirm, release, fulfil")
        })?;
        let weight: u32 =
            weight.trim().parse().map_err(|_| format!("--mix weight {weight:?} of {name} is not a whole number"))?;
        mix.push((operation, weight));
    }
    if mix.iter().all(|&(_, weight)| weight == 0) {
        return Err(format!("--mix {text:?} has no operation with a weight above 0"));
    }
    Ok(mix)
}

/// Parses `LOW..HIGH` with 1 <= LOW <= HIGH.
fn parse_range(text: &str) -> Result<(u64, u64), String> {
    let (low, high) = text.split_once("..").ok_or_else(|| format!("--quantity {text:?} is not LOW..HIGH"))?;
    let parse = |value: &str| value.trim().parse::<u64>().map_err(|_| format!("--quantity {text:?} is not LOW..HIGH"));
    let (low, high) = (parse(low)?, parse(high)?);
    if low == 0 || low > high {
        return Err(format!("--quantity {text:?} must have 1 <= LOW <= HIGH"));
    }
    Ok((low, high))
}

fn client_config(connection: &Connection) -> Result<ClientConfig, String> {
    let addr = match (connection.addr, std::env::var("PROMESA_ADDR").ok()) {
        (Some(addr), _) => addr,
        (None, Some(text)) => text.parse().map_err(|_| format!("PROMESA_ADDR {text:?} is not an address"))?,
        (None, None) => "127.0.0.1:7400".parse().expect("a valid address"),
    };
    if let Some(dir) = &connection.server_data_dir {
        let mut config = ClientConfig::local(addr, dir).map_err(|error| error.to_string())?;
        if let Some(token) = &connection.token {
            config.token.clone_from(token);
        }
        return Ok(config);
    }
    let ca = connection.ca.clone().or_else(|| std::env::var_os("PROMESA_CA").map(PathBuf::from)).ok_or(
        "no certificate to trust: pass --ca FILE or set PROMESA_CA, or pass --server-data-dir DIR for a local server",
    )?;
    let token =
        connection.token.clone().or_else(|| std::env::var("PROMESA_TOKEN").ok()).ok_or(
            "no token: pass --token TOKEN or set PROMESA_TOKEN, or pass --server-data-dir DIR for a local server",
        )?;
    Ok(ClientConfig {
        addr,
        server_name: "localhost".to_owned(),
        ca,
        token,
        streams: STREAMS_DEFAULT,
        timeout_ms: TIMEOUT_MS_DEFAULT,
    })
}
