//! Runs commands: reads a command's input files before connecting, then sends its
//! requests and turns the responses into a report.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use promesa_client::{Client, ReserveOutcome};
use promesa_protocol::limits::{POSTAL_ROWS_PER_REQUEST_MAX, ROWS_PER_REQUEST_MAX};
use promesa_protocol::{
    Destination, ErrorCode, LocationWithRouting, POLICY_BACKORDER, POLICY_NAMES, PostalCodeRow, Request, ReserveLine,
    Response, RouteLine, RouteMethod, RouteOrder, StockRow, Units,
};

use crate::args::{
    ChannelCommand, Command, LocationCommand, MAX_SHIPMENTS_DEFAULT, NewDeadline, OperationArguments, PostalCommand,
    ReserveArguments, RouteArguments, StockCommand,
};
use crate::connection::call;
use crate::csv_import::{Rows, batches, read_locations, read_postal_codes, read_stock};
use crate::errors::Failure;
use crate::output::{
    AtpLocation, AtpReport, ChannelReport, LocationImportReport, OperatedReport, PingReport, PlanReport,
    PostalImportReport, ReservationLine, ReservationReport, ReserveReport, ReservedLine, RoutedReserveReport,
    StatsReport, StockImportReport, StockReport, render,
};
use crate::supply::{availability_by, change_supply, earliest_available};

/// A command with its input files read and its arguments checked.
pub(crate) enum Prepared {
    Command(Command),
    Locations { path: PathBuf, read: Rows<LocationWithRouting> },
    Stock { path: PathBuf, read: Rows<StockRow> },
    PostalCodes { path: PathBuf, read: Rows<PostalCodeRow> },
    Quote(RouteOrder),
    Reserve(PlainReserve),
    ReserveRouted { reservation_id: String, ttl_ms: u64, order: RouteOrder },
}

/// A reserve of units at the locations its lines name.
pub(crate) struct PlainReserve {
    id: String,
    lines: Vec<ReserveLine>,
    ttl_ms: u64,
    partial: bool,
    backorder: bool,
    channel: Option<String>,
}

pub(crate) fn prepare(command: Command) -> Result<Prepared, Failure> {
    match command {
        Command::Location(LocationCommand::Import { file }) => {
            let read = read_locations(&file)?;
            if read.rows.is_empty() {
                return Err(Failure::new("invalid_csv", format!("{} has no rows to import", file.display())));
            }
            Ok(Prepared::Locations { path: file, read })
        }
        Command::Stock(StockCommand::Import { file }) => {
            let read = read_stock(&file)?;
            if read.rows.is_empty() {
                return Err(Failure::new("invalid_csv", format!("{} has no rows to import", file.display())));
            }
            Ok(Prepared::Stock { path: file, read })
        }
        Command::Postal(PostalCommand::Import { file }) => {
            let read = read_postal_codes(&file)?;
            if read.rows.is_empty() {
                return Err(Failure::new("invalid_csv", format!("{} has no rows to import", file.display())));
            }
            Ok(Prepared::PostalCodes { path: file, read })
        }
        Command::Quote(arguments) => {
            let destination = arguments
                .route
                .destination()
                .ok_or_else(|| Failure::usage("quote needs a destination: pass --to LAT,LON or --to-postal CC:CODE"))?;
            let policy = (arguments.partial, arguments.backorder);
            Ok(Prepared::Quote(route_order(destination, arguments.route, arguments.lines, policy, arguments.channel)))
        }
        Command::Reserve(arguments) => prepare_reserve(arguments),
        Command::Atp { locations, by, quantity, .. }
            if (by.is_some() || quantity.is_some()) && locations.len() != 1 =>
        {
            let flag = if by.is_some() { "--by" } else { "--quantity" };
            Err(Failure::usage(format!(
                "{flag} reads one location; give exactly one --location LOC, not {}",
                locations.len()
            )))
        }
        other => Ok(Prepared::Command(other)),
    }
}

