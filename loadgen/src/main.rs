//! `promesa-loadgen`: load for a Promesa server. `seed` loads a synthetic catalogue;
//! `run` drives a mix of requests, or the peer workload, and reports per operation.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use promesa_client::Client;
use promesa_client::{ClientConfig, STREAMS_DEFAULT, TIMEOUT_MS_DEFAULT};
use promesa_loadgen::dataset::{Dataset, Source};
use promesa_loadgen::demo::{DemoPlan, demo};
use promesa_loadgen::draws::Distribution;
use promesa_loadgen::replay::{Fates, ReplayPlan, grouped, labelled, load_network, replay};
use promesa_loadgen::report::Operation;
use promesa_loadgen::run::{RunPlan, run};
use promesa_loadgen::seed::{SeedPlan, seed};
use promesa_protocol::limits::{REQUESTS_PER_FRAME_MAX, ROUTE_LINES_MAX};

/// Maximum Zipf exponent a run takes; past it nearly every draw is the first SKU.
const ZIPF_EXPONENT_MAX: f64 = 10.0;
/// Maximum duration `--ttl` and `--duration` take, in seconds (30 days).
const DURATION_SECS_MAX: f64 = 30.0 * 24.0 * 3_600.0;

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
    /// Name the server's certificate must carry [default: localhost].
    #[arg(long, global = true, value_name = "NAME")]
    server_name: Option<String>,
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
    /// Loads a network and its stock, then replays real orders as routed reserves in
    /// time order, with confirms, fulfils, cancels and expiries, and reports fill rate,
    /// splits, distances, backorders and latency.
    Replay(Box<ReplayArguments>),
    /// Starts a server in this process, replays the bundled real marketplace orders
    /// through it, restarts it from its snapshot and log, checks that the state is the
    /// same and that nothing is oversold, and reports. Needs no other set-up.
    Demo(Box<DemoArguments>),
}

#[derive(Clone, Copy, ValueEnum)]
enum SourceName {
    /// The bundled Olist extract, or with --data an extract folder (orders.csv,
    /// locations.csv, stock.csv).
    Extract,
    /// The full Olist order-item table in DATA/olist (112,650 items).
    Olist,
    /// The UCI Online Retail invoices in DATA/online_retail (541,909 lines).
    OnlineRetail,
}

