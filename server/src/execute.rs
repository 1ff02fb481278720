//! The request path: a validated client frame in, the engine calls, one server frame
//! out. A frame with mutations runs inside `Engine::batch`, so its response is built
//! only once the log contains every change the frame made or depended on.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use promesa_engine::error::{
    AvailabilityError, ChannelError, CodeError, LoadError, LocationError, LogError, ReservationError, ReserveError,
    StockError,
};
use promesa_engine::routing::ChannelSpec;
use promesa_engine::supply::SupplyRequest;
use promesa_engine::{
    AdjustReason, AdjustRequest, ConfirmRequest, Engine, ExtendRequest, FulfilRequest, LineQuantity, LocationFilter,
    Policy, PositionRow, ReleaseFrom, ReleaseRequest, ReserveRequest, Units,
};
use promesa_protocol::frame::check_limits;
use promesa_protocol::{
    ArchivedClientFrame, ArchivedRequest, ArchivedReserveLine, ArchivedUnits, ErrorCode, Figure, LineOutcome, LineView,
    LocationAvailability, PositionAvailability, Request, ReservationView, Response, ResponseEnvelope, Role,
    ServerFrame, SkuAvailability,
};

use crate::routing::{
    location_routing, location_spec, postal_error, postal_rows, quote_request, route_error, routed_reserve_request,
    wire_outcome, wire_plan,
};
use crate::supply::{availability_by, earliest_available, reserve_policy, supply_changed};

/// Most imports staged at once; a new import id past it is refused.
pub const STAGED_IMPORTS_MAX: usize = 16;

/// Most rows staged under one import id.
pub const STAGED_ROWS_MAX: usize = 50_000_000;

/// Most bad rows listed in an import's error message; the count covers all of them.
pub const BAD_ROWS_LISTED_MAX: usize = 20;

/// Rows of one import staged so far, with the line number of each.
#[derive(Default)]
struct StagedImport {
    rows: Vec<PositionRow>,
    lines: Vec<u64>,
}

/// Runs client frames against the engine.
pub struct Executor {
    engine: Arc<Engine>,
    imports: Mutex<HashMap<String, StagedImport>>,
    /// Per operation, the time from a frame's start to its response (the log wait
    /// included), in microseconds, for each request of that kind in the frame.
    latency_us: Mutex<HashMap<&'static str, hdrhistogram::Histogram<u64>>>,
}

/// Replaces every response of a frame with `unavailable`: the log failed before the
/// frame's changes were durable, so none of them is acknowledged.
pub fn unavailable(frame: ServerFrame, failure: &LogError) -> ServerFrame {
    let message = format!("the change is not acknowledged: {failure}");
    ServerFrame {
        responses: frame
            .responses
            .into_iter()
            .map(|envelope| ResponseEnvelope {
                id: envelope.id,
                response: error(ErrorCode::Unavailable, message.clone()),
            })
            .collect(),
    }
}

/// Returns the operation name of a request, as stats report it.
pub fn operation_name(request: &ArchivedRequest) -> &'static str {
    match request {
        ArchivedRequest::Hello { .. } => "hello",
        ArchivedRequest::Ping => "ping",
        ArchivedRequest::UpsertLocations { .. } => "upsert_locations",
        ArchivedRequest::UpsertChannel { .. } => "upsert_channel",
        ArchivedRequest::SetOnHand { .. } => "set_on_hand",
        ArchivedRequest::AdjustOnHand { .. } => "adjust_on_hand",
        ArchivedRequest::SetSafetyStock { .. } => "set_safety_stock",
        ArchivedRequest::ImportRows { .. } => "import_rows",
        ArchivedRequest::ImportCommit { .. } => "import_commit",
        ArchivedRequest::ImportAbort { .. } => "import_abort",
        ArchivedRequest::Availability { .. } => "availability",
        ArchivedRequest::AvailabilityMany { .. } => "availability_many",
        ArchivedRequest::Reserve { .. } => "reserve",
        ArchivedRequest::Confirm { .. } => "confirm",
        ArchivedRequest::Release { .. } => "release",
        ArchivedRequest::Fulfil { .. } => "fulfil",
        ArchivedRequest::Extend { .. } => "extend",
        ArchivedRequest::Get { .. } => "get",
        ArchivedRequest::Stats => "stats",
        ArchivedRequest::UpsertLocationsWithRouting { .. } => "upsert_locations_with_routing",
        ArchivedRequest::UpsertPostalCodes { .. } => "upsert_postal_codes",
        ArchivedRequest::Quote { .. } => "quote",
        ArchivedRequest::ReserveRouted { .. } => "reserve_routed",
        ArchivedRequest::ReserveWithPolicy { .. } => "reserve_with_policy",
        ArchivedRequest::AddSupply { .. } => "add_supply",
        ArchivedRequest::MoveSupply { .. } => "move_supply",
        ArchivedRequest::CancelSupply { .. } => "cancel_supply",
        ArchivedRequest::AvailabilityBy { .. } => "availability_by",
        ArchivedRequest::EarliestAvailable { .. } => "earliest_available",
    }
}

