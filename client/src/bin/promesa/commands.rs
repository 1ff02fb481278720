//! Runs commands: reads a command's input files before connecting, then sends its
//! requests and turns the responses into a report.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use promesa_client::Client;
use promesa_protocol::{ErrorCode, LocationRow, Request, Response, StockRow, Units};

use crate::args::{
    ChannelCommand, Command, LocationCommand, NewDeadline, OperationArguments, ReserveArguments, StockCommand,
};
use crate::connection::call;
use crate::csv_import::{Rows, batches, read_locations, read_stock};
use crate::errors::Failure;
use crate::output::{
    AtpLocation, AtpReport, ChannelReport, LocationImportReport, OperatedReport, PingReport, ReservationLine,
    ReservationReport, ReserveReport, ReservedLine, StatsReport, StockImportReport, StockReport, render,
};

/// A command with its input files read and checked.
pub(crate) enum Prepared {
    Command(Command),
    Locations { path: PathBuf, read: Rows<LocationRow> },
    Stock { path: PathBuf, read: Rows<StockRow> },
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
        other => Ok(Prepared::Command(other)),
    }
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
        Prepared::Command(command) => command,
    };
    match command {
        Command::Ping => ping(client, addr).await.map(|report| render(&report, json)),
        Command::Location(LocationCommand::Import { .. }) | Command::Stock(StockCommand::Import { .. }) => {
            unreachable!("prepare reads import files")
        }
        Command::Stock(stock) => change_stock(client, addr, stock).await.map(|report| render(&report, json)),
        Command::Channel(ChannelCommand::Upsert { code, may_sell_safety_stock }) => {
            let request = Request::UpsertChannel { code: code.clone(), may_sell_safety_stock };
            let created = match call(client, addr, request).await? {
                Response::Upserted { created, .. } => created > 0,
                other => return Err(Failure::unexpected("Upserted", &other)),
            };
            Ok(render(&ChannelReport { channel: code, may_sell_safety_stock, created }, json))
        }
        Command::Atp { sku, locations, channel } => {
            availability(client, addr, sku, locations, channel).await.map(|report| render(&report, json))
        }
        Command::Reserve(arguments) => reserve(client, addr, arguments).await.map(|report| render(&report, json)),
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
    read: Rows<LocationRow>,
) -> Result<LocationImportReport, Failure> {
    let mut report = LocationImportReport { rows: 0, created: 0, replaced: 0 };
    for batch in batches(&read.lines) {
        let lines = &read.lines[batch.clone()];
        let request = Request::UpsertLocations { locations: read.rows[batch.clone()].to_vec() };
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
/// in the batch (`locations[INDEX]: ...`).
fn location_failure_message(path: &Path, lines: &[u64], message: &str) -> String {
    let row = message
        .strip_prefix("locations[")
        .and_then(|rest| rest.split_once("]: "))
        .and_then(|(index, reason)| Some((lines.get(index.parse::<usize>().ok()?)?, reason)));
    match row {
        // The server upserts a batch's rows one by one and stops at the bad one.
        Some((line, reason)) => {
            format!("{} line {line}: {reason}; the rows before line {line} were applied", path.display())
        }
        None => format!(
            "{} lines {} to {}: {message}; the rows before line {} were applied",
            path.display(),
            lines[0],
            lines[lines.len() - 1],
            lines[0]
        ),
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
    for batch in batches(&read.lines) {
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

async fn reserve(client: &Client, addr: SocketAddr, arguments: ReserveArguments) -> Result<ReserveReport, Failure> {
    let request = Request::Reserve {
        reservation_id: arguments.id.clone(),
        channel: arguments.channel,
        lines: arguments.lines.clone(),
        partial: arguments.partial,
        ttl_ms: arguments.ttl,
    };
    let (replayed, deadline_ms, outcomes) = match call(client, addr, request).await? {
        Response::Reserved { replayed, deadline_ms, lines } => (replayed, deadline_ms, lines),
        other => return Err(Failure::unexpected("Reserved", &other)),
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
        other => return format!("status_{other}"),
    };
    name.to_owned()
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
