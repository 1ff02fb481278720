//! Replays a dataset's orders against a server. The network and its stock load first.
//! Then each order goes, in time order, as a routed reserve to its destination, and a
//! share of them is followed by a confirm (and a fulfil), a cancel, or a short hold left
//! to expire. The report gives fill rate, splits, distances, backorders and latency.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use promesa_client::{Client, ClientConfig, ClientError};
use promesa_protocol::limits::ROWS_PER_REQUEST_MAX;
use promesa_protocol::{
    Destination, ErrorCode, LocationRouting, LocationRow, LocationWithRouting, Request, Response, RouteLine,
    RouteMethod, RouteOrder, RoutedReserveOutcome, StockRow, Units,
};
use serde::Serialize;

use crate::dataset::Dataset;
use crate::draws::Draws;
use crate::report::{Figures, Tally};

/// Maximum orders in flight per connection.
pub const IN_FLIGHT_PER_CONNECTION_MAX: usize = 1_024;
/// Maximum connections.
pub const CONNECTIONS_MAX: usize = 64;

/// The step that follows an order's routed reserve once its units are held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    /// Confirmed at payment, then left for the warehouse.
    Confirm,
    /// Confirmed and fulfilled (shipped).
    Fulfil,
    /// Cancelled by the shopper: every unit released.
    Cancel,
    /// Abandoned: held with the short time-to-live and left to expire.
    Expire,
    /// Still in checkout: held with the long time-to-live.
    Hold,
}

/// Shares of the orders, in percent, that each fate takes; the rest stay held.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Fates {
    /// Confirmed and left allocated.
    pub confirm_pct: u32,
    /// Confirmed and fulfilled.
    pub fulfil_pct: u32,
    /// Cancelled.
    pub cancel_pct: u32,
    /// Left to expire.
    pub expire_pct: u32,
}

impl Fates {
    /// Checks that the shares add up to at most 100.
    pub fn check(&self) -> Result<(), String> {
        let total = self.confirm_pct + self.fulfil_pct + self.cancel_pct + self.expire_pct;
        if total > 100 {
            return Err(format!(
                "the fate shares add up to {total}% (confirm {}, fulfil {}, cancel {}, expire {}); the limit is 100%",
                self.confirm_pct, self.fulfil_pct, self.cancel_pct, self.expire_pct
            ));
        }
        Ok(())
    }

    /// Returns the fate of order `index`, drawn from `seed` alone, so it does not depend on
    /// which task sends the order.
    pub fn draw(&self, seed: u64, index: usize) -> Fate {
        let roll = Draws::new(seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)).below(100) as u32;
        let shares = [
            (self.confirm_pct, Fate::Confirm),
            (self.fulfil_pct, Fate::Fulfil),
            (self.cancel_pct, Fate::Cancel),
            (self.expire_pct, Fate::Expire),
        ];
        let mut bound = 0;
        for (share, fate) in shares {
            bound += share;
            if roll < bound {
                return fate;
            }
        }
        Fate::Hold
    }
}

/// Settings of a replay.
#[derive(Clone, Debug, Serialize)]
pub struct ReplayPlan {
    /// Connections.
    pub connections: usize,
    /// Orders in flight per connection.
    pub in_flight: usize,
    /// Data seconds per wall-clock second; `None` sends as fast as the server responds.
    pub speed: Option<f64>,
    /// Time-to-live of holds, in milliseconds.
    pub ttl_ms: u64,
    /// Time-to-live of the holds left to expire, in milliseconds.
    pub expire_ttl_ms: u64,
    /// Shares of the fates.
    pub fates: Fates,
    /// Shipments an order may split into (1 to 8).
    pub max_shipments: u32,
    /// Lines no location has in stock may be backordered against inbound supply.
    pub allow_backorder: bool,
    /// Seed of the fates.
    pub seed: u64,
    /// Replay only the first orders.
    pub orders_max: Option<usize>,
    /// Prefix of the reservation ids, so replays into one server do not collide.
    pub id_prefix: String,
    /// Print a progress line every second.
    pub progress: bool,
}