/// Returns the server's wall clock in milliseconds since the Unix epoch.
pub fn wall_clock_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis() as u64)
}

/// Returns the role a request needs.
pub fn required_role(request: &ArchivedRequest) -> Role {
    match request {
        ArchivedRequest::Hello { .. }
        | ArchivedRequest::Ping
        | ArchivedRequest::Availability { .. }
        | ArchivedRequest::AvailabilityMany { .. }
        | ArchivedRequest::Get { .. }
        | ArchivedRequest::Stats
        | ArchivedRequest::Quote { .. }
        | ArchivedRequest::AvailabilityBy { .. }
        | ArchivedRequest::EarliestAvailable { .. } => Role::Read,
        ArchivedRequest::Reserve { .. }
        | ArchivedRequest::ReserveWithPolicy { .. }
        | ArchivedRequest::ReserveRouted { .. }
        | ArchivedRequest::Confirm { .. }
        | ArchivedRequest::Release { .. }
        | ArchivedRequest::Fulfil { .. }
        | ArchivedRequest::Extend { .. } => Role::Reserve,
        ArchivedRequest::UpsertLocations { .. }
        | ArchivedRequest::UpsertChannel { .. }
        | ArchivedRequest::SetOnHand { .. }
        | ArchivedRequest::AdjustOnHand { .. }
        | ArchivedRequest::SetSafetyStock { .. }
        | ArchivedRequest::ImportRows { .. }
        | ArchivedRequest::ImportCommit { .. }
        | ArchivedRequest::ImportAbort { .. }
        | ArchivedRequest::UpsertLocationsWithRouting { .. }
        | ArchivedRequest::UpsertPostalCodes { .. }
        | ArchivedRequest::AddSupply { .. }
        | ArchivedRequest::MoveSupply { .. }
        | ArchivedRequest::CancelSupply { .. } => Role::Admin,
    }
}

/// Returns whether a request may change state (and so its response waits for the log).
pub fn is_mutation(request: &ArchivedRequest) -> bool {
    required_role(request) != Role::Read
        && !matches!(request, ArchivedRequest::ImportRows { .. } | ArchivedRequest::ImportAbort { .. })
}

fn allows(role: Role, needed: Role) -> bool {
    (role as u8) >= (needed as u8)
}

pub(crate) fn error(code: ErrorCode, message: impl Into<String>) -> Response {
    Response::Error { code: code.number(), message: message.into() }
}

impl Executor {
    /// Serves requests from `engine`.
    pub fn new(engine: Arc<Engine>) -> Self {
        Executor { engine, imports: Mutex::new(HashMap::new()), latency_us: Mutex::new(HashMap::new()) }
    }

    /// Returns the engine.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Returns the engine, dropping staged imports.
    pub fn into_engine(self) -> Arc<Engine> {
        self.engine
    }

    /// Runs every request of a frame for a client with `role` and returns the frame of
    /// responses, and the LSN the log must reach before the frame may be sent (0 for a
    /// frame that changed nothing). See [`unavailable`] for a log that fails first.
    pub fn execute_frame(&self, frame: &ArchivedClientFrame, role: Role) -> (ServerFrame, u64) {
        let now_ms = wall_clock_ms();
        let run = || -> Vec<ResponseEnvelope> {
            frame
                .requests
                .iter()
                .map(|envelope| ResponseEnvelope {
                    id: envelope.id.to_native(),
                    response: self.execute(&envelope.request, role, now_ms),
                })
                .collect()
        };
        if !frame.requests.iter().any(|envelope| is_mutation(&envelope.request)) {
            return (ServerFrame { responses: run() }, 0);
        }
        let (responses, lsn) = self.engine.batch_deferred(run);
        (ServerFrame { responses }, lsn)
    }

    /// Records the time from a frame's start to its response for each of its requests.
    pub fn record_latency(&self, frame: &ArchivedClientFrame, elapsed_us: u64) {
        let mut latency_us = self.latency_us.lock();
        for envelope in frame.requests.iter() {
            let histogram = latency_us.entry(operation_name(&envelope.request)).or_insert_with(|| {
                // Three significant digits, as hdrhistogram recommends for latencies.
                hdrhistogram::Histogram::new(3).expect("3 significant digits is a valid precision")
            });
            histogram.saturating_record(elapsed_us);
        }
    }

    /// Returns, per operation, the count and the p50, p99, p99.9 and maximum time
    /// from a frame's start to its response, in microseconds.
    pub fn latency_figures(&self) -> Vec<Figure> {
        let latency_us = self.latency_us.lock();
        let mut names: Vec<&&str> = latency_us.keys().collect();
        names.sort();
        let mut figures = Vec::new();
        for name in names {
            let histogram = &latency_us[*name];
            for (suffix, value) in [
                ("count", histogram.len()),
                ("p50", histogram.value_at_quantile(0.5)),
                ("p99", histogram.value_at_quantile(0.99)),
                ("p999", histogram.value_at_quantile(0.999)),
                ("max", histogram.max()),
            ] {
                figures.push(Figure { name: format!("latency_us.{name}.{suffix}"), value });
            }
        }
        figures
    }