#[derive(Args)]
#[command(allow_negative_numbers = true)]
struct ReplayArguments {
    /// The orders to replay.
    #[arg(long, value_enum, default_value = "extract")]
    source: SourceName,
    /// The data folder: for `olist` and `online-retail`, the folder holding `olist/`
    /// and `online_retail/`; for `extract`, an extract folder (default: the bundled one).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Data seconds per second of replay (86400 plays a day per second); without it
    /// orders go as fast as the server responds.
    #[arg(long)]
    speed: Option<f64>,
    /// Replay only the first N orders.
    #[arg(long, value_name = "N")]
    orders: Option<usize>,
    /// Skip loading the network and stock (already loaded by an earlier replay).
    #[arg(long)]
    no_load: bool,
    /// Connections.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Orders in flight per connection.
    #[arg(long, default_value_t = 16)]
    in_flight: usize,
    /// Time-to-live of holds, in seconds.
    #[arg(long, default_value_t = 1_800)]
    ttl_secs: u64,
    /// Time-to-live of the abandoned holds, which expire, in milliseconds.
    #[arg(long, default_value_t = 2_000)]
    expire_ttl_ms: u64,
    /// Percent of orders confirmed (and left allocated).
    #[arg(long, default_value_t = 35)]
    confirm_pct: u32,
    /// Percent of orders confirmed and fulfilled.
    #[arg(long, default_value_t = 25)]
    fulfil_pct: u32,
    /// Percent of orders cancelled (released).
    #[arg(long, default_value_t = 15)]
    cancel_pct: u32,
    /// Percent of orders abandoned and left to expire; the rest stay held.
    #[arg(long, default_value_t = 10)]
    expire_pct: u32,
    /// Shipments an order may split into (1 to 8).
    #[arg(long, default_value_t = 3)]
    max_shipments: u32,
    /// Let lines no location has in stock be backordered against inbound supply.
    #[arg(long)]
    backorder: bool,
    /// Seed of the fates and of the synthetic customers.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Prefix of the reservation ids.
    #[arg(long, default_value = "replay-")]
    id_prefix: String,
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

#[derive(Args)]
#[command(allow_negative_numbers = true)]
struct DemoArguments {
    /// Folder for the server's data and the report (default: a new folder under the
    /// system's temporary folder).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Replay only the first N orders.
    #[arg(long, value_name = "N")]
    orders: Option<usize>,
    /// Connections.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Orders in flight per connection.
    #[arg(long, default_value_t = 16)]
    in_flight: usize,
    /// Seed of the fates.
    #[arg(long, default_value_t = 1)]
    seed: u64,
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
#[command(allow_negative_numbers = true)]
struct RunArguments {
    /// The workload.
    #[arg(long, value_enum, default_value = "mix")]
    workload: Workload,
    /// Operations and weights, as NAME=WEIGHT,...: availability, reserve, routed,
    /// confirm, release, fulfil. Routed is a routed reserve of --lines lines to a point
    /// near the seeded locations, at the lowest cost in at most 3 shipments, holding
    /// what it can. Confirm, release and fulfil take reservations this run made, and
    /// make a reserve (a routed one if the mix has routed and no reserve) when none is
    /// left.
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
    /// The exponent s of the Zipf distribution: the SKU of rank k is drawn with
    /// probability about k^-s (1 is the peer workload's draw).
    #[arg(long, default_value_t = 1.0, value_name = "S")]
    zipf_exponent: f64,
    /// Lines per reserve and per routed reserve.
    #[arg(long, default_value_t = 1)]
    lines: u32,
    /// Units per line, as LOW..HIGH.
    #[arg(long, default_value = "1..5")]
    quantity: String,
    /// Time-to-live of each hold, in seconds.
    #[arg(long, default_value_t = 600)]
    ttl_secs: u64,
    /// Time-to-live of each hold with a unit, such as 600s, 10m or 1500ms; replaces
    /// --ttl-secs.
    #[arg(long, value_parser = parse_duration, conflicts_with = "ttl_secs", value_name = "DURATION")]
    ttl: Option<Duration>,
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
    /// Time to run with a unit, such as 30s or 2m; replaces --duration-secs.
    #[arg(long, value_parser = parse_duration, conflicts_with = "duration_secs", value_name = "DURATION")]
    duration: Option<Duration>,
    /// Stop after this many requests instead of after --duration-secs.
    #[arg(long)]
    requests: Option<u64>,
    /// Seconds at the start whose requests are not measured [default: 1, or 0 with
    /// --requests].
    #[arg(long)]
    warmup_secs: Option<f64>,
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
    /// Write one JSON line per acknowledged change (request id, reservation id,
    /// operation, outcome) to this file, for checking a recovered server against it.
    #[arg(long, value_name = "FILE")]
    ack_log: Option<PathBuf>,
    /// Draw the p50, p99 and p99.9 latency and the throughput of each second of the
    /// run, warm-up shaded, as an SVG file.
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
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
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|error| error.to_string())?;
    if let Command::Demo(arguments) = &cli.command {
        return run_demo(&runtime, arguments);
    }
    let config = client_config(&cli.connection)?;
    match cli.command {
        Command::Demo(_) => unreachable!("the demo returned above"),
        Command::Replay(arguments) => run_replay(&runtime, &config, &arguments),
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
            if let Some(path) = arguments.plot {
                let svg = promesa_loadgen::plot::render_svg(&report.per_second)
                    .map_err(|error| format!("--plot {}: failed to draw: {error}", path.display()))?;
                std::fs::write(&path, svg)
                    .map_err(|error| format!("--plot {}: failed to write: {error}", path.display()))?;
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
    if arguments.batch > REQUESTS_PER_FRAME_MAX {
        return Err(format!(
            "--batch {} is above the protocol's limit of {REQUESTS_PER_FRAME_MAX} requests per frame",
            arguments.batch
        ));
    }
    let ttl_ms = arguments.ttl.map_or(arguments.ttl_secs * 1_000, |ttl| ttl.as_millis() as u64);
    if ttl_ms == 0 {
        return Err("the holds' time-to-live (--ttl or --ttl-secs) is 0; it must be at least 1 ms".to_owned());
    }
    let warmup_secs = arguments.warmup_secs.unwrap_or(if arguments.requests.is_some() { 0.0 } else { 1.0 });
    if !(warmup_secs.is_finite() && warmup_secs >= 0.0) {
        return Err(format!("--warmup-secs {warmup_secs} is not a number of seconds of at least 0"));
    }
    let peer = matches!(arguments.workload, Workload::Peer);
    let exponent = arguments.zipf_exponent;
    if !(exponent.is_finite() && exponent > 0.0 && exponent <= ZIPF_EXPONENT_MAX) {
        return Err(format!(
            "--zipf-exponent {exponent} is out of range; it must be above 0 and at most {ZIPF_EXPONENT_MAX}"
        ));
    }
    if peer && exponent != 1.0 {
        return Err(format!("--zipf-exponent {exponent} does not apply to --workload peer, whose Zipf exponent is 1"));
    }
    let duration_secs = arguments.duration.map_or(arguments.duration_secs, |duration| duration.as_secs_f64());
    if !(duration_secs.is_finite() && duration_secs > 0.0) {
        return Err(format!("the run's duration {duration_secs} s is not a positive number of seconds"));
    }
    if arguments.requests.is_none() && warmup_secs >= duration_secs {
        return Err(format!(
            "--warmup-secs {warmup_secs} is not shorter than the run's {duration_secs} s, so nothing would be measured"
        ));
    }
    let routed = mix.iter().any(|&(operation, weight)| operation == Operation::Routed && weight > 0);
    if routed && arguments.lines as usize > ROUTE_LINES_MAX {
        return Err(format!(
            "--lines {} is above the maximum of {ROUTE_LINES_MAX} lines of a routed order (routed is in --mix)",
            arguments.lines
        ));
    }
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
        zipf_exponent: exponent,
        lines: if peer { 1 } else { arguments.lines },
        quantity: if peer { (1, 5) } else { quantity },
        ttl_ms,
        connections: arguments.connections,
        batch: arguments.batch,
        in_flight: arguments.in_flight,
        duration: arguments.requests.is_none().then(|| Duration::from_secs_f64(duration_secs)),
        requests: arguments.requests,
        warmup: Duration::from_secs_f64(warmup_secs),
        seed: arguments.seed,
        progress: true,
        rate: arguments.rate,
        ack_log,
    })
}

/// Runs the demo and prints its report; fails when a check failed.
fn run_demo(runtime: &tokio::runtime::Runtime, arguments: &DemoArguments) -> Result<(), String> {
    let plan = DemoPlan {
        folder: arguments.dir.clone(),
        orders_max: arguments.orders,
        connections: arguments.connections,
        in_flight: arguments.in_flight,
        seed: arguments.seed,
        progress: true,
    };
    let report = runtime.block_on(demo(&plan))?;
    println!();
    print!("{}", report.text());
    if report.passed() {
        Ok(())
    } else {
        Err(format!("a check failed; the report is in {}", report.folder.join("report.json").display()))
    }
}

/// Loads the network (unless --no-load is given), replays the orders and prints the report.
fn run_replay(
    runtime: &tokio::runtime::Runtime,
    config: &ClientConfig,
    arguments: &ReplayArguments,
) -> Result<(), String> {
    let source = match (arguments.source, &arguments.data) {
        (SourceName::Extract, None) => Source::Bundled,
        (SourceName::Extract, Some(folder)) => Source::Extract(folder.clone()),
        (SourceName::Olist, Some(folder)) => Source::OlistItems(folder.clone()),
        (SourceName::OnlineRetail, Some(folder)) => Source::OnlineRetail(folder.clone()),
        (SourceName::Olist | SourceName::OnlineRetail, None) => {
            return Err("--source olist and online-retail read a data folder: pass --data DIR".to_owned());
        }
    };
    let plan = ReplayPlan {
        connections: arguments.connections,
        in_flight: arguments.in_flight,
        speed: arguments.speed,
        ttl_ms: arguments.ttl_secs.saturating_mul(1_000),
        expire_ttl_ms: arguments.expire_ttl_ms,
        fates: Fates {
            confirm_pct: arguments.confirm_pct,
            fulfil_pct: arguments.fulfil_pct,
            cancel_pct: arguments.cancel_pct,
            expire_pct: arguments.expire_pct,
        },
        max_shipments: arguments.max_shipments,
        allow_backorder: arguments.backorder,
        seed: arguments.seed,
        orders_max: arguments.orders,
        id_prefix: arguments.id_prefix.clone(),
        progress: true,
    };
    plan.check()?;

    let started = std::time::Instant::now();
    let dataset = std::sync::Arc::new(Dataset::load(&source, arguments.seed)?);
    eprintln!(
        "read {} in {:.1} s: {} locations, {} stock rows",
        dataset.title,
        started.elapsed().as_secs_f64(),
        grouped(dataset.sites.len() as u64),
        grouped(dataset.stock.len() as u64)
    );
    let report = runtime.block_on(async {
        if !arguments.no_load {
            let client = Client::connect(config).await.map_err(|error| error.to_string())?;
            let import_id = format!("replay-network-{}", std::process::id());
            let loaded = load_network(&client, &dataset, &import_id).await?;
            eprintln!(
                "loaded {} locations and {} stock rows in {:.1} s",
                loaded.locations, loaded.positions, loaded.elapsed_secs
            );
            client.close().await;
        }
        replay(config, std::sync::Arc::clone(&dataset), &plan).await
    })?;
    println!("{}", report.dataset);
    for note in &report.notes {
        print!("{}", labelled("data", note));
    }
    print!("{}", report.text());
    if let Some(path) = &arguments.json {
        let text = serde_json::to_string_pretty(&report).expect("the report serializes");
        std::fs::write(path, text + "\n").map_err(|error| format!("failed to write {}: {error}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    let errors = report.outcomes.errors_total();
    if errors == 0 {
        return Ok(());
    }
    let mut message = format!("{} requests of the replay got an error response", grouped(errors));
    if report.outcomes.errors.contains_key("id_reused") || report.outcomes.errors.contains_key("conflict") {
        message.push_str(&format!(
            "; reservation ids repeat those of an earlier replay into this server (prefix {:?}): pass another \
             --id-prefix",
            arguments.id_prefix
        ));
    }
    Err(message)
}

/// Parses a duration with a unit: `ms`, `s`, `m` or `h`, such as `600s` or `1.5m`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|character: char| character.is_ascii_alphabetic()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale_secs = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3_600.0,
        "" => return Err(format!("{text:?} has no unit; write it as 600s, 10m, 1h or 1500ms")),
        _ => return Err(format!("{text:?} has the unit {unit:?}; the units are ms, s, m and h")),
    };
    let value: f64 = number.parse().map_err(|_| format!("{text:?} is not a number with a unit such as 600s"))?;
    let secs = value * scale_secs;
    if !(secs.is_finite() && (0.0..=DURATION_SECS_MAX).contains(&secs)) {
        return Err(format!("{text:?} is out of range; it must be 0 to {DURATION_SECS_MAX} seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses `NAME=WEIGHT,...`.
fn parse_mix(text: &str) -> Result<Vec<(Operation, u32)>, String> {
    let mut mix = Vec::new();
    for part in text.split(',') {
        let (name, weight) = part.split_once('=').ok_or_else(|| format!("--mix part {part:?} is not NAME=WEIGHT"))?;
        let operation = Operation::from_name(name.trim()).ok_or_else(|| {
            let names: Vec<&str> = Operation::ALL.iter().map(|operation| operation.name()).collect();
            format!("--mix operation {name:?} is not one of {}", names.join(", "))
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
        if let Some(name) = &connection.server_name {
            config.server_name.clone_from(name);
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
        server_name: connection.server_name.clone().unwrap_or_else(|| "localhost".to_owned()),
        ca,
        token,
        streams: STREAMS_DEFAULT,
        timeout_ms: TIMEOUT_MS_DEFAULT,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_duration_takes_units() {
        assert_eq!(parse_duration("600s"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1_500)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("30").unwrap_err(), "\"30\" has no unit; write it as 600s, 10m, 1h or 1500ms");
        assert_eq!(parse_duration("3d").unwrap_err(), "\"3d\" has the unit \"d\"; the units are ms, s, m and h");
        assert_eq!(parse_duration("1.2.3s").unwrap_err(), "\"1.2.3s\" is not a number with a unit such as 600s");
        assert!(parse_duration("-1s").unwrap_err().contains("out of range"));
    }
}