/// Builds a routed order; `(partial, backorder)` are the order's fill policy.
fn route_order(
    destination: Destination,
    route: RouteArguments,
    lines: Vec<RouteLine>,
    (partial, backorder): (bool, bool),
    channel: Option<String>,
) -> RouteOrder {
    RouteOrder {
        channel,
        destination,
        lines,
        method: route.method.unwrap_or(RouteMethod::ShipCheapest),
        max_shipments: route.max_shipments.unwrap_or(MAX_SHIPMENTS_DEFAULT),
        allow_partial: partial,
        allow_backorder: backorder,
    }
}

/// Decides between a plain reserve (every line SKU@LOC=QTY, no destination) and a
/// routed one (every line SKU=QTY, with --to or --to-postal), and rejects a mix.
fn prepare_reserve(arguments: ReserveArguments) -> Result<Prepared, Failure> {
    let routed = arguments.route.destination().is_some();
    if arguments.backorder && arguments.partial && !routed {
        return Err(Failure::usage(
            "--backorder and --partial are different policies: --backorder holds every line in full or \
             backorders it, --partial holds what is available; give one of them",
        ));
    }
    let located: Vec<Option<ReserveLine>> = arguments.lines.iter().map(|line| line.located()).collect();
    let first_located = arguments.lines.iter().zip(&located).find(|(_, located)| located.is_some());
    let first_routed = arguments.lines.iter().zip(&located).find(|(_, located)| located.is_none());

    if let (Some((with_location, _)), Some((without_location, _))) = (first_located, first_routed) {
        return Err(Failure::usage(format!(
            "--line {} names a location and --line {} does not; give every line as SKU@LOC=QTY for a plain \
             reserve, or every line as SKU=QTY with --to or --to-postal for a routed one",
            with_location.text, without_location.text
        )));
    }
    if let Some(destination) = arguments.route.destination() {
        if let Some((line, _)) = first_located {
            return Err(Failure::usage(format!(
                "--line {} names a location, but --to or --to-postal routes the order; give every line as SKU=QTY",
                line.text
            )));
        }
        let lines =
            arguments.lines.into_iter().map(|line| RouteLine { sku: line.item, quantity: line.quantity }).collect();
        let policy = (arguments.partial, arguments.backorder);
        let order = route_order(destination, arguments.route, lines, policy, arguments.channel);
        return Ok(Prepared::ReserveRouted { reservation_id: arguments.id, ttl_ms: arguments.ttl, order });
    }

    if let Some((line, _)) = first_routed {
        return Err(Failure::usage(format!(
            "--line {} names no location; give SKU@LOC=QTY, or route the order with --to LAT,LON or \
             --to-postal CC:CODE",
            line.text
        )));
    }
    let routing_flag = match (&arguments.route.method, &arguments.route.max_shipments) {
        (Some(_), _) => Some("--method"),
        (None, Some(_)) => Some("--max-shipments"),
        (None, None) => None,
    };
    if let Some(flag) = routing_flag {
        return Err(Failure::usage(format!(
            "{flag} applies to a routed order; pass --to LAT,LON or --to-postal CC:CODE with lines as SKU=QTY"
        )));
    }
    Ok(Prepared::Reserve(PlainReserve {
        id: arguments.id,
        lines: located.into_iter().flatten().collect(),
        ttl_ms: arguments.ttl,
        partial: arguments.partial,
        backorder: arguments.backorder,
        channel: arguments.channel,
    }))
}