impl ReplayPlan {
    /// Checks every setting, naming the command-line flag of a value out of range.
    pub fn check(&self) -> Result<(), String> {
        self.fates.check()?;
        if !(1..=CONNECTIONS_MAX).contains(&self.connections) {
            return Err(format!(
                "--connections {} is out of range; it must be 1 to {CONNECTIONS_MAX}",
                self.connections
            ));
        }
        if !(1..=IN_FLIGHT_PER_CONNECTION_MAX).contains(&self.in_flight) {
            return Err(format!(
                "--in-flight {} is out of range; it must be 1 to {IN_FLIGHT_PER_CONNECTION_MAX}",
                self.in_flight
            ));
        }
        if let Some(speed) = self.speed
            && !(speed.is_finite() && speed > 0.0)
        {
            return Err(format!("--speed {speed} is not a positive number of data seconds per second"));
        }
        if self.orders_max == Some(0) {
            return Err("--orders 0 replays nothing; it must be at least 1".to_owned());
        }
        if self.ttl_ms == 0 || self.expire_ttl_ms == 0 {
            return Err(format!(
                "a time-to-live is 0 (--ttl-secs gives {} ms, --expire-ttl-ms {} ms); both must be at least 1 ms",
                self.ttl_ms, self.expire_ttl_ms
            ));
        }
        if !(1..=8).contains(&self.max_shipments) {
            return Err(format!("--max-shipments {} is out of range; it must be 1 to 8", self.max_shipments));
        }
        Ok(())
    }
}

/// Operations a replay sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Routed,
    Confirm,
    Fulfil,
    Release,
}

impl Step {
    const ALL: [Step; 4] = [Step::Routed, Step::Confirm, Step::Fulfil, Step::Release];

    fn name(self) -> &'static str {
        match self {
            Step::Routed => "routed_reserve",
            Step::Confirm => "confirm",
            Step::Fulfil => "fulfil",
            Step::Release => "release",
        }
    }
}

/// Counts of the replay's orders by outcome.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Outcomes {
    /// Orders sent.
    pub orders: u64,
    /// Orders held in full (from stock or backordered).
    pub orders_filled: u64,
    /// Orders held in part: some lines short.
    pub orders_partial: u64,
    /// Orders not held: nothing could be placed.
    pub orders_refused: u64,
    /// Orders whose destination is a synthetic customer.
    pub orders_synthetic_customer: u64,
    /// Units ordered.
    pub units_ordered: u64,
    /// Units held from stock.
    pub units_from_stock: u64,
    /// Units backordered against inbound supply.
    pub units_backordered: u64,
    /// Orders that ship in more than one shipment.
    pub orders_split: u64,
    /// Shipments planned.
    pub shipments: u64,
    /// Orders whose plan was made more than once (stock or capacity taken meanwhile).
    pub orders_replanned: u64,
    /// Units left without a location, by reason.
    pub units_unfilled: BTreeMap<String, u64>,
    /// Orders confirmed (fulfilled ones included).
    pub confirmed: u64,
    /// Orders fulfilled.
    pub fulfilled: u64,
    /// Orders cancelled.
    pub cancelled: u64,
    /// Orders held with the short time-to-live, to expire.
    pub expiring: u64,
    /// Orders left held.
    pub held: u64,
    /// Error responses by code name.
    pub errors: BTreeMap<String, u64>,
}

impl Outcomes {
    fn add(&mut self, other: &Outcomes) {
        self.orders += other.orders;
        self.orders_filled += other.orders_filled;
        self.orders_partial += other.orders_partial;
        self.orders_refused += other.orders_refused;
        self.orders_synthetic_customer += other.orders_synthetic_customer;
        self.units_ordered += other.units_ordered;
        self.units_from_stock += other.units_from_stock;
        self.units_backordered += other.units_backordered;
        self.orders_split += other.orders_split;
        self.shipments += other.shipments;
        self.orders_replanned += other.orders_replanned;
        for (reason, units) in &other.units_unfilled {
            *self.units_unfilled.entry(reason.clone()).or_default() += units;
        }
        self.confirmed += other.confirmed;
        self.fulfilled += other.fulfilled;
        self.cancelled += other.cancelled;
        self.expiring += other.expiring;
        self.held += other.held;
        for (code, count) in &other.errors {
            *self.errors.entry(code.clone()).or_default() += count;
        }
    }