    /// Runs one request.
    pub fn execute(&self, request: &ArchivedRequest, role: Role, now_ms: u64) -> Response {
        if let Err(limit) = check_limits(request) {
            return error(ErrorCode::LimitExceeded, limit.to_string());
        }
        let needed = required_role(request);
        if !allows(role, needed) {
            return error(
                ErrorCode::Forbidden,
                format!("this request needs the {} role; the token has the {} role", needed.name(), role.name()),
            );
        }
        let engine = &*self.engine;
        match request {
            ArchivedRequest::Hello { .. } => error(ErrorCode::Malformed, "hello is only the first request"),
            ArchivedRequest::Ping => Response::Pong { now_ms: engine.now_ms().max(now_ms) },
            ArchivedRequest::UpsertLocations { locations } => {
                let specs = locations
                    .iter()
                    .enumerate()
                    .map(|(index, row)| location_spec(index, row, Default::default()))
                    .collect::<Result<Vec<_>, _>>();
                match specs {
                    Ok(specs) => upserted_locations(engine, &specs),
                    Err(response) => response,
                }
            }
            ArchivedRequest::UpsertLocationsWithRouting { locations } => {
                let specs = locations
                    .iter()
                    .enumerate()
                    .map(|(index, row)| location_spec(index, &row.location, location_routing(&row.routing)))
                    .collect::<Result<Vec<_>, _>>();
                match specs {
                    Ok(specs) => upserted_locations(engine, &specs),
                    Err(response) => response,
                }
            }
            ArchivedRequest::UpsertChannel { code, may_sell_safety_stock, locations } => {
                let spec = ChannelSpec {
                    code: code.to_string(),
                    may_sell_safety_stock: *may_sell_safety_stock,
                    locations: locations
                        .as_ref()
                        .map(|codes| codes.iter().map(|location| location.to_string()).collect()),
                };
                match engine.upsert_channel_spec(&spec) {
                    Ok(new) => Response::Upserted { created: u32::from(new), replaced: u32::from(!new) },
                    Err(ChannelError::Code(failure)) => code_error(&failure),
                    Err(failure @ ChannelError::UnknownLocation { .. }) => {
                        error(ErrorCode::NotFound, failure.to_string())
                    }
                    Err(ChannelError::Log(failure)) => log_error(&failure),
                    Err(failure) => error(ErrorCode::Internal, failure.to_string()),
                }
            }
            ArchivedRequest::UpsertPostalCodes { rows } => match engine.upsert_postal_codes(&postal_rows(rows)) {
                Ok(rows_in_table) => Response::PostalCodesUpserted { rows_in_table: rows_in_table as u64 },
                Err(failure) => postal_error(&failure),
            },
            ArchivedRequest::Quote { order } => {
                let request = match quote_request(order) {
                    Ok(request) => request,
                    Err(response) => return response,
                };
                match engine.quote(&request, now_ms) {
                    Ok(plan) => Response::Quoted(Box::new(wire_plan(plan))),
                    Err(failure) => route_error(&failure),
                }
            }
            ArchivedRequest::ReserveRouted { reservation_id, ttl_ms, order } => {
                let request = match routed_reserve_request(reservation_id.as_str(), ttl_ms.to_native(), order) {
                    Ok(request) => request,
                    Err(response) => return response,
                };
                match engine.reserve_routed(&request, now_ms) {
                    Ok(outcome) => Response::ReservedRouted(Box::new(wire_outcome(outcome))),
                    Err(failure) => route_error(&failure),
                }
            }
            ArchivedRequest::SetOnHand { sku, location, on_hand } => {
                stock_changed(engine.set_on_hand(sku.as_str(), location.as_str(), on_hand.to_native(), now_ms))
            }
            ArchivedRequest::SetSafetyStock { sku, location, units } => {
                stock_changed(engine.set_safety_stock(sku.as_str(), location.as_str(), units.to_native(), now_ms))
            }
            ArchivedRequest::AdjustOnHand { sku, location, delta, reason, op_id } => {
                let reason = match reason {
                    0 => AdjustReason::Receipt,
                    1 => AdjustReason::Damage,
                    2 => AdjustReason::Correction,
                    3 => AdjustReason::Return,
                    other => {
                        return error(
                            ErrorCode::InvalidArgument,
                            format!(
                                "reason {other} is not known; expected 0 receipt, 1 damage, 2 correction, 3 return"
                            ),
                        );
                    }
                };
                let request = AdjustRequest {
                    sku: sku.to_string(),
                    location: location.to_string(),
                    delta: delta.to_native(),
                    reason,
                    op_id: op_id.to_string(),
                };
                stock_changed(engine.adjust_on_hand(&request, now_ms))
            }
            ArchivedRequest::ImportRows { import_id, first_line, rows } => {
                let mut imports = self.imports.lock();
                if !imports.contains_key(import_id.as_str()) && imports.len() >= STAGED_IMPORTS_MAX {
                    return error(
                        ErrorCode::LimitExceeded,
                        format!(
                            "{} imports are staged, the limit staged_imports_max = {STAGED_IMPORTS_MAX}",
                            imports.len()
                        ),
                    );
                }
                let staged = imports.entry(import_id.to_string()).or_default();
                if staged.rows.len() + rows.len() > STAGED_ROWS_MAX {
                    return error(
                        ErrorCode::LimitExceeded,
                        format!(
                            "import {} would stage {} rows, over the limit staged_rows_max = {STAGED_ROWS_MAX}",
                            import_id.as_str(),
                            staged.rows.len() + rows.len()
                        ),
                    );
                }
                for (offset, row) in rows.iter().enumerate() {
                    staged.rows.push(PositionRow {
                        sku: row.sku.to_string(),
                        location: row.location.to_string(),
                        on_hand: row.on_hand.to_native(),
                        safety_stock: row.safety_stock.as_ref().map(|units| units.to_native()),
                    });
                    staged.lines.push(first_line.to_native() + offset as u64);
                }
                Response::ImportStaged { rows_staged: staged.rows.len() as u64 }
            }
            ArchivedRequest::ImportCommit { import_id } => {
                let Some(staged) = self.imports.lock().remove(import_id.as_str()) else {
                    return error(ErrorCode::NotFound, format!("import {} has no staged rows", import_id.as_str()));
                };
                match engine.load_positions(&staged.rows, now_ms) {
                    Ok(summary) => Response::ImportCommitted {
                        rows: summary.rows as u64,
                        positions_created: summary.positions_created as u64,
                    },
                    Err(LoadError::InvalidRows { rows }) => {
                        let listed: Vec<String> = rows
                            .iter()
                            .take(BAD_ROWS_LISTED_MAX)
                            .map(|(index, failure)| format!("line {}: {failure}", staged.lines[*index]))
                            .collect();
                        error(
                            ErrorCode::InvalidArgument,
                            format!(
                                "import {} rejected, nothing applied: {} bad {}; {}",
                                import_id.as_str(),
                                rows.len(),
                                if rows.len() == 1 { "row" } else { "rows" },
                                listed.join("; ")
                            ),
                        )
                    }
                    Err(LoadError::Log(failure)) => log_error(&failure),
                    Err(failure) => error(ErrorCode::Internal, failure.to_string()),
                }
            }
            ArchivedRequest::ImportAbort { import_id } => match self.imports.lock().remove(import_id.as_str()) {
                Some(staged) => Response::ImportAborted { rows_dropped: staged.rows.len() as u64 },
                None => error(ErrorCode::NotFound, format!("import {} has no staged rows", import_id.as_str())),
            },
            ArchivedRequest::Availability { sku, location, channel } => {
                let channel = channel.as_ref().map(|name| name.as_str());
                match engine.availability(sku.as_str(), location.as_str(), channel, now_ms) {
                    Ok(read) => Response::Availability(position(&read)),
                    Err(failure) => availability_error(&failure),
                }
            }
            ArchivedRequest::AvailabilityMany { skus, locations, channel, per_location } => {
                let channel = channel.as_ref().map(|name| name.as_str());
                let skus: Vec<&str> = skus.iter().map(|sku| sku.as_str()).collect();
                let locations: Vec<&str> = locations.iter().map(|location| location.as_str()).collect();
                let filter = if locations.is_empty() { LocationFilter::All } else { LocationFilter::Only(&locations) };
                match engine.availability_batch(&skus, filter, channel, *per_location, now_ms) {
                    Ok(results) => Response::AvailabilityMany(
                        skus.iter()
                            .zip(results)
                            .map(|(sku, result)| match result {
                                Ok(read) => SkuAvailability {
                                    sku: (*sku).to_owned(),
                                    known: true,
                                    locations: read
                                        .locations
                                        .iter()
                                        .map(|entry| LocationAvailability {
                                            location: entry.location.to_owned(),
                                            availability: position(&entry.availability),
                                        })
                                        .collect(),
                                    total_atp: read.total_atp.max(0) as u64,
                                },
                                Err(_) => SkuAvailability {
                                    sku: (*sku).to_owned(),
                                    known: false,
                                    locations: Vec::new(),
                                    total_atp: 0,
                                },
                            })
                            .collect(),
                    ),
                    Err(failure) => availability_error(&failure),
                }
            }
            ArchivedRequest::Reserve { reservation_id, channel, lines, partial, ttl_ms } => {
                let policy = if *partial { Policy::Partial } else { Policy::AllOrNothing };
                let request =
                    reserve_request(reservation_id.as_str(), channel.as_deref(), lines, policy, ttl_ms.to_native());
                reserved(engine.reserve(&request, now_ms))
            }
            ArchivedRequest::ReserveWithPolicy { reservation_id, channel, lines, policy, ttl_ms } => {
                let policy = match reserve_policy(*policy) {
                    Ok(policy) => policy,
                    Err(response) => return response,
                };
                let request =
                    reserve_request(reservation_id.as_str(), channel.as_deref(), lines, policy, ttl_ms.to_native());
                reserved(engine.reserve(&request, now_ms))
            }
            ArchivedRequest::AddSupply { receipt_id, sku, location, quantity, arrival_ms } => {
                let request = SupplyRequest {
                    receipt_id: receipt_id.to_string(),
                    sku: sku.to_string(),
                    location: location.to_string(),
                    quantity: quantity.to_native(),
                    arrival_ms: arrival_ms.to_native(),
                };
                supply_changed(engine.add_supply(&request, now_ms))
            }
            ArchivedRequest::MoveSupply { receipt_id, arrival_ms } => {
                supply_changed(engine.move_supply(receipt_id.as_str(), arrival_ms.to_native(), now_ms))
            }
            ArchivedRequest::CancelSupply { receipt_id } => {
                supply_changed(engine.cancel_supply(receipt_id.as_str(), now_ms))
            }
            ArchivedRequest::AvailabilityBy { sku, location, channel, by_ms } => {
                let (sku, location, channel) = (sku.as_str(), location.as_str(), channel.as_deref());
                availability_by(engine.availability_by(sku, location, channel, by_ms.to_native(), now_ms))
            }
            ArchivedRequest::EarliestAvailable { sku, location, channel, quantity } => {
                let (sku, location, channel) = (sku.as_str(), location.as_str(), channel.as_deref());
                let earliest = engine.earliest_available(sku, location, channel, quantity.to_native(), now_ms);
                earliest_available(earliest, engine.now_ms().max(now_ms))
            }
            ArchivedRequest::Confirm { reservation_id, op_id, units } => {
                let request = ConfirmRequest {
                    reservation_id: reservation_id.to_string(),
                    op_id: op_id.to_string(),
                    units: engine_units(units),
                };
                operated(engine.confirm(&request, now_ms))
            }
            ArchivedRequest::Release { reservation_id, op_id, units, from } => {
                let from = match from {
                    0 => ReleaseFrom::HeldFirst,
                    1 => ReleaseFrom::Held,
                    2 => ReleaseFrom::Allocated,
                    other => {
                        return error(
                            ErrorCode::InvalidArgument,
                            format!("from {other} is not known; expected 0 held first, 1 held, 2 allocated"),
                        );
                    }
                };
                let request = ReleaseRequest {
                    reservation_id: reservation_id.to_string(),
                    op_id: op_id.to_string(),
                    units: engine_units(units),
                    from,
                };
                operated(engine.release(&request, now_ms))
            }
            ArchivedRequest::Fulfil { reservation_id, op_id, units } => {
                let request = FulfilRequest {
                    reservation_id: reservation_id.to_string(),
                    op_id: op_id.to_string(),
                    units: engine_units(units),
                };
                operated(engine.fulfil(&request, now_ms))
            }
            ArchivedRequest::Extend { reservation_id, op_id, deadline_ms } => {
                let request = ExtendRequest {
                    reservation_id: reservation_id.to_string(),
                    op_id: op_id.to_string(),
                    deadline_ms: deadline_ms.to_native(),
                };
                operated(engine.extend(&request, now_ms))
            }
            ArchivedRequest::Get { reservation_id } => {
                Response::Reservation(engine.get(reservation_id.as_str(), now_ms).map(|view| {
                    ReservationView {
                        id: view.id,
                        channel: view.channel,
                        partial: view.policy == Policy::Partial,
                        policy: view.policy as u8,
                        state: view.state as u8,
                        deadline_ms: view.deadline_ms,
                        created_ms: view.created_ms,
                        ended_ms: view.ended_ms,
                        lines: view
                            .lines
                            .into_iter()
                            .map(|line| LineView {
                                sku: line.sku,
                                location: line.location,
                                status: line.status.code(),
                                requested: u64::from(line.requested),
                                held: u64::from(line.held),
                                allocated: u64::from(line.allocated),
                                fulfilled: u64::from(line.fulfilled),
                                released: u64::from(line.released),
                            })
                            .collect(),
                    }
                }))
            }
            ArchivedRequest::Stats => {
                let mut figures = engine_figures(engine);
                figures.extend(self.latency_figures());
                Response::Stats(figures)
            }
        }
    }
}