pub(crate) async fn execute(
    client: &Client,
    addr: SocketAddr,
    prepared: Prepared,
    json: bool,
) -> Result<String, Failure> {
    let command = match prepared {
        Prepared::Locations { path, read } => {
            return import_locations(client, addr, &path, read).await.map(|report| render(&report, json));
        }
        Prepared::Stock { path, read } => {
            return import_stock(client, addr, &path, read).await.map(|report| render(&report, json));
        }
        Prepared::PostalCodes { path, read } => {
            return import_postal_codes(client, addr, &path, read).await.map(|report| render(&report, json));
        }
        Prepared::Quote(order) => {
            let plan = client.quote(order).await.map_err(|error| Failure::client(error, addr))?;
            return Ok(render(&PlanReport::new(plan), json));
        }
        Prepared::Reserve(reserve_request) => {
            return reserve(client, addr, reserve_request).await.map(|report| render(&report, json));
        }
        Prepared::ReserveRouted { reservation_id, ttl_ms, order } => {
            let outcome = client
                .reserve_routed(&reservation_id, ttl_ms, order)
                .await
                .map_err(|error| Failure::client(error, addr))?;
            return Ok(render(&RoutedReserveReport::new(reservation_id, outcome), json));
        }
        Prepared::Command(command) => command,
    };
    match command {
        Command::Ping => ping(client, addr).await.map(|report| render(&report, json)),
        Command::Location(LocationCommand::Import { .. })
        | Command::Stock(StockCommand::Import { .. })
        | Command::Postal(PostalCommand::Import { .. })
        | Command::Quote(_)
        | Command::Reserve(_) => {
            unreachable!("prepare reads import files and routing arguments")
        }
        Command::Stock(stock) => change_stock(client, addr, stock).await.map(|report| render(&report, json)),
        Command::Supply(supply) => change_supply(client, addr, supply).await.map(|report| render(&report, json)),
        Command::Channel(ChannelCommand::Upsert { code, may_sell_safety_stock, locations }) => {
            let created = client
                .upsert_channel(&code, may_sell_safety_stock, locations.clone())
                .await
                .map_err(|error| Failure::client(error, addr))?;
            Ok(render(&ChannelReport { channel: code, may_sell_safety_stock, locations, created }, json))
        }
        Command::Atp { sku, mut locations, channel, by, quantity } => match (by, quantity) {
            (Some(by), _) => {
                let position = (sku, locations.remove(0));
                availability_by(client, addr, position, channel, by).await.map(|report| render(&report, json))
            }
            (None, Some(quantity)) => {
                let position = (sku, locations.remove(0));
                earliest_available(client, addr, position, channel, quantity).await.map(|report| render(&report, json))
            }
            (None, None) => {
                availability(client, addr, sku, locations, channel).await.map(|report| render(&report, json))
            }
        },
        Command::Confirm(operation) => {
            let (op_id, units) = operation_parts(&operation);
            let request = Request::Confirm { reservation_id: operation.id.clone(), op_id: op_id.clone(), units };
            operate(client, addr, "confirm", operation.id, op_id, request).await.map(|report| render(&report, json))
        }
        Command::Release { operation, from } => {
            let (op_id, units) = operation_parts(&operation);
            let request = Request::Release {
                reservation_id: operation.id.clone(),
                op_id: op_id.clone(),
                units,
                from: from.code(),
            };
            operate(client, addr, "release", operation.id, op_id, request).await.map(|report| render(&report, json))
        }
        Command::Fulfil(operation) => {
            let (op_id, units) = operation_parts(&operation);
            let request = Request::Fulfil { reservation_id: operation.id.clone(), op_id: op_id.clone(), units };
            operate(client, addr, "fulfil", operation.id, op_id, request).await.map(|report| render(&report, json))
        }
        Command::Extend { id, deadline, op_id } => {
            let deadline_ms = new_deadline(client, addr, &deadline).await?;
            let op_id = op_id.unwrap_or_else(|| random_id("cli"));
            let request = Request::Extend { reservation_id: id.clone(), op_id: op_id.clone(), deadline_ms };
            operate(client, addr, "extend", id, op_id, request).await.map(|report| render(&report, json))
        }
        Command::Get { id } => get(client, addr, id).await.map(|report| render(&report, json)),
        Command::Stats => {
            let figures = match call(client, addr, Request::Stats).await? {
                Response::Stats(figures) => figures,
                other => return Err(Failure::unexpected("Stats", &other)),
            };
            let report = StatsReport(figures.into_iter().map(|figure| (figure.name, figure.value)).collect());
            Ok(render(&report, json))
        }
    }
}

