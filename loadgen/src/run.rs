//! The run: connections with frames in flight, each frame a batch of requests drawn
//! from the mix. Closed-loop, a slot sends its next frame once the previous one has its
//! response; open-loop, at the frame's intended send time. Every request of a frame
//! gets the frame's round trip as its latency. Besides the totals, the run keeps the
//! figures of each second, warm-up included, for the progress line and `--plot`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use promesa_client::{Client, ClientConfig, ClientError};
use promesa_protocol::{
    Destination, ErrorCode, Request, ReserveLine, Response, RouteLine, RouteMethod, RouteOrder, Units,
};
use serde::Serialize;

use crate::draws::{DRAW_RANGE, Distribution, Draws};
use crate::report::{Operation, Report, Second, ServerMemory, Tally};
use crate::seed::{DestinationBox, destination_box};

/// Line status code of a line held in full (docs/protocol.md).
const LINE_HELD: u32 = 0;
/// Line status code of a line held in part.
const LINE_PARTIALLY_HELD: u32 = 1;

/// Reservations a worker keeps for later confirms, releases and fulfils; past it the
/// oldest are left as they are (they expire).
pub const HELD_PER_WORKER_MAX: usize = 4_096;

/// Shipments a routed reserve may split into.
pub const ROUTED_SHIPMENTS_MAX: u32 = 3;

/// Length of one entry of the per-second series.
const SECOND: Duration = Duration::from_secs(1);

/// Interval at which the run's clock checks the warm-up, the duration and the series.
const CLOCK_TICK: Duration = Duration::from_millis(50);

/// Settings of a run.
#[derive(Clone, Debug, Serialize)]
pub struct RunPlan {
    /// Operations and their weights.
    pub mix: Vec<(Operation, u32)>,
    /// SKUs `SKU-0`..: as seeded.
    pub skus: u64,
    /// Locations `L-0`..: as seeded.
    pub locations: u64,
    /// The distribution SKUs are drawn from.
    pub distribution: Distribution,
    /// The exponent of the Zipf distribution; 1 is the peer workload's.
    pub zipf_exponent: f64,
    /// Lines per reserve and per routed reserve.
    pub lines: u32,
    /// Units per line, lowest and highest.
    pub quantity: (u64, u64),
    /// Time-to-live of each hold, in milliseconds.
    pub ttl_ms: u64,
    /// Connections.
    pub connections: usize,
    /// Requests per frame.
    pub batch: usize,
    /// Frames in flight per connection.
    pub in_flight: usize,
    /// Stop after this long, warm-up included...
    pub duration: Option<Duration>,
    /// ...or after this many requests, warm-up included.
    pub requests: Option<u64>,
    /// Responses in this first span are not measured.
    pub warmup: Duration,
    /// Seed of the draws; each slot draws from its own generator derived from it.
    pub seed: u64,
    /// Print a progress line every second.
    pub progress: bool,
    /// Open loop: requests per second offered in total, spread over the frame slots.
    /// Each frame has an intended send time on its slot's schedule, and its latency is
    /// measured from that time, so a server that falls behind is charged for the wait
    /// (no coordinated omission). `None` runs closed-loop.
    pub rate: Option<f64>,
    /// Append one JSON line per acknowledged change (reserve, routed reserve, confirm,
    /// release, fulfil) to this file: request id, reservation id, operation and outcome.
    #[serde(skip)]
    pub ack_log: Option<std::sync::Arc<std::sync::Mutex<std::io::BufWriter<std::fs::File>>>>,
}

impl RunPlan {
    /// Returns true when the mix has reserves only, as the peer workload does.
    pub fn is_reserve_only(&self) -> bool {
        self.mix.iter().all(|&(operation, _)| operation == Operation::Reserve)
    }

    /// Returns the operation that makes a reservation when a confirm, release or fulfil
    /// finds none to take: reserve if the mix has it, else routed if the mix has it,
    /// else reserve.
    fn reserving_operation(&self) -> Operation {
        let weighs = |wanted: Operation| self.mix.iter().any(|&(operation, weight)| operation == wanted && weight > 0);
        if !weighs(Operation::Reserve) && weighs(Operation::Routed) { Operation::Routed } else { Operation::Reserve }
    }