/// Returns the server process's resident memory in bytes, from the `VmRSS` line of
/// `/proc/self/status` (Linux); `None` elsewhere.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.trim_start_matches("VmRSS:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// Returns the engine's counters as named figures.
pub fn engine_figures(engine: &Engine) -> Vec<Figure> {
    let stats = engine.stats();
    let mut figures = vec![
        ("skus", stats.skus),
        ("locations", stats.locations),
        ("channels", stats.channels),
        ("positions", stats.positions),
        ("positions_in_shortage", stats.positions_in_shortage),
        ("oversold", stats.oversold),
        ("open_reservations", stats.open_reservations),
        ("ended_reservations_kept", stats.ended_reservations_kept),
        ("forgotten_by_retention", stats.forgotten_by_retention),
        ("forgotten_by_bound", stats.forgotten_by_bound),
        ("retention_achieved_ms", stats.retention_achieved_ms),
        ("holds_expired", stats.holds_expired),
        ("adjustment_ids_kept", stats.adjustment_ids_kept),
    ];
    if let Some(resident_bytes) = resident_bytes() {
        figures.push(("process.resident_bytes", resident_bytes));
    }
    if let Some(log) = engine.log_stats() {
        figures.extend([
            ("log.records", log.records),
            ("log.groups", log.groups),
            ("log.bytes", log.bytes),
            ("log.fsync_us_p50", log.sync_us_p50),
            ("log.fsync_us_p99", log.sync_us_p99),
        ]);
    }
    if let Some(snapshot) = engine.last_snapshot() {
        figures.extend([
            ("snapshot.size_bytes", snapshot.size_bytes),
            ("snapshot.elapsed_ms", snapshot.elapsed.as_millis() as u64),
            ("snapshot.longest_lock_hold_us", snapshot.longest_lock_hold.as_micros() as u64),
            ("snapshot.start_lsn", snapshot.start_lsn),
        ]);
    }
    figures.into_iter().map(|(name, value)| Figure { name: name.to_owned(), value }).collect()
}