async fn ping(client: &Client, addr: SocketAddr) -> Result<PingReport, Failure> {
    let started = Instant::now();
    let response = call(client, addr, Request::Ping).await?;
    let round_trip_us = started.elapsed().as_micros() as u64;
    match response {
        Response::Pong { now_ms } => {
            Ok(PingReport { server_now_ms: now_ms, role: client.role().name(), round_trip_us })
        }
        other => Err(Failure::unexpected("Pong", &other)),
    }
}

/// Sends the locations in batches. Each batch is applied on its own, so a failure
/// leaves the batches before it applied.
async fn import_locations(
    client: &Client,
    addr: SocketAddr,
    path: &Path,
    read: Rows<LocationWithRouting>,
) -> Result<LocationImportReport, Failure> {
    let mut report = LocationImportReport { rows: 0, created: 0, replaced: 0 };
    for batch in batches(&read.lines, ROWS_PER_REQUEST_MAX) {
        let lines = &read.lines[batch.clone()];
        let request = Request::UpsertLocationsWithRouting { locations: read.rows[batch.clone()].to_vec() };
        match call(client, addr, request).await {
            Ok(Response::Upserted { created, replaced }) => {
                report.rows += batch.len() as u64;
                report.created += u64::from(created);
                report.replaced += u64::from(replaced);
                eprintln!(
                    "upserted lines {} to {} ({} of {} rows)",
                    lines[0],
                    lines[lines.len() - 1],
                    report.rows,
                    read.rows.len()
                );
            }
            Ok(other) => return Err(Failure::unexpected("Upserted", &other)),
            Err(mut failure) => {
                failure.message = location_failure_message(path, lines, &failure.message);
                return Err(failure);
            }
        }
    }
    Ok(report)
}

/// Names the CSV line of a rejected location, which the server names by its index
/// in the batch (`locations[INDEX]: ...`). The server checks a whole batch before it
/// applies any of it, so only earlier batches were applied.
fn location_failure_message(path: &Path, lines: &[u64], message: &str) -> String {
    let row = message
        .strip_prefix("locations[")
        .and_then(|rest| rest.split_once("]: "))
        .and_then(|(index, reason)| Some((lines.get(index.parse::<usize>().ok()?)?, reason)));
    let (first_line, reason) = match row {
        Some((line, reason)) => (format!("line {line}"), reason),
        None => (format!("lines {} to {}", lines[0], lines[lines.len() - 1]), message),
    };
    let applied = if lines[0] <= 2 {
        "nothing was applied".to_owned()
    } else {
        format!("the rows before line {} were applied", lines[0])
    };
    format!("{} {first_line}: {reason}; {applied}", path.display())
}

/// Sends the postal codes in batches of at most `POSTAL_ROWS_PER_REQUEST_MAX` rows.
/// Each batch is applied all or nothing, so a failure leaves the batches before it
/// applied.
async fn import_postal_codes(
    client: &Client,
    addr: SocketAddr,
    path: &Path,
    read: Rows<PostalCodeRow>,
) -> Result<PostalImportReport, Failure> {
    let mut report = PostalImportReport { rows: 0, rows_in_table: 0 };
    for batch in batches(&read.lines, POSTAL_ROWS_PER_REQUEST_MAX) {
        let lines = &read.lines[batch.clone()];
        match client.upsert_postal_codes(read.rows[batch.clone()].to_vec()).await {
            Ok(rows_in_table) => {
                report.rows += batch.len() as u64;
                report.rows_in_table = rows_in_table;
                eprintln!(
                    "upserted lines {} to {} ({} of {} rows)",
                    lines[0],
                    lines[lines.len() - 1],
                    report.rows,
                    read.rows.len()
                );
            }
            Err(error) => {
                let mut failure = Failure::client(error, addr);
                failure.message = postal_failure_message(path, lines, read.lines[0], &failure.message);
                return Err(failure);
            }
        }
    }
    Ok(report)
}