    /// Returns true when the mix takes reservations this run made: confirm, release or
    /// fulfil with a weight above 0.
    fn takes_reservations(&self) -> bool {
        self.mix.iter().any(|&(operation, weight)| {
            weight > 0 && matches!(operation, Operation::Confirm | Operation::Release | Operation::Fulfil)
        })
    }
}

/// State shared by the run's tasks.
struct Shared {
    stop: AtomicBool,
    sent: AtomicU64,
    measuring: AtomicBool,
    progress: Mutex<Progress>,
    /// Error responses since the warm-up.
    errors: AtomicU64,
    /// The id of the next request: ids are unique in the run, in send order within a
    /// frame.
    next_request_id: AtomicU64,
}

/// The responses the run's clock reads.
#[derive(Default)]
struct Progress {
    /// Every response since the warm-up, for the progress line.
    since_warmup: Tally,
    /// Every response since the last entry of the per-second series, warm-up included.
    this_second: Tally,
}

/// Runs the plan against a server and returns the report.
pub async fn run(config: &ClientConfig, plan: &RunPlan) -> Result<Report, ClientError> {
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        sent: AtomicU64::new(0),
        measuring: AtomicBool::new(plan.warmup.is_zero()),
        progress: Mutex::new(Progress::default()),
        errors: AtomicU64::new(0),
        next_request_id: AtomicU64::new(1),
    });
    let mut clients = Vec::with_capacity(plan.connections);
    for _ in 0..plan.connections {
        clients.push(Arc::new(Client::connect(config).await?));
    }
    let memory_before = server_memory(clients.first()).await;

    // Reservation ids carry this run's own prefix, so that runs against one server
    // never reuse an id.
    let run_id = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_micros())
        as u64
        ^ u64::from(std::process::id()) << 40;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (connection, client) in clients.iter().enumerate() {
        for slot in 0..plan.in_flight {
            let (client, shared, plan) = (Arc::clone(client), Arc::clone(&shared), plan.clone());
            let seed = plan.seed ^ ((connection as u64) << 32 | slot as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let prefix = format!("lg{run_id:x}-{connection}-{slot}");
            tasks.push(tokio::spawn(async move { worker(client, shared, plan, seed, prefix).await }));
        }
    }

    // The clock: warm-up, the per-second series with its progress lines, and the
    // duration.
    let mut measured_from = if plan.warmup.is_zero() { Some(started) } else { None };
    let mut per_second = Vec::new();
    let mut second_start = Duration::ZERO;
    let mut second_in_warmup = measured_from.is_none();
    while !tasks.iter().all(|task| task.is_finished()) {
        tokio::time::sleep(CLOCK_TICK).await;
        let elapsed = started.elapsed();
        if measured_from.is_none() && elapsed >= plan.warmup {
            shared.measuring.store(true, Ordering::Release);
            measured_from = Some(Instant::now());
        }
        if plan.duration.is_some_and(|duration| elapsed >= duration) {
            shared.stop.store(true, Ordering::Release);
        }
        if elapsed - second_start >= SECOND {
            let (second, since_warmup) = close_second(&shared, second_start, elapsed, second_in_warmup);
            if plan.progress {
                // A warm-up second shows its own percentiles; a measured one, those of
                // every measured second so far.
                let (p50, p99) = if second.warmup {
                    (second.figures.latency_us.p50, second.figures.latency_us.p99)
                } else {
                    since_warmup
                };
                eprintln!(
                    "{:>6.1} s  {:>10.0} ops/s  p50 {p50} us  p99 {p99} us  errors {}{}",
                    elapsed.as_secs_f64(),
                    second.figures.ops_per_sec,
                    shared.errors.load(Ordering::Relaxed),
                    if second.warmup { "  (warm-up)" } else { "" }
                );
            }
            per_second.push(second);
            second_start = elapsed;
            second_in_warmup = measured_from.is_none();
        }
    }
    let measured_secs = measured_from.map_or(0.0, |from| from.elapsed().as_secs_f64());
    let elapsed = started.elapsed();
    let (last, _) = close_second(&shared, second_start, elapsed, second_in_warmup);
    if last.figures.count > 0 {
        per_second.push(last);
    }

    let mut tallies: BTreeMap<Operation, Tally> = BTreeMap::new();
    for task in tasks {
        let part = task.await.expect("a worker panicked")?;
        for (operation, tally) in part {
            tallies.entry(operation).or_default().add(&tally);
        }
    }
    let memory_after = server_memory(clients.first()).await;
    for client in clients {
        if let Some(client) = Arc::into_inner(client) {
            client.close().await;
        }
    }
    let settings = serde_json::to_value(plan).expect("the plan serializes");
    let mut report = Report::new(settings, measured_secs, &tallies);
    report.per_second = per_second;
    report.server_memory = memory_before.zip(memory_after).map(|(before, after)| ServerMemory::new(before, after));
    Ok(report)
}