    /// Errors of every code.
    pub fn errors_total(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// The report of a replay.
#[derive(Clone, Debug, Serialize)]
pub struct ReplayReport {
    /// Title of the replayed data.
    pub dataset: String,
    /// Notes from reading the data.
    pub notes: Vec<String>,
    /// The settings.
    pub settings: ReplayPlan,
    /// Orders in the data; `outcomes.orders` is fewer when `--orders` cut the replay.
    pub orders_in_data: u64,
    /// Seconds from the first order sent to the last response.
    pub elapsed_secs: f64,
    /// Orders per second over `elapsed_secs`.
    pub orders_per_sec: f64,
    /// Units held from stock or backordered, per unit ordered.
    pub fill_rate: f64,
    /// Orders held in full, per order.
    pub order_fill_rate: f64,
    /// Split orders, per order held.
    pub split_rate: f64,
    /// Mean great-circle distance of a shipment, in kilometres.
    pub distance_km_mean: f64,
    /// 95th percentile of the distance of a shipment, in kilometres.
    pub distance_km_p95: f64,
    /// Counts.
    pub outcomes: Outcomes,
    /// Latency and counts per operation.
    pub operations: BTreeMap<String, Figures>,
    /// Reservation ids of the orders held, with their fates, in order.
    #[serde(skip)]
    pub reservations: Vec<(String, Fate)>,
}

impl ReplayReport {
    /// Renders the report as text lines.
    pub fn text(&self) -> String {
        let outcomes = &self.outcomes;
        let percent = |part: u64, whole: u64| 100.0 * part as f64 / whole.max(1) as f64;
        let mut text = String::new();
        let mut line = |label: &str, body: String| text.push_str(&labelled(label, &body));

        line(
            "orders",
            format!(
                "{}{} in {:.1} s, {} orders/s ({} connections x {} in flight{})",
                grouped(outcomes.orders),
                if outcomes.orders < self.orders_in_data {
                    format!(" of {}", grouped(self.orders_in_data))
                } else {
                    String::new()
                },
                self.elapsed_secs,
                grouped(self.orders_per_sec.round() as u64),
                self.settings.connections,
                self.settings.in_flight,
                self.settings.speed.map(|speed| format!(", speed x{speed}")).unwrap_or_default(),
            ),
        );

        line(
            "fill",
            format!(
                "{:.2}% of {} units ({} from stock, {} backordered); {} orders filled in full ({:.2}%), {} in part, \
                 {} not held",
                100.0 * self.fill_rate,
                grouped(outcomes.units_ordered),
                grouped(outcomes.units_from_stock),
                grouped(outcomes.units_backordered),
                grouped(outcomes.orders_filled),
                100.0 * self.order_fill_rate,
                grouped(outcomes.orders_partial),
                grouped(outcomes.orders_refused),
            ),
        );

        if !outcomes.units_unfilled.is_empty() {
            let reasons: Vec<String> =
                outcomes.units_unfilled.iter().map(|(reason, units)| format!("{} {reason}", grouped(*units))).collect();
            line("unfilled", format!("units by reason: {}", reasons.join(", ")));
        }

        line(
            "splits",
            format!(
                "{} orders in more than one shipment ({:.2}% of held), {} shipments; {} orders planned again",
                grouped(outcomes.orders_split),
                100.0 * self.split_rate,
                grouped(outcomes.shipments),
                grouped(outcomes.orders_replanned),
            ),
        );

        line(
            "distance",
            format!("per shipment mean {:.0} km, p95 {:.0} km", self.distance_km_mean, self.distance_km_p95),
        );

        line(
            "after",
            format!(
                "{} confirmed ({} of them fulfilled), {} cancelled, {} left to expire, {} left held",
                grouped(outcomes.confirmed),
                grouped(outcomes.fulfilled),
                grouped(outcomes.cancelled),
                grouped(outcomes.expiring),
                grouped(outcomes.held),
            ),
        );

        for (name, figures) in &self.operations {
            line(
                "latency",
                format!(
                    "{name:<15}{:>7} requests  p50 {:>5}  p99 {:>5}  p99.9 {:>5}  max {:>5} us",
                    grouped(figures.count),
                    figures.latency_us.p50,
                    figures.latency_us.p99,
                    figures.latency_us.p999,
                    figures.latency_us.max,
                ),
            );
        }

        let errors: Vec<String> =
            outcomes.errors.iter().map(|(code, count)| format!("{} {code}", grouped(*count))).collect();

        line("errors", if errors.is_empty() { "none".to_owned() } else { errors.join(", ") });

        if outcomes.orders_synthetic_customer > 0 {
            line(
                "SYNTHETIC",
                format!(
                    "{} orders ({:.1}%) go to customers drawn from the customer table, not their own",
                    grouped(outcomes.orders_synthetic_customer),
                    percent(outcomes.orders_synthetic_customer, outcomes.orders),
                ),
            );
        }

        text
    }
}

/// Counts and time of loading the network.
#[derive(Clone, Debug, Serialize)]
pub struct NetworkLoaded {
    /// Locations upserted.
    pub locations: usize,
    /// Stock rows applied.
    pub positions: u64,
    /// Seconds it took.
    pub elapsed_secs: f64,
}

/// Upserts the dataset's locations with routing terms and imports its stock in one
/// staged import.
pub async fn load_network(client: &Client, dataset: &Dataset, import_id: &str) -> Result<NetworkLoaded, String> {
    let started = Instant::now();
    let routing = LocationRouting { utc_offset_minutes: dataset.utc_offset_minutes, ..LocationRouting::default() };
    let locations: Vec<LocationWithRouting> = dataset
        .sites
        .iter()
        .map(|site| LocationWithRouting {
            location: LocationRow {
                code: site.code.clone(),
                kind: site.kind,
                lat: site.lat,
                lon: site.lon,
                methods: site.methods,
                daily_capacity: 0,
                active: true,
            },
            routing: routing.clone(),
        })
        .collect();
    for chunk in locations.chunks(ROWS_PER_REQUEST_MAX) {
        let request = Request::UpsertLocationsWithRouting { locations: chunk.to_vec() };
        expect_ok(client.call_one(request).await, "location upsert")?;
    }

    let mut first_line = 0;
    for chunk in dataset.stock.chunks(ROWS_PER_REQUEST_MAX) {
        let rows = chunk
            .iter()
            .map(|stock| StockRow {
                sku: stock.sku.clone(),
                location: stock.location.clone(),
                on_hand: stock.on_hand,
                safety_stock: None,
            })
            .collect();
        let request = Request::ImportRows { import_id: import_id.to_owned(), first_line, rows };
        expect_ok(client.call_one(request).await, "stock import")?;
        first_line += chunk.len() as u64;
    }
    let positions = match client.call_one(Request::ImportCommit { import_id: import_id.to_owned() }).await {
        Ok(Response::ImportCommitted { rows, .. }) => rows,
        other => return Err(refusal(other, "stock import commit")),
    };
    Ok(NetworkLoaded { locations: locations.len(), positions, elapsed_secs: started.elapsed().as_secs_f64() })
}

/// State shared by the replay's tasks.
struct Shared {
    next: AtomicUsize,
    done: AtomicU64,
    errors: AtomicU64,
    failed: AtomicBool,
    /// Latency of routed reserves so far, for the progress line.
    progress_latency: Mutex<Tally>,
}

/// Measurements of one task.
#[derive(Default)]
struct TaskTally {
    outcomes: Outcomes,
    steps: BTreeMap<Step, Tally>,
    distances_km: Vec<f64>,
    reservations: Vec<(usize, String, Fate)>,
}

/// Replays the dataset's orders (the network must be loaded). Fails on a broken
/// connection; error responses are counted, not fatal.
pub async fn replay(config: &ClientConfig, dataset: Arc<Dataset>, plan: &ReplayPlan) -> Result<ReplayReport, String> {
    plan.check()?;
    let orders = plan.orders_max.map_or(dataset.orders.len(), |max| max.min(dataset.orders.len()));

    let mut clients = Vec::with_capacity(plan.connections);
    for _ in 0..plan.connections {
        clients.push(Arc::new(Client::connect(config).await.map_err(|error| error.to_string())?));
    }
    let shared = Arc::new(Shared {
        next: AtomicUsize::new(0),
        done: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        failed: AtomicBool::new(false),
        progress_latency: Mutex::new(Tally::default()),
    });

    let started = Instant::now();
    let progress = plan.progress.then(|| tokio::spawn(progress_loop(Arc::clone(&shared), orders, started)));
    let mut tasks = Vec::new();
    for client in &clients {
        for _ in 0..plan.in_flight {
            let (client, shared, dataset, plan) =
                (Arc::clone(client), Arc::clone(&shared), Arc::clone(&dataset), plan.clone());
            tasks.push(tokio::spawn(async move {
                let result = send_orders(&client, &shared, &dataset, &plan, orders, started).await;
                if result.is_err() {
                    shared.failed.store(true, Ordering::Relaxed);
                }
                result
            }));
        }
    }
    let mut total = TaskTally::default();
    let mut failure = None;
    for task in tasks {
        match task.await.map_err(|error| error.to_string()).and_then(|result| result) {
            Ok(tally) => {
                total.outcomes.add(&tally.outcomes);
                for (step, figures) in &tally.steps {
                    total.steps.entry(*step).or_default().add(figures);
                }
                total.distances_km.extend(tally.distances_km);
                total.reservations.extend(tally.reservations);
            }
            Err(error) => failure = failure.or(Some(error)),
        }
    }
    let elapsed_secs = started.elapsed().as_secs_f64();
    if let Some(progress) = progress {
        progress.abort();
    }
    for client in clients {
        if let Ok(client) = Arc::try_unwrap(client) {
            client.close().await;
        }
    }
    if let Some(error) = failure {
        return Err(format!("the replay stopped: {error}"));
    }

    total.reservations.sort_by_key(|(index, _, _)| *index);
    total.distances_km.sort_by(f64::total_cmp);
    let outcomes = total.outcomes;
    let distance_km_mean = total.distances_km.iter().sum::<f64>() / total.distances_km.len().max(1) as f64;
    let distance_km_p95 = if total.distances_km.is_empty() {
        0.0
    } else {
        total.distances_km[((total.distances_km.len() - 1) as f64 * 0.95).round() as usize]
    };
    let held_orders = outcomes.orders_filled + outcomes.orders_partial;
    Ok(ReplayReport {
        dataset: dataset.title.clone(),
        notes: dataset.notes.clone(),
        settings: plan.clone(),
        orders_in_data: dataset.orders.len() as u64,
        elapsed_secs,
        orders_per_sec: outcomes.orders as f64 / elapsed_secs.max(f64::MIN_POSITIVE),
        fill_rate: (outcomes.units_from_stock + outcomes.units_backordered) as f64
            / outcomes.units_ordered.max(1) as f64,
        order_fill_rate: outcomes.orders_filled as f64 / outcomes.orders.max(1) as f64,
        split_rate: outcomes.orders_split as f64 / held_orders.max(1) as f64,
        distance_km_mean,
        distance_km_p95,
        operations: Step::ALL
            .iter()
            .filter_map(|step| total.steps.get(step).map(|tally| (step.name().to_owned(), tally.figures(elapsed_secs))))
            .collect(),
        outcomes,
        reservations: total.reservations.into_iter().map(|(_, id, fate)| (id, fate)).collect(),
    })
}

/// Takes the next order until none is left, and sends it and its follow-ups.
async fn send_orders(
    client: &Client,
    shared: &Shared,
    dataset: &Dataset,
    plan: &ReplayPlan,
    orders: usize,
    started: Instant,
) -> Result<TaskTally, String> {
    let mut tally = TaskTally::default();
    let first_secs = dataset.orders.first().map_or(0, |order| order.time_secs);
    loop {
        if shared.failed.load(Ordering::Relaxed) {
            return Ok(tally);
        }
        let index = shared.next.fetch_add(1, Ordering::Relaxed);
        if index >= orders {
            return Ok(tally);
        }
        let order = &dataset.orders[index];

        // Paced: wait for the order's time on the compressed clock, and measure from it.
        let mut intended = Instant::now();
        if let Some(speed) = plan.speed {
            let offset_secs = (order.time_secs - first_secs) as f64 / speed;
            let due = started + Duration::from_secs_f64(offset_secs.max(0.0));
            tokio::time::sleep_until(due.into()).await;
            intended = due;
        }

        let fate = plan.fates.draw(plan.seed, index);
        let reservation_id = format!("{}{}", plan.id_prefix, order.id);
        let route = RouteOrder {
            channel: None,
            destination: Destination::Point { lat: order.lat, lon: order.lon },
            lines: order
                .lines
                .iter()
                .map(|(sku, quantity)| RouteLine { sku: sku.clone(), quantity: *quantity })
                .collect(),
            method: RouteMethod::ShipCheapest,
            max_shipments: plan.max_shipments,
            allow_partial: true,
            allow_backorder: plan.allow_backorder,
        };
        let ttl_ms = if fate == Fate::Expire { plan.expire_ttl_ms } else { plan.ttl_ms };
        let request = Request::ReserveRouted { reservation_id: reservation_id.clone(), ttl_ms, order: route };
        let response = client.call_one(request).await.map_err(describe)?;
        let latency_us = intended.elapsed().as_micros() as u64;
        record(&mut tally, Step::Routed, latency_us, &response);
        shared.progress_latency.lock().expect("no task panics holding it").latency_us.saturating_record(latency_us);

        let outcomes = &mut tally.outcomes;
        outcomes.orders += 1;
        outcomes.orders_synthetic_customer += u64::from(order.synthetic_customer);
        outcomes.units_ordered += order.lines.iter().map(|(_, units)| units).sum::<u64>();
        let held = match response {
            Response::ReservedRouted(outcome) => count_plan(&mut tally, &outcome),
            Response::Error { code, .. } => {
                *outcomes.errors.entry(code_name(code)).or_default() += 1;
                shared.errors.fetch_add(1, Ordering::Relaxed);
                None
            }
            other => return Err(format!("a routed reserve got an unexpected response: {other:?}")),
        };
        shared.done.fetch_add(1, Ordering::Relaxed);
        let Some(backordered) = held else { continue };

        // Follow-ups: a backordered line cannot ship until its receipt arrives, so an
        // order with one is confirmed, not fulfilled.
        let fate = if fate == Fate::Fulfil && backordered { Fate::Confirm } else { fate };
        match fate {
            Fate::Confirm | Fate::Fulfil => {
                let op_id = "confirm".to_owned();
                let request = Request::Confirm { reservation_id: reservation_id.clone(), op_id, units: Units::All };
                follow_up(client, shared, &mut tally, Step::Confirm, request).await?;
                tally.outcomes.confirmed += 1;
                if fate == Fate::Fulfil {
                    let op_id = "fulfil".to_owned();
                    let request = Request::Fulfil { reservation_id: reservation_id.clone(), op_id, units: Units::All };
                    follow_up(client, shared, &mut tally, Step::Fulfil, request).await?;
                    tally.outcomes.fulfilled += 1;
                }
            }
            Fate::Cancel => {
                let (op_id, units) = ("cancel".to_owned(), Units::All);
                let request = Request::Release { reservation_id: reservation_id.clone(), op_id, units, from: 0 };
                follow_up(client, shared, &mut tally, Step::Release, request).await?;
                tally.outcomes.cancelled += 1;
            }
            Fate::Expire => tally.outcomes.expiring += 1,
            Fate::Hold => tally.outcomes.held += 1,
        }
        tally.reservations.push((index, reservation_id, fate));
    }
}

/// Counts a routed reserve's plan; returns `Some(backordered)` when the order is held.
fn count_plan(tally: &mut TaskTally, outcome: &RoutedReserveOutcome) -> Option<bool> {
    let outcomes = &mut tally.outcomes;
    outcomes.orders_replanned += u64::from(outcome.attempts > 1);
    for line in &outcome.plan.unfilled {
        *outcomes.units_unfilled.entry(unfilled_reason(line.reason).to_owned()).or_default() += line.unfilled;
    }
    if !outcome.held {
        outcomes.orders_refused += 1;
        return None;
    }
    if outcome.plan.unfilled.is_empty() {
        outcomes.orders_filled += 1;
    } else {
        outcomes.orders_partial += 1;
    }
    let shipments = &outcome.plan.shipments;
    outcomes.shipments += shipments.len() as u64;
    outcomes.orders_split += u64::from(shipments.len() > 1);
    let mut backordered = false;
    for shipment in shipments {
        let units: u64 = shipment.lines.iter().map(|line| line.quantity).sum();
        if shipment.backorder {
            outcomes.units_backordered += units;
            backordered = true;
        } else {
            outcomes.units_from_stock += units;
        }
        tally.distances_km.push(shipment.distance_km);
    }
    Some(backordered)
}

async fn follow_up(
    client: &Client,
    shared: &Shared,
    tally: &mut TaskTally,
    step: Step,
    request: Request,
) -> Result<(), String> {
    let sent = Instant::now();
    let response = client.call_one(request).await.map_err(describe)?;
    record(tally, step, sent.elapsed().as_micros() as u64, &response);
    if let Response::Error { code, .. } = response {
        *tally.outcomes.errors.entry(code_name(code)).or_default() += 1;
        shared.errors.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

fn record(tally: &mut TaskTally, step: Step, latency_us: u64, response: &Response) {
    let figures = tally.steps.entry(step).or_default();
    figures.count += 1;
    figures.latency_us.saturating_record(latency_us);
    match response {
        Response::Error { code, .. } => *figures.errors.entry(code_name(*code)).or_default() += 1,
        Response::ReservedRouted(outcome) if !outcome.held => figures.refused += 1,
        _ => {}
    }
}

/// Prints one line a second: elapsed, orders done, orders per second, routed reserve
/// p50 and p99 so far, errors.
async fn progress_loop(shared: Arc<Shared>, orders: usize, started: Instant) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    let mut last_done = 0;
    loop {
        ticker.tick().await;
        let done = shared.done.load(Ordering::Relaxed);
        let (p50, p99) = {
            let tally = shared.progress_latency.lock().expect("no task panics holding it");
            let histogram = &tally.latency_us;
            if histogram.is_empty() {
                (0, 0)
            } else {
                (histogram.value_at_quantile(0.5), histogram.value_at_quantile(0.99))
            }
        };
        eprintln!(
            "  {:>5.1} s  {done:>7} of {orders} orders  {:>7} orders/s  p50 {p50} us  p99 {p99} us  errors {}",
            started.elapsed().as_secs_f64(),
            done - last_done,
            shared.errors.load(Ordering::Relaxed),
        );
        last_done = done;
    }
}

/// Width of the label column of a report's lines.
const LABEL_COLUMNS: usize = 12;
/// Width a report's lines wrap at.
const REPORT_COLUMNS: usize = 100;

/// Formats one line of a report: the label in its column, then the body, wrapped at
/// word boundaries to `REPORT_COLUMNS` with the continuation lines indented.
pub fn labelled(label: &str, body: &str) -> String {
    let mut text = format!("{label:<LABEL_COLUMNS$}");
    let mut column = text.chars().count();
    let mut first_word = true;
    for word in body.split(' ') {
        let width = word.chars().count();
        if !first_word && column + 1 + width > REPORT_COLUMNS {
            text.push('\n');
            text.push_str(&" ".repeat(LABEL_COLUMNS));
            column = LABEL_COLUMNS;
        } else if !first_word {
            text.push(' ');
            column += 1;
        }
        text.push_str(word);
        column += width;
        first_word = false;
    }
    text.push('\n');
    text
}

/// Writes a count with a comma between groups of three digits.
pub fn grouped(count: u64) -> String {
    let digits = count.to_string();
    let mut text = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            text.push(',');
        }
        text.push(digit);
    }
    text
}

/// Returns the name of an unfilled line's reason code.
fn unfilled_reason(reason: u8) -> &'static str {
    match reason {
        1 => "unknown_sku",
        2 => "not_enough_available",
        3 => "more_shipments_than_allowed",
        4 => "no_pickup_store",
        _ => "other",
    }
}