/// Names the CSV line of a rejected postal code, which the server names by its index
/// in the batch (`rows[INDEX]: ...`), and reports which earlier lines were applied.
fn postal_failure_message(path: &Path, lines: &[u64], first_file_line: u64, message: &str) -> String {
    let applied = if lines[0] == first_file_line {
        "nothing was applied".to_owned()
    } else {
        format!("the rows before line {} were applied", lines[0])
    };
    let row = message
        .strip_prefix("rows[")
        .and_then(|rest| rest.split_once("]: "))
        .and_then(|(index, reason)| Some((lines.get(index.parse::<usize>().ok()?)?, reason)));
    match row {
        Some((line, reason)) => format!("{} line {line}: {reason}; {applied}", path.display()),
        None => format!("{} lines {} to {}: {message}; {applied}", path.display(), lines[0], lines[lines.len() - 1]),
    }
}

/// Stages the rows under a new import id, one request per batch, then commits them.
async fn import_stock(
    client: &Client,
    addr: SocketAddr,
    path: &Path,
    read: Rows<StockRow>,
) -> Result<StockImportReport, Failure> {
    let import_id = random_id("cli-import");
    for batch in batches(&read.lines, ROWS_PER_REQUEST_MAX) {
        let lines = &read.lines[batch.clone()];
        let request = Request::ImportRows {
            import_id: import_id.clone(),
            first_line: lines[0],
            rows: read.rows[batch.clone()].to_vec(),
        };
        let staged = match call(client, addr, request).await {
            Ok(Response::ImportStaged { rows_staged }) => Ok(rows_staged),
            Ok(other) => Err(Failure::unexpected("ImportStaged", &other)),
            Err(failure) => Err(failure),
        };
        let rows_staged = match staged {
            Ok(rows_staged) => rows_staged,
            Err(failure) => {
                // Drop what was staged so far; the server frees the import's slot.
                let _ = call(client, addr, Request::ImportAbort { import_id: import_id.clone() }).await;
                return Err(failure);
            }
        };
        eprintln!(
            "staged lines {} to {} ({rows_staged} of {} rows)",
            lines[0],
            lines[lines.len() - 1],
            read.rows.len()
        );
    }
    match call(client, addr, Request::ImportCommit { import_id: import_id.clone() }).await {
        Ok(Response::ImportCommitted { rows, positions_created }) => {
            Ok(StockImportReport { import_id, rows, positions_created })
        }
        Ok(other) => Err(Failure::unexpected("ImportCommitted", &other)),
        Err(mut failure) => {
            failure.message = format!("{}: {}", path.display(), failure.message);
            Err(failure)
        }
    }
}

async fn change_stock(client: &Client, addr: SocketAddr, command: StockCommand) -> Result<StockReport, Failure> {
    let (position, safety_stock, op_id, request) = match command {
        StockCommand::Set { position, units } => {
            let request =
                Request::SetOnHand { sku: position.sku.clone(), location: position.location.clone(), on_hand: units };
            (position, None, None, request)
        }
        StockCommand::Adjust { position, delta, reason, op_id } => {
            let op_id = op_id.unwrap_or_else(|| random_id("cli"));
            let request = Request::AdjustOnHand {
                sku: position.sku.clone(),
                location: position.location.clone(),
                delta,
                reason: reason.code(),
                op_id: op_id.clone(),
            };
            (position, None, Some(op_id), request)
        }
        StockCommand::Safety { position, units } => {
            let request =
                Request::SetSafetyStock { sku: position.sku.clone(), location: position.location.clone(), units };
            (position, Some(units), None, request)
        }
        StockCommand::Import { .. } => unreachable!("prepare reads import files"),
    };
    match call(client, addr, request).await? {
        Response::StockChanged { previous, current, in_shortage, replayed } => Ok(StockReport {
            sku: position.sku,
            location: position.location,
            previous_on_hand: previous,
            on_hand: current,
            safety_stock,
            in_shortage,
            replayed,
            op_id,
        }),
        other => Err(Failure::unexpected("StockChanged", &other)),
    }
}