/// Upserts locations whose rows were all converted; the engine checks every row before
/// any applies.
fn upserted_locations(engine: &Engine, specs: &[promesa_engine::LocationSpec]) -> Response {
    match engine.upsert_locations(specs) {
        Ok((created, replaced)) => Response::Upserted { created, replaced },
        Err((index, failure)) => location_error(index, &failure),
    }
}

fn position(read: &promesa_engine::PositionAvailability) -> PositionAvailability {
    PositionAvailability {
        on_hand: u64::from(read.on_hand),
        reserved: u64::from(read.reserved),
        allocated: u64::from(read.allocated),
        safety_stock: u64::from(read.safety_stock),
        atp: read.atp,
        in_shortage: read.in_shortage,
    }
}

fn engine_units(units: &ArchivedUnits) -> Units {
    match units {
        ArchivedUnits::All => Units::All,
        ArchivedUnits::Lines(lines) => Units::Lines(
            lines
                .iter()
                .map(|line| LineQuantity { line: line.line.to_native(), quantity: line.quantity.to_native() })
                .collect(),
        ),
    }
}

/// Builds the engine's reserve request from the fields of a wire reserve.
fn reserve_request(
    reservation_id: &str,
    channel: Option<&str>,
    lines: &[ArchivedReserveLine],
    policy: Policy,
    ttl_ms: u64,
) -> ReserveRequest {
    ReserveRequest {
        reservation_id: reservation_id.to_owned(),
        channel: channel.map(str::to_owned),
        lines: lines
            .iter()
            .map(|line| promesa_engine::ReserveLine {
                sku: line.sku.to_string(),
                location: line.location.to_string(),
                quantity: line.quantity.to_native(),
            })
            .collect(),
        policy,
        ttl_ms,
    }
}

