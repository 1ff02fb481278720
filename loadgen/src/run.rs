//! The run: connections with frames in flight, each frame a batch of requests drawn
//! from the mix. Closed-loop, a slot sends its next frame once the previous one has its
//! response; open-loop, at the frame's intended send time. Every request of a frame
//! gets the frame's round trip as its latency.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use promesa_client::{Client, ClientConfig, ClientError};
use promesa_protocol::{ErrorCode, Request, ReserveLine, Response, Units};
use serde::Serialize;

use crate::draws::{Distribution, Draws};
use crate::report::{Operation, Report, Tally};

/// Line status code of a line held in full (docs/protocol.md).
const LINE_HELD: u32 = 0;
/// Line status code of a line held in part.
const LINE_PARTIALLY_HELD: u32 = 1;

/// Reservations a worker keeps for later confirms, releases and fulfils; past it the
/// oldest are left as they are (they expire).
pub const HELD_PER_WORKER_MAX: usize = 4_096;

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
    /// Lines per reserve.
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
    /// Append one JSON line per acknowledged change (reserve, confirm, release, fulfil)
    /// to this file: request id, reservation id, operation and outcome.
    #[serde(skip)]
    pub ack_log: Option<std::sync::Arc<std::sync::Mutex<std::io::BufWriter<std::fs::File>>>>,
}

impl RunPlan {
    /// Returns true when the mix has reserves only, as the peer workload does.
    pub fn is_reserve_only(&self) -> bool {
        self.mix.iter().all(|&(operation, _)| operation == Operation::Reserve)
    }
}

/// State shared by the run's tasks.
struct Shared {
    stop: AtomicBool,
    sent: AtomicU64,
    measuring: AtomicBool,
    /// Every response since the warm-up, for the progress line.
    progress: Mutex<Tally>,
    errors: AtomicU64,
}

/// Runs the plan against a server and returns the report.
pub async fn run(config: &ClientConfig, plan: &RunPlan) -> Result<Report, ClientError> {
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        sent: AtomicU64::new(0),
        measuring: AtomicBool::new(plan.warmup.is_zero()),
        progress: Mutex::new(Tally::default()),
        errors: AtomicU64::new(0),
    });
    let mut clients = Vec::with_capacity(plan.connections);
    for _ in 0..plan.connections {
        clients.push(Arc::new(Client::connect(config).await?));
    }

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

    // The clock: warm-up, progress lines, and the duration.
    let mut measured_from = if plan.warmup.is_zero() { Some(started) } else { None };
    let mut last_line = (Instant::now(), 0u64);
    while !tasks.iter().all(|task| task.is_finished()) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let elapsed = started.elapsed();
        if measured_from.is_none() && elapsed >= plan.warmup {
            shared.measuring.store(true, Ordering::Release);
            measured_from = Some(Instant::now());
        }
        if plan.duration.is_some_and(|duration| elapsed >= duration) {
            shared.stop.store(true, Ordering::Release);
        }
        if plan.progress && last_line.0.elapsed() >= Duration::from_secs(1) {
            let progress = shared.progress.lock().expect("no worker panics holding it").clone();
            let rate = (progress.count - last_line.1) as f64 / last_line.0.elapsed().as_secs_f64();
            let quantile =
                |q| if progress.latency_us.is_empty() { 0 } else { progress.latency_us.value_at_quantile(q) };
            eprintln!(
                "{:>6.1} s  {:>10.0} ops/s  p50 {} us  p99 {} us  errors {}{}",
                elapsed.as_secs_f64(),
                rate,
                quantile(0.5),
                quantile(0.99),
                shared.errors.load(Ordering::Relaxed),
                if measured_from.is_none() { "  (warm-up)" } else { "" }
            );
            last_line = (Instant::now(), progress.count);
        }
    }
    let measured_secs = measured_from.map_or(0.0, |from| from.elapsed().as_secs_f64());

    let mut tallies: BTreeMap<Operation, Tally> = BTreeMap::new();
    for task in tasks {
        let part = task.await.expect("a worker panicked")?;
        for (operation, tally) in part {
            tallies.entry(operation).or_default().add(&tally);
        }
    }
    for client in clients {
        if let Some(client) = Arc::into_inner(client) {
            client.close().await;
        }
    }
    let settings = serde_json::to_value(plan).expect("the plan serializes");
    Ok(Report::new(settings, measured_secs, &tallies))
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
                operation = Operation::Reserve;
            }
            next_id += 1;
            let request = match (operation, reservation) {
                (Operation::Availability, _) => {
                    let sku = draws.sku(plan.distribution, plan.skus);
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
                            sku: format!("SKU-{}", draws.sku(plan.distribution, plan.skus)),
                            location: format!("L-{}", draws.below(plan.locations)),
                            quantity: draws.quantity(plan.quantity.0, plan.quantity.1),
                        })
                        .collect(),
                    partial: false,
                    ttl_ms: plan.ttl_ms,
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
                Request::Reserve { reservation_id, .. } => Some(reservation_id.clone()),
                _ => None,
            })
            .collect();
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
            write_acks(log, &acknowledged, &responses);
        }

        let measuring = shared.measuring.load(Ordering::Acquire);
        let mut answered = 0u64;
        for ((operation, response), id) in operations.iter().zip(&responses).zip(reserve_ids) {
            if let (Response::Reserved { lines, .. }, Some(id)) = (response, id) {
                let any = lines.iter().any(|line| line.status == LINE_HELD || line.status == LINE_PARTIALLY_HELD);
                if any && plan.mix.iter().any(|&(operation, _)| operation != Operation::Reserve) {
                    if held.len() >= HELD_PER_WORKER_MAX {
                        held.pop_front();
                    }
                    held.push_back(id);
                }
                if !any && measuring {
                    tallies.entry(*operation).or_default().refused += 1;
                }
            }
            if !measuring {
                continue;
            }
            let tally = tallies.entry(*operation).or_default();
            tally.count += 1;
            tally.latency_us.saturating_record(latency_us);
            answered += 1;
            if let Response::Error { code, .. } = response {
                let name = ErrorCode::from_number(*code)
                    .map_or_else(|| format!("error {code}"), |code| code.name().to_owned());
                *tally.errors.entry(name).or_default() += 1;
                shared.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        if measuring {
            // Every request of the frame has the frame's latency: one record of that many.
            let mut progress = shared.progress.lock().expect("no worker panics holding it");
            progress.count += answered;
            progress.latency_us.saturating_record_n(latency_us, answered);
        }
    }
    Ok(tallies)
}

/// Appends one JSON line per change the server acknowledged in a frame.
fn write_acks(log: &Mutex<std::io::BufWriter<std::fs::File>>, requests: &[Request], responses: &[Response]) {
    use std::io::Write as _;

    let mut log = log.lock().expect("no worker panics holding it");
    for (request, response) in requests.iter().zip(responses) {
        let (operation, reservation_id) = match request {
            Request::Reserve { reservation_id, .. } => ("reserve", reservation_id),
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
            Response::Operated { moved, state, .. } => serde_json::json!({ "moved": moved, "state": state }),
            Response::Error { code, message } => serde_json::json!({ "error": code, "message": message }),
            _ => serde_json::json!({ "response": "unexpected" }),
        };
        let line = serde_json::json!({ "reservation_id": reservation_id, "operation": operation, "outcome": outcome });
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