/// Reads availability: one location with `Availability`, otherwise the SKU's
/// locations with `AvailabilityMany`.
async fn availability(
    client: &Client,
    addr: SocketAddr,
    sku: String,
    locations: Vec<String>,
    channel: Option<String>,
) -> Result<AtpReport, Failure> {
    let channel_name = channel.clone().unwrap_or_else(|| "default".to_owned());
    if let [location] = locations.as_slice() {
        let request = Request::Availability { sku: sku.clone(), location: location.clone(), channel };
        return match call(client, addr, request).await? {
            Response::Availability(read) => Ok(AtpReport {
                sku,
                channel: channel_name,
                total_atp: read.atp.max(0) as u64,
                locations: vec![AtpLocation::new(location.clone(), &read)],
            }),
            other => Err(Failure::unexpected("Availability", &other)),
        };
    }

    let request = Request::AvailabilityMany { skus: vec![sku.clone()], locations, channel, per_location: true };
    let read = match call(client, addr, request).await? {
        Response::AvailabilityMany(mut skus) if skus.len() == 1 => skus.remove(0),
        other => return Err(Failure::unexpected("AvailabilityMany with one SKU", &other)),
    };
    if !read.known {
        return Err(Failure::server(ErrorCode::NotFound.number(), &format!("SKU {sku} is not known")));
    }
    Ok(AtpReport {
        sku,
        channel: channel_name,
        total_atp: read.total_atp,
        locations: read
            .locations
            .iter()
            .map(|entry| AtpLocation::new(entry.location.clone(), &entry.availability))
            .collect(),
    })
}

/// Sends a plain reserve: `Reserve`, or `ReserveWithPolicy` for the backorder policy,
/// which only that request carries.
async fn reserve(client: &Client, addr: SocketAddr, arguments: PlainReserve) -> Result<ReserveReport, Failure> {
    let ReserveOutcome { replayed, deadline_ms, lines: outcomes } = if arguments.backorder {
        let channel = arguments.channel.as_deref();
        client
            .reserve_with_policy(&arguments.id, channel, arguments.lines.clone(), POLICY_BACKORDER, arguments.ttl_ms)
            .await
            .map_err(|error| Failure::client(error, addr))?
    } else {
        let request = Request::Reserve {
            reservation_id: arguments.id.clone(),
            channel: arguments.channel,
            lines: arguments.lines.clone(),
            partial: arguments.partial,
            ttl_ms: arguments.ttl_ms,
        };
        match call(client, addr, request).await? {
            Response::Reserved { replayed, deadline_ms, lines } => ReserveOutcome { replayed, deadline_ms, lines },
            other => return Err(Failure::unexpected("Reserved", &other)),
        }
    };
    let lines = arguments
        .lines
        .into_iter()
        .zip(outcomes)
        .enumerate()
        .map(|(index, (line, outcome))| ReservedLine {
            line: index as u32,
            sku: line.sku,
            location: line.location,
            status: line_status_name(outcome.status),
            requested: outcome.requested,
            held: outcome.held,
        })
        .collect();
    Ok(ReserveReport { reservation_id: arguments.id, replayed, deadline_ms, lines })
}

