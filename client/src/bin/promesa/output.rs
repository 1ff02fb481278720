//! Output: one report type per command, serialized with `--json` and written as
//! aligned text otherwise.

use std::fmt::Display;
use std::io::Write;

use promesa_protocol::{DestinationSource, METHOD_NAMES, Plan, PositionAvailability, RoutedReserveOutcome};
use serde::Serialize;

pub(crate) fn print_output(output: &str) {
    let mut stdout = std::io::stdout().lock();
    let written = stdout.write_all(output.as_bytes()).and_then(|()| stdout.flush());
    // A reader that stops early, such as `head`, is not an error of the command.
    if let Err(error) = written
        && error.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("promesa: io: failed to write the output: {error}");
    }
}

/// A command's result.
pub(crate) trait Report: Serialize {
    /// Writes the result as aligned text, one fact per line.
    fn write_text(&self, out: &mut String);
}

pub(crate) fn render(report: &impl Report, json: bool) -> String {
    let mut out = String::new();
    if json {
        out = serde_json::to_string(report).expect("reports serialize to JSON");
        out.push('\n');
    } else {
        report.write_text(&mut out);
    }
    out
}

/// Labels and values, written with the values aligned.
#[derive(Default)]
pub(crate) struct Facts(Vec<(&'static str, String)>);

impl Facts {
    pub(crate) fn add(&mut self, label: &'static str, value: impl Display) -> &mut Facts {
        self.0.push((label, value.to_string()));
        self
    }

    pub(crate) fn write(&self, out: &mut String) {
        let width = self.0.iter().map(|(label, _)| label.len()).max().unwrap_or(0);
        for (label, value) in &self.0 {
            out.push_str(&format!("{label:width$}  {value}\n"));
        }
    }
}

/// Writes a table with a header row. Columns whose cells are all integers are
/// aligned right, others left.
fn write_table(out: &mut String, headers: &[&str], rows: &[Vec<String>]) {
    let widths: Vec<usize> = (0..headers.len())
        .map(|column| rows.iter().map(|row| row[column].len()).chain([headers[column].len()]).max().unwrap_or(0))
        .collect();
    let numeric: Vec<bool> =
        (0..headers.len()).map(|column| rows.iter().all(|row| row[column].parse::<i64>().is_ok())).collect();
    let header_row: Vec<String> = headers.iter().map(|header| (*header).to_owned()).collect();
    for row in std::iter::once(&header_row).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(column, cell)| {
                let width = widths[column];
                if numeric[column] { format!("{cell:>width$}") } else { format!("{cell:width$}") }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
}

pub(crate) fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

/// Formats milliseconds since the Unix epoch as an ISO 8601 UTC time.
pub(crate) fn format_time_ms(ms: u64) -> String {
    let seconds = ms / 1_000;
    let (year, month, day) = civil_from_days((seconds / 86_400) as i64);
    let second_of_day = seconds % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        second_of_day / 3_600,
        second_of_day % 3_600 / 60,
        second_of_day % 60,
        ms % 1_000
    )
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month, day), with
/// Howard Hinnant's `civil_from_days` algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[derive(Serialize)]
pub(crate) struct PingReport {
    pub(crate) server_now_ms: u64,
    pub(crate) role: &'static str,
    pub(crate) round_trip_us: u64,
}

impl Report for PingReport {
    fn write_text(&self, out: &mut String) {
        Facts::default()
            .add("server_time", format_time_ms(self.server_now_ms))
            .add("role", self.role)
            .add("round_trip", format!("{:.3} ms", self.round_trip_us as f64 / 1_000.0))
            .write(out);
    }
}

#[derive(Serialize)]
pub(crate) struct LocationImportReport {
    pub(crate) rows: u64,
    pub(crate) created: u64,
    pub(crate) replaced: u64,
}

impl Report for LocationImportReport {
    fn write_text(&self, out: &mut String) {
        Facts::default().add("rows", self.rows).add("created", self.created).add("replaced", self.replaced).write(out);
    }
}

#[derive(Serialize)]
pub(crate) struct StockImportReport {
    pub(crate) import_id: String,
    pub(crate) rows: u64,
    pub(crate) positions_created: u64,
}

impl Report for StockImportReport {
    fn write_text(&self, out: &mut String) {
        Facts::default()
            .add("import_id", &self.import_id)
            .add("rows", self.rows)
            .add("positions_created", self.positions_created)
            .write(out);
    }
}

#[derive(Serialize)]
pub(crate) struct StockReport {
    pub(crate) sku: String,
    pub(crate) location: String,
    pub(crate) previous_on_hand: u64,
    pub(crate) on_hand: u64,
    /// The safety stock set by `stock safety`; other commands leave it out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) safety_stock: Option<u64>,
    pub(crate) in_shortage: bool,
    pub(crate) replayed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) op_id: Option<String>,
}

impl Report for StockReport {
    fn write_text(&self, out: &mut String) {
        let mut facts = Facts::default();
        facts
            .add("sku", &self.sku)
            .add("location", &self.location)
            .add("previous_on_hand", self.previous_on_hand)
            .add("on_hand", self.on_hand);
        if let Some(safety_stock) = self.safety_stock {
            facts.add("safety_stock", safety_stock);
        }
        facts.add("in_shortage", yes_no(self.in_shortage)).add("replayed", yes_no(self.replayed));
        if let Some(op_id) = &self.op_id {
            facts.add("op_id", op_id);
        }
        facts.write(out);
    }
}

#[derive(Serialize)]
pub(crate) struct PostalImportReport {
    /// Rows of the file sent and applied.
    pub(crate) rows: u64,
    /// Rows in the server's postal-code table afterwards.
    pub(crate) rows_in_table: u64,
}

impl Report for PostalImportReport {
    fn write_text(&self, out: &mut String) {
        Facts::default().add("rows", self.rows).add("rows_in_table", self.rows_in_table).write(out);
    }
}

#[derive(Serialize)]
pub(crate) struct ChannelReport {
    pub(crate) channel: String,
    pub(crate) may_sell_safety_stock: bool,
    /// Locations the channel may route to; `None` (JSON null) for every location.
    pub(crate) locations: Option<Vec<String>>,
    pub(crate) created: bool,
}

impl Report for ChannelReport {
    fn write_text(&self, out: &mut String) {
        let locations = self.locations.as_ref().map_or_else(|| "every location".to_owned(), |codes| codes.join(","));
        Facts::default()
            .add("channel", &self.channel)
            .add("may_sell_safety_stock", yes_no(self.may_sell_safety_stock))
            .add("locations", locations)
            .add("created", yes_no(self.created))
            .write(out);
    }
}

/// A routing plan: the destination, one entry per shipment, the unfilled lines and
/// the explanations.
#[derive(Serialize)]
pub(crate) struct PlanReport {
    destination: DestinationReport,
    shipments: Vec<ShipmentReport>,
    unfilled: Vec<UnfilledReport>,
    explanations: Vec<String>,
    cost_cents: u64,
}

#[derive(Serialize)]
struct DestinationReport {
    lat: f64,
    lon: f64,
    /// `point`, `postal_code` or `postal_region`.
    source: &'static str,
    /// The prefix of the postal region whose point was used.
    #[serde(skip_serializing_if = "Option::is_none")]
    region_prefix: Option<String>,
}

#[derive(Serialize)]
struct ShipmentReport {
    location: String,
    method: String,
    distance_km: f64,
    cost_cents: u64,
    promise_ms: u64,
    /// `promise_ms` as an ISO 8601 UTC time.
    promise: String,
    /// The units are backordered against the location's inbound supply.
    backorder: bool,
    lines: Vec<ShipmentLineReport>,
}

#[derive(Serialize)]
struct ShipmentLineReport {
    line: u32,
    sku: String,
    quantity: u64,
    /// The reservation line holding the units; null in a quote or an unheld plan.
    reservation_line: Option<u32>,
}

#[derive(Serialize)]
struct UnfilledReport {
    line: u32,
    sku: String,
    requested: u64,
    unfilled: u64,
    reason: String,
}

/// Returns the name of a fulfilment method number (docs/protocol.md).
fn method_name(method: u8) -> String {
    METHOD_NAMES.get(usize::from(method)).map_or_else(|| format!("method_{method}"), |name| (*name).to_owned())
}

/// Returns the name of an unfilled-line reason code (docs/protocol.md).
fn unfilled_reason_name(reason: u8) -> String {
    let name = match reason {
        1 => "unknown_sku",
        2 => "insufficient_atp",
        3 => "shipment_limit",
        4 => "pickup_store_cannot_fill",
        other => return format!("reason_{other}"),
    };
    name.to_owned()
}

impl PlanReport {
    pub(crate) fn new(plan: Plan) -> PlanReport {
        let (source, region_prefix) = match plan.destination.source {
            DestinationSource::Point => ("point", None),
            DestinationSource::PostalCode => ("postal_code", None),
            DestinationSource::PostalRegion { prefix } => ("postal_region", Some(prefix)),
        };
        PlanReport {
            destination: DestinationReport {
                lat: plan.destination.lat,
                lon: plan.destination.lon,
                source,
                region_prefix,
            },
            shipments: plan
                .shipments
                .into_iter()
                .map(|shipment| ShipmentReport {
                    location: shipment.location,
                    method: method_name(shipment.method),
                    distance_km: shipment.distance_km,
                    cost_cents: shipment.cost_cents,
                    promise_ms: shipment.promise_ms,
                    promise: format_time_ms(shipment.promise_ms),
                    backorder: shipment.backorder,
                    lines: shipment
                        .lines
                        .into_iter()
                        .map(|line| ShipmentLineReport {
                            line: line.line,
                            sku: line.sku,
                            quantity: line.quantity,
                            reservation_line: line.reservation_line,
                        })
                        .collect(),
                })
                .collect(),
            unfilled: plan
                .unfilled
                .into_iter()
                .map(|line| UnfilledReport {
                    line: line.line,
                    sku: line.sku,
                    requested: line.requested,
                    unfilled: line.unfilled,
                    reason: unfilled_reason_name(line.reason),
                })
                .collect(),
            explanations: plan.explanations,
            cost_cents: plan.cost_cents,
        }
    }
}

impl Report for PlanReport {
    fn write_text(&self, out: &mut String) {
        let destination = &self.destination;
        let source = match (&destination.region_prefix, destination.source) {
            (Some(prefix), _) => format!("postal region {prefix}*"),
            (None, "postal_code") => "postal code".to_owned(),
            (None, source) => source.to_owned(),
        };
        Facts::default()
            .add("destination", format!("{},{} ({source})", destination.lat, destination.lon))
            .add("shipments", self.shipments.len())
            .add("cost_cents", self.cost_cents)
            .write(out);

        for (index, shipment) in self.shipments.iter().enumerate() {
            out.push('\n');
            Facts::default()
                .add("shipment", format!("{} of {}", index + 1, self.shipments.len()))
                .add("location", &shipment.location)
                .add(
                    "method",
                    if shipment.backorder {
                        format!("{} (backordered)", shipment.method)
                    } else {
                        shipment.method.clone()
                    },
                )
                .add("distance", format!("{:.1} km", shipment.distance_km))
                .add("cost_cents", shipment.cost_cents)
                .add("promise", &shipment.promise)
                .write(out);
            let held = shipment.lines.iter().any(|line| line.reservation_line.is_some());
            let rows: Vec<Vec<String>> = shipment
                .lines
                .iter()
                .map(|line| {
                    let mut row = vec![line.line.to_string(), line.sku.clone(), line.quantity.to_string()];
                    if held {
                        row.push(line.reservation_line.map_or_else(|| "-".to_owned(), |index| index.to_string()));
                    }
                    row
                })
                .collect();
            let headers: &[&str] =
                if held { &["line", "sku", "quantity", "reservation_line"] } else { &["line", "sku", "quantity"] };
            out.push('\n');
            write_table(out, headers, &rows);
        }

        if !self.unfilled.is_empty() {
            out.push_str("\nunfilled lines\n");
            let rows: Vec<Vec<String>> = self
                .unfilled
                .iter()
                .map(|line| {
                    vec![
                        line.line.to_string(),
                        line.sku.clone(),
                        line.requested.to_string(),
                        line.unfilled.to_string(),
                        line.reason.clone(),
                    ]
                })
                .collect();
            write_table(out, &["line", "sku", "requested", "unfilled", "reason"], &rows);
        }

        if !self.explanations.is_empty() {
            out.push_str("\nexplanations\n");
            for (line, explanation) in self.explanations.iter().enumerate() {
                out.push_str(&format!("line {line}: {explanation}\n"));
            }
        }
    }
}

/// The outcome of a routed reserve, with its plan.
#[derive(Serialize)]
pub(crate) struct RoutedReserveReport {
    reservation_id: String,
    replayed: bool,
    held: bool,
    /// Meaningless when nothing is held.
    deadline_ms: u64,
    attempts: u32,
    plan: PlanReport,
}

impl RoutedReserveReport {
    pub(crate) fn new(reservation_id: String, outcome: RoutedReserveOutcome) -> RoutedReserveReport {
        RoutedReserveReport {
            reservation_id,
            replayed: outcome.replayed,
            held: outcome.held,
            deadline_ms: outcome.deadline_ms,
            attempts: outcome.attempts,
            plan: PlanReport::new(outcome.plan),
        }
    }
}

impl Report for RoutedReserveReport {
    fn write_text(&self, out: &mut String) {
        let deadline = if self.held { format_time_ms(self.deadline_ms) } else { "-".to_owned() };
        Facts::default()
            .add("reservation", &self.reservation_id)
            .add("replayed", yes_no(self.replayed))
            .add("held", yes_no(self.held))
            .add("deadline", deadline)
            .add("attempts", self.attempts)
            .write(out);
        out.push('\n');
        self.plan.write_text(out);
    }
}

#[derive(Serialize)]
pub(crate) struct AtpReport {
    pub(crate) sku: String,
    pub(crate) channel: String,
    pub(crate) locations: Vec<AtpLocation>,
    /// Sum of the positive ATP over the locations.
    pub(crate) total_atp: u64,
}

#[derive(Serialize)]
pub(crate) struct AtpLocation {
    pub(crate) location: String,
    pub(crate) on_hand: u64,
    pub(crate) reserved: u64,
    pub(crate) allocated: u64,
    pub(crate) safety_stock: u64,
    pub(crate) atp: i64,
    pub(crate) in_shortage: bool,
}

impl AtpLocation {
    pub(crate) fn new(location: String, read: &PositionAvailability) -> AtpLocation {
        AtpLocation {
            location,
            on_hand: read.on_hand,
            reserved: read.reserved,
            allocated: read.allocated,
            safety_stock: read.safety_stock,
            atp: read.atp,
            in_shortage: read.in_shortage,
        }
    }
}

impl Report for AtpReport {
    fn write_text(&self, out: &mut String) {
        Facts::default()
            .add("sku", &self.sku)
            .add("channel", &self.channel)
            .add("total_atp", self.total_atp)
            .write(out);
        if self.locations.is_empty() {
            out.push_str("no positions\n");
            return;
        }
        let rows: Vec<Vec<String>> = self
            .locations
            .iter()
            .map(|entry| {
                vec![
                    entry.location.clone(),
                    entry.on_hand.to_string(),
                    entry.reserved.to_string(),
                    entry.allocated.to_string(),
                    entry.safety_stock.to_string(),
                    entry.atp.to_string(),
                    yes_no(entry.in_shortage).to_owned(),
                ]
            })
            .collect();
        out.push('\n');
        write_table(
            out,
            &["location", "on_hand", "reserved", "allocated", "safety_stock", "atp", "in_shortage"],
            &rows,
        );
    }
}

#[derive(Serialize)]
pub(crate) struct ReserveReport {
    pub(crate) reservation_id: String,
    pub(crate) replayed: bool,
    pub(crate) deadline_ms: u64,
    pub(crate) lines: Vec<ReservedLine>,
}

#[derive(Serialize)]
pub(crate) struct ReservedLine {
    pub(crate) line: u32,
    pub(crate) sku: String,
    pub(crate) location: String,
    pub(crate) status: String,
    pub(crate) requested: u64,
    pub(crate) held: u64,
}

impl Report for ReserveReport {
    fn write_text(&self, out: &mut String) {
        Facts::default()
            .add("reservation", &self.reservation_id)
            .add("replayed", yes_no(self.replayed))
            .add("deadline", format_time_ms(self.deadline_ms))
            .write(out);
        let rows: Vec<Vec<String>> = self
            .lines
            .iter()
            .map(|line| {
                vec![
                    line.line.to_string(),
                    line.sku.clone(),
                    line.location.clone(),
                    line.status.clone(),
                    line.requested.to_string(),
                    line.held.to_string(),
                ]
            })
            .collect();
        out.push('\n');
        write_table(out, &["line", "sku", "location", "status", "requested", "held"], &rows);
    }
}

#[derive(Serialize)]
pub(crate) struct OperatedReport {
    pub(crate) reservation_id: String,
    /// `confirm`, `release`, `fulfil` or `extend`.
    pub(crate) operation: &'static str,
    pub(crate) op_id: String,
    pub(crate) replayed: bool,
    /// Reservation state after the operation.
    pub(crate) state: String,
    pub(crate) deadline_ms: u64,
    /// Units moved per line, in line order.
    pub(crate) moved: Vec<u64>,
}

impl Report for OperatedReport {
    fn write_text(&self, out: &mut String) {
        Facts::default()
            .add("reservation", &self.reservation_id)
            .add("operation", self.operation)
            .add("op_id", &self.op_id)
            .add("replayed", yes_no(self.replayed))
            .add("state", &self.state)
            .add("deadline", format_time_ms(self.deadline_ms))
            .write(out);
        let rows: Vec<Vec<String>> =
            self.moved.iter().enumerate().map(|(line, units)| vec![line.to_string(), units.to_string()]).collect();
        out.push('\n');
        write_table(out, &["line", "moved"], &rows);
    }
}

#[derive(Serialize)]
pub(crate) struct ReservationReport {
    pub(crate) reservation_id: String,
    pub(crate) channel: String,
    /// Whether the policy is partial, kept beside `policy` for scripts that read it.
    pub(crate) partial: bool,
    /// `all_or_nothing`, `partial` or `backorder`.
    pub(crate) policy: String,
    pub(crate) state: String,
    pub(crate) deadline_ms: u64,
    pub(crate) created_ms: u64,
    pub(crate) ended_ms: Option<u64>,
    pub(crate) lines: Vec<ReservationLine>,
}

#[derive(Serialize)]
pub(crate) struct ReservationLine {
    pub(crate) line: u32,
    pub(crate) sku: String,
    pub(crate) location: String,
    /// Status at reserve time.
    pub(crate) status: String,
    pub(crate) requested: u64,
    pub(crate) held: u64,
    pub(crate) allocated: u64,
    pub(crate) fulfilled: u64,
    pub(crate) released: u64,
}

impl Report for ReservationReport {
    fn write_text(&self, out: &mut String) {
        Facts::default()
            .add("reservation", &self.reservation_id)
            .add("channel", &self.channel)
            .add("policy", &self.policy)
            .add("state", &self.state)
            .add("deadline", format_time_ms(self.deadline_ms))
            .add("created", format_time_ms(self.created_ms))
            .add("ended", self.ended_ms.map_or_else(|| "-".to_owned(), format_time_ms))
            .write(out);
        let rows: Vec<Vec<String>> = self
            .lines
            .iter()
            .map(|line| {
                vec![
                    line.line.to_string(),
                    line.sku.clone(),
                    line.location.clone(),
                    line.status.clone(),
                    line.requested.to_string(),
                    line.held.to_string(),
                    line.allocated.to_string(),
                    line.fulfilled.to_string(),
                    line.released.to_string(),
                ]
            })
            .collect();
        out.push('\n');
        write_table(
            out,
            &["line", "sku", "location", "status", "requested", "held", "allocated", "fulfilled", "released"],
            &rows,
        );
    }
}

/// The server's figures in the order it sends them. As JSON, an object of name to value.
pub(crate) struct StatsReport(pub(crate) Vec<(String, u64)>);

impl Serialize for StatsReport {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl Report for StatsReport {
    fn write_text(&self, out: &mut String) {
        let width = self.0.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
        for (name, value) in &self.0 {
            out.push_str(&format!("{name:width$}  {value}\n"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_write_one_block_per_shipment() {
        use promesa_protocol::{ResolvedDestination, Shipment, ShipmentLine, UnfilledLine};
        let plan = Plan {
            destination: ResolvedDestination {
                lat: 19.43,
                lon: -99.13,
                source: DestinationSource::PostalRegion { prefix: "06".into() },
            },
            shipments: vec![Shipment {
                location: "MX-01".into(),
                method: 0,
                lines: vec![ShipmentLine { line: 0, sku: "SKU-1".into(), quantity: 2, reservation_line: Some(0) }],
                distance_km: 12.345,
                cost_cents: 512,
                promise_ms: 1_767_225_600_000,
                backorder: false,
            }],
            unfilled: vec![UnfilledLine { line: 1, sku: "SKU-2".into(), requested: 3, unfilled: 3, reason: 1 }],
            explanations: vec!["MX-01: nearest".into(), "unknown SKU".into()],
            cost_cents: 512,
        };
        let text = render(&PlanReport::new(plan), false);
        let expected = "\
destination  19.43,-99.13 (postal region 06*)
shipments    1
cost_cents   512

shipment    1 of 1
location    MX-01
method      ship
distance    12.3 km
cost_cents  512
promise     2026-01-01T00:00:00.000Z

line  sku    quantity  reservation_line
   0  SKU-1         2                 0

unfilled lines
line  sku    requested  unfilled  reason
   1  SKU-2          3         3  unknown_sku

explanations
line 0: MX-01: nearest
line 1: unknown SKU
";
        assert_eq!(text, expected);
    }

    #[test]
    fn times_format_as_utc() {
        assert_eq!(format_time_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_time_ms(1_767_225_600_123), "2026-01-01T00:00:00.123Z");
        assert_eq!(format_time_ms(951_825_600_000), "2000-02-29T12:00:00.000Z");
    }
}