fn reserved(result: Result<promesa_engine::ReserveOutcome, ReserveError>) -> Response {
    match result {
        Ok(outcome) => Response::Reserved {
            replayed: outcome.replayed,
            deadline_ms: outcome.deadline_ms,
            lines: outcome
                .lines
                .iter()
                .map(|line| LineOutcome {
                    status: line.status.code(),
                    requested: u64::from(line.requested),
                    held: u64::from(line.held),
                })
                .collect(),
        },
        Err(failure) => reserve_error(&failure),
    }
}

fn stock_changed(result: Result<promesa_engine::StockChange, StockError>) -> Response {
    match result {
        Ok(change) => Response::StockChanged {
            previous: u64::from(change.previous),
            current: u64::from(change.on_hand),
            in_shortage: change.in_shortage,
            replayed: change.replayed,
        },
        Err(failure) => stock_error(&failure),
    }
}

fn operated(result: Result<promesa_engine::OperationOutcome, ReservationError>) -> Response {
    match result {
        Ok(outcome) => Response::Operated {
            replayed: outcome.replayed,
            moved: outcome.moved.iter().map(|&units| u64::from(units)).collect(),
            state: outcome.state as u8,
            deadline_ms: outcome.deadline_ms,
        },
        Err(failure) => reservation_error(&failure),
    }
}

fn log_error(failure: &LogError) -> Response {
    error(ErrorCode::Unavailable, failure.to_string())
}

pub(crate) fn code_error(failure: &CodeError) -> Response {
    let code = if matches!(failure, CodeError::TooMany { .. }) {
        ErrorCode::LimitExceeded
    } else {
        ErrorCode::InvalidArgument
    };
    error(code, failure.to_string())
}

fn location_error(index: usize, failure: &LocationError) -> Response {
    let code = match failure {
        LocationError::Log(_) => ErrorCode::Unavailable,
        LocationError::TooManyLocations => ErrorCode::LimitExceeded,
        _ => ErrorCode::InvalidArgument,
    };
    error(code, format!("locations[{index}]: {failure}"))
}