fn operation_parts(operation: &OperationArguments) -> (String, Units) {
    let op_id = operation.op_id.clone().unwrap_or_else(|| random_id("cli"));
    let units = if operation.lines.is_empty() { Units::All } else { Units::Lines(operation.lines.clone()) };
    (op_id, units)
}

/// Returns the deadline to request with `extend`. `--by` counts from the server's clock,
/// which decides expiry, rather than from this machine's.
async fn new_deadline(client: &Client, addr: SocketAddr, deadline: &NewDeadline) -> Result<u64, Failure> {
    match (deadline.deadline_ms, deadline.by) {
        (Some(deadline_ms), _) => Ok(deadline_ms),
        (None, Some(by_ms)) => {
            let now_ms = match call(client, addr, Request::Ping).await? {
                Response::Pong { now_ms } => now_ms,
                other => return Err(Failure::unexpected("Pong", &other)),
            };
            now_ms.checked_add(by_ms).ok_or_else(|| Failure::usage("--by is too long"))
        }
        (None, None) => Err(Failure::usage("pass --deadline-ms MS or --by DURATION")),
    }
}

async fn operate(
    client: &Client,
    addr: SocketAddr,
    operation: &'static str,
    reservation_id: String,
    op_id: String,
    request: Request,
) -> Result<OperatedReport, Failure> {
    match call(client, addr, request).await? {
        Response::Operated { replayed, moved, state, deadline_ms } => Ok(OperatedReport {
            reservation_id,
            operation,
            op_id,
            replayed,
            state: state_name(state),
            deadline_ms,
            moved,
        }),
        other => Err(Failure::unexpected("Operated", &other)),
    }
}

async fn get(client: &Client, addr: SocketAddr, id: String) -> Result<ReservationReport, Failure> {
    let view = match call(client, addr, Request::Get { reservation_id: id.clone() }).await? {
        Response::Reservation(Some(view)) => view,
        Response::Reservation(None) => {
            return Err(Failure::server(
                ErrorCode::NotFound.number(),
                &format!("reservation {id} is not known (never held, or ended and past its retention)"),
            ));
        }
        other => return Err(Failure::unexpected("Reservation", &other)),
    };
    Ok(ReservationReport {
        reservation_id: view.id,
        channel: view.channel,
        partial: view.partial,
        policy: policy_name(view.policy),
        state: state_name(view.state),
        deadline_ms: view.deadline_ms,
        created_ms: view.created_ms,
        ended_ms: view.ended_ms,
        lines: view
            .lines
            .into_iter()
            .enumerate()
            .map(|(index, line)| ReservationLine {
                line: index as u32,
                sku: line.sku,
                location: line.location,
                status: line_status_name(line.status),
                requested: line.requested,
                held: line.held,
                allocated: line.allocated,
                fulfilled: line.fulfilled,
                released: line.released,
            })
            .collect(),
    })
}

/// Returns the name of a reserve line status code (docs/protocol.md).
fn line_status_name(status: u32) -> String {
    let name = match status {
        0 => "held",
        1 => "partially_held",
        2 => "unknown_sku",
        3 => "unknown_location",
        4 => "inactive_location",
        5 => "insufficient_atp",
        6 => "not_attempted",
        7 => "backordered",
        other => return format!("status_{other}"),
    };
    name.to_owned()
}

/// Returns the name of a reserve policy number (docs/protocol.md).
fn policy_name(policy: u8) -> String {
    POLICY_NAMES.get(usize::from(policy)).map_or_else(|| format!("policy_{policy}"), |name| (*name).to_owned())
}

/// Returns the name of a reservation state code (docs/protocol.md).
fn state_name(state: u8) -> String {
    let name = match state {
        0 => "held",
        1 => "confirmed",
        2 => "fulfilled",
        3 => "released",
        4 => "expired",
        other => return format!("state_{other}"),
    };
    name.to_owned()
}

fn random_id(prefix: &str) -> String {
    format!("{prefix}-{:032x}", rand::random::<u128>())
}