/// Reads the server's resident bytes and open reservations; `None` when it does not
/// report them.
async fn server_memory(client: Option<&Arc<Client>>) -> Option<(u64, u64)> {
    let Ok(Response::Stats(figures)) = client?.call_one(Request::Stats).await else {
        return None;
    };
    let figure = |name: &str| figures.iter().find(|figure| figure.name == name).map(|figure| figure.value);
    figure("process.resident_bytes").zip(figure("open_reservations"))
}

/// Ends the current entry of the per-second series at `end` and returns it. Also
/// returns the p50 and p99 since the warm-up, in microseconds, for the progress line.
fn close_second(shared: &Shared, start: Duration, end: Duration, warmup: bool) -> (Second, (u64, u64)) {
    let mut progress = shared.progress.lock().expect("no worker panics holding it");
    let this_second = std::mem::take(&mut progress.this_second);
    let latency = &progress.since_warmup.latency_us;
    let quantile = |q| if latency.is_empty() { 0 } else { latency.value_at_quantile(q) };
    let since_warmup = (quantile(0.5), quantile(0.99));
    drop(progress);

    let secs = (end - start).as_secs_f64();
    let second = Second {
        start_secs: start.as_secs_f64(),
        end_secs: end.as_secs_f64(),
        warmup,
        figures: this_second.figures(secs),
    };
    (second, since_warmup)
}