pub(crate) fn stock_error(failure: &StockError) -> Response {
    let code = match failure {
        StockError::UnknownLocation { .. } | StockError::UnknownPosition { .. } => ErrorCode::NotFound,
        StockError::BelowZero { .. } => ErrorCode::Conflict,
        StockError::OperationIdReused { .. } => ErrorCode::IdReused,
        StockError::TooManySkus | StockError::TooManyPositions | StockError::TooManyRows { .. } => {
            ErrorCode::LimitExceeded
        }
        StockError::Log(_) => ErrorCode::Unavailable,
        _ => ErrorCode::InvalidArgument,
    };
    error(code, failure.to_string())
}

fn availability_error(failure: &AvailabilityError) -> Response {
    let code = match failure {
        AvailabilityError::UnknownSku { .. }
        | AvailabilityError::UnknownLocation { .. }
        | AvailabilityError::UnknownChannel { .. } => ErrorCode::NotFound,
        _ => ErrorCode::LimitExceeded,
    };
    error(code, failure.to_string())
}

pub(crate) fn reserve_error(failure: &ReserveError) -> Response {
    let code = match failure {
        ReserveError::UnknownChannel { .. } => ErrorCode::NotFound,
        ReserveError::IdReusedWithDifferentContent { .. } => ErrorCode::IdReused,
        ReserveError::TooManyLines { .. } => ErrorCode::LimitExceeded,
        ReserveError::Log(_) => ErrorCode::Unavailable,
        _ => ErrorCode::InvalidArgument,
    };
    error(code, failure.to_string())
}

fn reservation_error(failure: &ReservationError) -> Response {
    let code = match failure {
        ReservationError::UnknownReservation { .. } => ErrorCode::NotFound,
        ReservationError::OperationIdReused { .. } => ErrorCode::IdReused,
        ReservationError::QuantityExceeds { .. }
        | ReservationError::NothingToChange { .. }
        | ReservationError::Expired { .. }
        | ReservationError::NotOnHand { .. }
        | ReservationError::Backordered { .. }
        | ReservationError::DeadlineNotLater { .. } => ErrorCode::Conflict,
        ReservationError::Log(_) => ErrorCode::Unavailable,
        _ => ErrorCode::InvalidArgument,
    };
    error(code, failure.to_string())
}