fn code_name(code: u16) -> String {
    ErrorCode::from_number(code).map_or_else(|| format!("code_{code}"), |code| code.name().to_owned())
}

fn describe(error: ClientError) -> String {
    error.to_string()
}

fn refusal(response: Result<Response, ClientError>, what: &str) -> String {
    match response {
        Ok(Response::Error { code, message }) => {
            format!("the server refused the {what} ({}): {message}", code_name(code))
        }
        Ok(other) => format!("the {what} got an unexpected response: {other:?}"),
        Err(error) => format!("the {what} failed: {error}"),
    }
}

fn expect_ok(response: Result<Response, ClientError>, what: &str) -> Result<(), String> {
    match response {
        Ok(Response::Error { .. }) | Err(_) => Err(refusal(response, what)),
        Ok(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fates_draw_shares_per_order_index() {
        let fates = Fates { confirm_pct: 40, fulfil_pct: 20, cancel_pct: 15, expire_pct: 10 };
        let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
        for index in 0..10_000 {
            let fate = fates.draw(7, index);
            assert_eq!(fate, fates.draw(7, index));
            *counts.entry(format!("{fate:?}").leak()).or_default() += 1;
        }
        let share = |name: &str| counts[name] as f64 / 100.0;
        for (name, expected) in
            [("Confirm", 40.0), ("Fulfil", 20.0), ("Cancel", 15.0), ("Expire", 10.0), ("Hold", 15.0)]
        {
            assert!(
                (share(name) - expected).abs() < 2.0,
                "{name}: {}% of 10,000, expected about {expected}%",
                share(name)
            );
        }
    }

    #[test]
    fn labelled_lines_wrap_under_the_body() {
        assert_eq!(labelled("fill", "all of it"), "fill        all of it\n");
        let long = "word ".repeat(30);
        let text = labelled("splits", long.trim());
        assert!(text.lines().all(|line| line.chars().count() <= REPORT_COLUMNS), "{text}");
        assert!(text.lines().skip(1).all(|line| line.starts_with("            word")), "{text}");
        assert_eq!(text.split_whitespace().filter(|word| *word == "word").count(), 30);
    }

    #[test]
    fn grouped_counts_use_commas() {
        let cases = [(0, "0"), (999, "999"), (1_000, "1,000"), (98_402, "98,402"), (5_657_681, "5,657,681")];
        for (count, text) in cases {
            assert_eq!(grouped(count), text);
        }
    }

    #[test]
    fn fates_over_100_percent_rejected() {
        let fates = Fates { confirm_pct: 60, fulfil_pct: 30, cancel_pct: 15, expire_pct: 0 };
        assert_eq!(
            fates.check().unwrap_err(),
            "the fate shares add up to 105% (confirm 60, fulfil 30, cancel 15, expire 0); the limit is 100%"
        );
    }
}