/// Runs one frame slot of one connection: draws frames and sends them one after another.
async fn worker(
    client: Arc<Client>,
    shared: Arc<Shared>,
    plan: RunPlan,
    seed: u64,
    prefix: String,
) -> Result<BTreeMap<Operation, Tally>, ClientError> {
    let mut draws = Draws::new(seed);
    let mut tallies: BTreeMap<Operation, Tally> = BTreeMap::new();
    let mut held: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    let weights: u64 = plan.mix.iter().map(|&(_, weight)| u64::from(weight)).sum();
    let reserving = plan.reserving_operation();
    let keeps_reservations = plan.takes_reservations();
    let destinations = destination_box(plan.locations);
    let mut next_id = 0u64;

    // Open loop: this slot's frames are due one interval apart from the start.
    let slots = (plan.connections * plan.in_flight) as f64;
    let interval =
        plan.rate.map(|rate| Duration::from_secs_f64(plan.batch as f64 * slots / rate.max(f64::MIN_POSITIVE)));
    let schedule_start = Instant::now();
    let mut frames_sent = 0u32;

    while !shared.stop.load(Ordering::Acquire) {
        // Claim this frame's requests from the request budget.
        let size = match plan.requests {
            Some(limit) => {
                let first = shared.sent.fetch_add(plan.batch as u64, Ordering::AcqRel);
                if first >= limit {
                    break;
                }
                (limit - first).min(plan.batch as u64) as usize
            }
            None => plan.batch,
        };

        let mut operations = Vec::with_capacity(size);
        let mut requests = Vec::with_capacity(size);
        for _ in 0..size {
            let mut operation = pick(&plan.mix, weights, &mut draws);
            let needs_reservation = matches!(operation, Operation::Confirm | Operation::Release | Operation::Fulfil);
            let reservation = if needs_reservation { held.pop_front() } else { None };
            if needs_reservation && reservation.is_none() {
                operation = reserving;
            }
            next_id += 1;
            let request = match (operation, reservation) {
                (Operation::Availability, _) => {
                    let sku = draws.sku_with_exponent(plan.distribution, plan.skus, plan.zipf_exponent);
                    let location = draws.below(plan.locations);
                    Request::Availability {
                        sku: format!("SKU-{sku}"),
                        location: format!("L-{location}"),
                        channel: None,
                    }
                }
                (Operation::Reserve, _) => Request::Reserve {
                    reservation_id: format!("{prefix}-{next_id}"),
                    channel: None,
                    lines: (0..plan.lines)
                        .map(|_| ReserveLine {
                            sku: format!(
                                "SKU-{}",
                                draws.sku_with_exponent(plan.distribution, plan.skus, plan.zipf_exponent)
                            ),
                            location: format!("L-{}", draws.below(plan.locations)),
                            quantity: draws.quantity(plan.quantity.0, plan.quantity.1),
                        })
                        .collect(),
                    partial: false,
                    ttl_ms: plan.ttl_ms,
                },
                (Operation::Routed, _) => Request::ReserveRouted {
                    reservation_id: format!("{prefix}-{next_id}"),
                    ttl_ms: plan.ttl_ms,
                    order: route_order(&plan, &destinations, &mut draws),
                },
                (Operation::Confirm, Some(id)) => {
                    Request::Confirm { reservation_id: id, op_id: "c".into(), units: Units::All }
                }
                (Operation::Release, Some(id)) => {
                    Request::Release { reservation_id: id, op_id: "r".into(), units: Units::All, from: 0 }
                }
                (Operation::Fulfil, Some(id)) => {
                    Request::Fulfil { reservation_id: id, op_id: "f".into(), units: Units::All }
                }
                (_, None) => unreachable!("operations without a reservation became reserves"),
            };
            operations.push(operation);
            requests.push(request);
        }

        let reserve_ids: Vec<Option<String>> = requests
            .iter()
            .map(|request| match request {
                Request::Reserve { reservation_id, .. } | Request::ReserveRouted { reservation_id, .. } => {
                    Some(reservation_id.clone())
                }
                _ => None,
            })
            .collect();
        let first_request_id = shared.next_request_id.fetch_add(size as u64, Ordering::Relaxed);
        let sent = match interval {
            Some(interval) => {
                let due = schedule_start + interval * frames_sent;
                tokio::time::sleep_until(due.into()).await;
                due
            }
            None => Instant::now(),
        };
        frames_sent += 1;
        let acknowledged: Vec<Request> = if plan.ack_log.is_some() { requests.clone() } else { Vec::new() };
        let responses = client.call(requests).await?;
        let latency_us = (sent.elapsed().as_micros() as u64).max(1);
        if let Some(log) = &plan.ack_log {
            write_acks(log, first_request_id, &acknowledged, &responses);
        }

        let measuring = shared.measuring.load(Ordering::Acquire);
        // The frame's counts for the per-second series, warm-up included. Error names
        // are only made for error responses.
        let (mut refused, mut errors) = (0u64, Vec::new());
        for ((operation, response), id) in operations.iter().zip(&responses).zip(reserve_ids) {
            let held_any = held_any_unit(response);
            if let (Some(true), Some(id)) = (held_any, id)
                && keeps_reservations
            {
                if held.len() >= HELD_PER_WORKER_MAX {
                    held.pop_front();
                }
                held.push_back(id);
            }
            let error = match response {
                Response::Error { code, .. } => Some(
                    ErrorCode::from_number(*code)
                        .map_or_else(|| format!("error {code}"), |code| code.name().to_owned()),
                ),
                _ => None,
            };
            refused += u64::from(held_any == Some(false));
            if measuring {
                let tally = tallies.entry(*operation).or_default();
                tally.count += 1;
                tally.refused += u64::from(held_any == Some(false));
                tally.latency_us.saturating_record(latency_us);
                if let Some(name) = &error {
                    *tally.errors.entry(name.clone()).or_default() += 1;
                    shared.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            errors.extend(error);
        }

        // Every request of the frame has the frame's latency: one record of that many.
        let answered = responses.len() as u64;
        let mut progress = shared.progress.lock().expect("no worker panics holding it");
        if measuring {
            progress.since_warmup.count += answered;
            progress.since_warmup.latency_us.saturating_record_n(latency_us, answered);
        }
        let this_second = &mut progress.this_second;
        this_second.count += answered;
        this_second.refused += refused;
        this_second.latency_us.saturating_record_n(latency_us, answered);
        for name in errors {
            *this_second.errors.entry(name).or_default() += 1;
        }
    }
    Ok(tallies)
}

/// Draws the order of a routed reserve: `plan.lines` lines drawn as a reserve's are
/// (without their locations), to a point drawn uniformly in `destinations`, at the
/// lowest cost in at most [`ROUTED_SHIPMENTS_MAX`] shipments, holding what it can.
fn route_order(plan: &RunPlan, destinations: &DestinationBox, draws: &mut Draws) -> RouteOrder {
    let lines = (0..plan.lines)
        .map(|_| RouteLine {
            sku: format!("SKU-{}", draws.sku_with_exponent(plan.distribution, plan.skus, plan.zipf_exponent)),
            quantity: draws.quantity(plan.quantity.0, plan.quantity.1),
        })
        .collect();
    let mut between = |low: f64, high: f64| low + (high - low) * (draws.below(DRAW_RANGE) as f64 / DRAW_RANGE as f64);
    let lat = between(destinations.lat_min, destinations.lat_max);
    let lon = between(destinations.lon_min, destinations.lon_max);
    RouteOrder {
        channel: None,
        destination: Destination::Point { lat, lon },
        lines,
        method: RouteMethod::ShipCheapest,
        max_shipments: ROUTED_SHIPMENTS_MAX,
        allow_partial: true,
        allow_backorder: false,
    }
}

/// Returns whether a reserve's or a routed reserve's response held any unit, or `None`
/// for any other response.
fn held_any_unit(response: &Response) -> Option<bool> {
    match response {
        Response::Reserved { lines, .. } => {
            Some(lines.iter().any(|line| line.status == LINE_HELD || line.status == LINE_PARTIALLY_HELD))
        }
        Response::ReservedRouted(outcome) => Some(outcome.held),
        _ => None,
    }
}

/// Appends one JSON line per change the server acknowledged in a frame whose first
/// request has the id `first_request_id`.
fn write_acks(
    log: &Mutex<std::io::BufWriter<std::fs::File>>,
    first_request_id: u64,
    requests: &[Request],
    responses: &[Response],
) {
    use std::io::Write as _;

    let mut log = log.lock().expect("no worker panics holding it");
    for (offset, (request, response)) in requests.iter().zip(responses).enumerate() {
        let (operation, reservation_id) = match request {
            Request::Reserve { reservation_id, .. } => ("reserve", reservation_id),
            Request::ReserveRouted { reservation_id, .. } => ("routed", reservation_id),
            Request::Confirm { reservation_id, .. } => ("confirm", reservation_id),
            Request::Release { reservation_id, .. } => ("release", reservation_id),
            Request::Fulfil { reservation_id, .. } => ("fulfil", reservation_id),
            _ => continue,
        };
        let outcome = match response {
            Response::Reserved { lines, .. } => {
                let held: u64 = lines.iter().map(|line| line.held).sum();
                let statuses: Vec<u32> = lines.iter().map(|line| line.status).collect();
                serde_json::json!({ "held": held, "statuses": statuses })
            }
            Response::ReservedRouted(outcome) => {
                let shipments = if outcome.held { outcome.plan.shipments.as_slice() } else { &[] };
                let held: u64 = shipments.iter().flat_map(|shipment| &shipment.lines).map(|line| line.quantity).sum();
                let locations: Vec<&str> = shipments.iter().map(|shipment| shipment.location.as_str()).collect();
                serde_json::json!({ "held": held, "locations": locations })
            }
            Response::Operated { moved, state, .. } => serde_json::json!({ "moved": moved, "state": state }),
            Response::Error { code, message } => serde_json::json!({ "error": code, "message": message }),
            _ => serde_json::json!({ "response": "unexpected" }),
        };
        let line = serde_json::json!({
            "request_id": first_request_id + offset as u64,
            "reservation_id": reservation_id,
            "operation": operation,
            "outcome": outcome,
        });
        // A full disk ends the log's lines; the run goes on and its report stays right.
        let _ = writeln!(log, "{line}");
    }
}

/// Draws an operation by weight.
fn pick(mix: &[(Operation, u32)], weights: u64, draws: &mut Draws) -> Operation {
    let mut ticket = draws.below(weights);
    for &(operation, weight) in mix {
        if ticket < u64::from(weight) {
            return operation;
        }
        ticket -= u64::from(weight);
    }
    mix[mix.len() - 1].0
}