/// Encodes requests as a frame payload, for tests that drive the executor without a network.
pub fn encode_requests(requests: Vec<Request>) -> promesa_protocol::Payload {
    let frame = promesa_protocol::ClientFrame {
        requests: requests
            .into_iter()
            .enumerate()
            .map(|(id, request)| promesa_protocol::RequestEnvelope { id: id as u64, request })
            .collect(),
    };
    let bytes = promesa_protocol::frame::encode_client_frame(&frame);
    promesa_protocol::frame::payload_from(&bytes[promesa_protocol::frame::LENGTH_PREFIX_BYTES..])
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use promesa_engine::wal::scan::ScanOptions;
    use promesa_engine::wal::sim::SimStorage;
    use promesa_engine::wal::writer::LogConfig;
    use promesa_engine::{Engine, EngineConfig};
    use promesa_protocol::frame::access_client_frame;
    use promesa_protocol::{
        Destination, LocationRow, Request, ReserveLine, Response, Role, RouteLine, RouteMethod, RouteOrder,
        SupplyOutcome,
    };

    use super::{Executor, encode_requests};

    fn executor() -> Executor {
        let storage = Arc::new(SimStorage::new());
        let (engine, _) =
            Engine::open(EngineConfig::default(), storage, LogConfig::default(), ScanOptions::default(), 1_000)
                .unwrap();
        Executor::new(Arc::new(engine))
    }

    /// Upserts location L0 with 5 units of SKU S; returns the LSN the frame waits for.
    fn stock_one_position(executor: &Executor) -> u64 {
        let location =
            LocationRow { code: "L0".into(), kind: 0, lat: 0.0, lon: 0.0, methods: 1, daily_capacity: 0, active: true };
        let setup = encode_requests(vec![
            Request::UpsertLocations { locations: vec![location] },
            Request::SetOnHand { sku: "S".into(), location: "L0".into(), on_hand: 5 },
        ]);
        executor.execute_frame(access_client_frame(&setup).unwrap(), Role::Admin).1
    }

    #[test]
    fn frame_waits_only_for_changes() {
        let executor = executor();
        let setup_lsn = stock_one_position(&executor);
        assert!(setup_lsn > 0, "a frame of changes waits for the log");

        let reads = encode_requests(vec![
            Request::Ping,
            Request::Availability { sku: "S".into(), location: "L0".into(), channel: None },
            Request::Stats,
        ]);
        let (answer, reads_lsn) = executor.execute_frame(access_client_frame(&reads).unwrap(), Role::Read);
        assert_eq!(reads_lsn, 0, "a frame of reads is answered at once");
        assert!(matches!(answer.responses[1].response, Response::Availability(_)));

        let mixed = encode_requests(vec![
            Request::Availability { sku: "S".into(), location: "L0".into(), channel: None },
            Request::Reserve {
                reservation_id: "order-1".into(),
                channel: None,
                lines: vec![ReserveLine { sku: "S".into(), location: "L0".into(), quantity: 2 }],
                partial: false,
                ttl_ms: 60_000,
            },
        ]);
        let (_, mixed_lsn) = executor.execute_frame(access_client_frame(&mixed).unwrap(), Role::Reserve);
        assert!(mixed_lsn > setup_lsn, "a frame with a reserve waits for the reserve's record");
    }

    #[test]
    fn quotes_answer_at_once_and_routed_reserves_wait() {
        let executor = executor();
        let setup_lsn = stock_one_position(&executor);

        let order = RouteOrder {
            channel: None,
            destination: Destination::Point { lat: 0.1, lon: 0.1 },
            lines: vec![RouteLine { sku: "S".into(), quantity: 2 }],
            method: RouteMethod::ShipCheapest,
            max_shipments: 1,
            allow_partial: false,
            allow_backorder: false,
        };
        let quote = encode_requests(vec![Request::Quote { order: order.clone() }]);
        let (answer, quote_lsn) = executor.execute_frame(access_client_frame(&quote).unwrap(), Role::Read);
        assert_eq!(quote_lsn, 0, "a frame of quotes is answered at once");
        let Response::Quoted(plan) = &answer.responses[0].response else { panic!("{answer:?}") };
        assert_eq!(plan.shipments[0].location, "L0");

        let reserve =
            encode_requests(vec![Request::ReserveRouted { reservation_id: "order-1".into(), ttl_ms: 60_000, order }]);
        let (answer, reserve_lsn) = executor.execute_frame(access_client_frame(&reserve).unwrap(), Role::Reserve);
        assert!(reserve_lsn > setup_lsn, "a routed reserve waits for its record");
        assert!(matches!(&answer.responses[0].response, Response::ReservedRouted(outcome) if outcome.held));
    }

    #[test]
    fn supply_reads_answer_at_once_and_changes_wait() {
        let executor = executor();
        let location =
            LocationRow { code: "L0".into(), kind: 0, lat: 0.0, lon: 0.0, methods: 1, daily_capacity: 0, active: true };
        let setup = encode_requests(vec![
            Request::UpsertLocations { locations: vec![location] },
            Request::AddSupply {
                receipt_id: "po-1".into(),
                sku: "S".into(),
                location: "L0".into(),
                quantity: 50,
                arrival_ms: 10_000,
            },
        ]);
        let (answer, setup_lsn) = executor.execute_frame(access_client_frame(&setup).unwrap(), Role::Admin);
        assert!(setup_lsn > 0, "a frame that adds supply waits for the log");
        let expected = SupplyOutcome { replayed: false, inbound: 50, backordered: 0 };
        assert_eq!(answer.responses[1].response, Response::SupplyChanged(expected));

        let reads = encode_requests(vec![
            Request::AvailabilityBy { sku: "S".into(), location: "L0".into(), channel: None, by_ms: 10_000 },
            Request::EarliestAvailable { sku: "S".into(), location: "L0".into(), channel: None, quantity: 20 },
        ]);
        let (answer, reads_lsn) = executor.execute_frame(access_client_frame(&reads).unwrap(), Role::Read);
        assert_eq!(reads_lsn, 0, "a frame of supply reads is answered at once");
        let Response::AvailabilityBy(read) = &answer.responses[0].response else { panic!("{answer:?}") };
        assert_eq!((read.atp, read.inbound_by, read.available), (0, 50, 50));
        let Response::EarliestAvailable { at_ms } = answer.responses[1].response else { panic!("{answer:?}") };
        assert!(at_ms.is_some_and(|at_ms| at_ms >= 10_000), "{answer:?}");

        let backorder = encode_requests(vec![Request::ReserveWithPolicy {
            reservation_id: "order-1".into(),
            channel: None,
            lines: vec![ReserveLine { sku: "S".into(), location: "L0".into(), quantity: 20 }],
            policy: 2,
            ttl_ms: 60_000,
        }]);
        let (answer, backorder_lsn) = executor.execute_frame(access_client_frame(&backorder).unwrap(), Role::Reserve);
        assert!(backorder_lsn > setup_lsn, "a backorder waits for its record");
        let Response::Reserved { lines, .. } = &answer.responses[0].response else { panic!("{answer:?}") };
        assert_eq!((lines[0].status, lines[0].held), (7, 20), "line status 7 is backordered");
    }

    #[test]
    fn execute_rejects_insufficient_role() {
        let executor = executor();
        let frame = encode_requests(vec![Request::SetOnHand { sku: "S".into(), location: "L0".into(), on_hand: 5 }]);
        let (answer, lsn) = executor.execute_frame(access_client_frame(&frame).unwrap(), Role::Reserve);
        assert_eq!(lsn, 0);
        let Response::Error { code, message } = &answer.responses[0].response else { panic!("{answer:?}") };
        assert_eq!(*code, promesa_protocol::ErrorCode::Forbidden.number());
        assert_eq!(message, "this request needs the admin role; the token has the reserve role");
    }
}
