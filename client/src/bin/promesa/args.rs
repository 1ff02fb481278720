//! Command-line arguments: the clap definitions of the flags and subcommands, and the
//! parsers of argument values such as `SKU@LOCATION`, destinations, durations and times.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use promesa_client::TIMEOUT_MS_DEFAULT;
use promesa_protocol::{Destination, LineQuantity, ReserveLine, RouteLine, RouteMethod};

/// Promesa's command-line client: locations, stock, inbound supply, availability,
/// routing and reservations.
///
/// Connection settings come from flags, else from the environment variables
/// PROMESA_ADDR, PROMESA_CA and PROMESA_TOKEN. For a server on this machine that
/// generated its own certificate and admin token, `--server-data-dir DIR` reads both
/// from its data folder.
#[derive(Parser)]
#[command(
    name = "promesa",
    version,
    after_help = "Exit status: 0 on success, 2 for a usage error found before anything was sent, 1 for any other \
                  failure (a rejected request, a bad CSV file, no connection)."
)]
pub(crate) struct Cli {
    /// Print the result as one JSON document instead of aligned text.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) connection: ConnectionArguments,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Args)]
#[command(next_help_heading = "Connection")]
pub(crate) struct ConnectionArguments {
    /// Server address [env: PROMESA_ADDR] [default: 127.0.0.1:7400].
    #[arg(long, global = true, value_name = "HOST:PORT")]
    pub(crate) addr: Option<String>,
    /// PEM file of the certificate or CA to trust [env: PROMESA_CA].
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) ca: Option<PathBuf>,
    /// Token [env: PROMESA_TOKEN]. Prefer the variable: other users can read the
    /// command line of a running process.
    #[arg(long, global = true, value_name = "TOKEN")]
    pub(crate) token: Option<String>,
    /// Data folder of a local server: trust its development certificate (dev-cert.pem)
    /// and use its generated admin token (admin.token) unless --ca or --token is given.
    /// Takes precedence over PROMESA_CA and PROMESA_TOKEN.
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) server_data_dir: Option<PathBuf>,
    /// Name the server's certificate must carry [default: the host of the address].
    #[arg(long, global = true, value_name = "NAME")]
    pub(crate) server_name: Option<String>,
    /// Time to wait for the connection and for each response, in milliseconds.
    #[arg(long, global = true, value_name = "MS", default_value_t = TIMEOUT_MS_DEFAULT)]
    pub(crate) timeout_ms: u64,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Check the connection, and print the server's clock and the token's role.
    Ping,
    /// Manage locations.
    #[command(subcommand)]
    Location(LocationCommand),
    /// Manage stock: imports, on hand and safety stock.
    #[command(subcommand)]
    Stock(StockCommand),
    /// Manage sales channels.
    #[command(subcommand)]
    Channel(ChannelCommand),
    /// Manage the postal-code table that routing resolves postal destinations with.
    #[command(subcommand)]
    Postal(PostalCommand),
    /// Manage inbound supply: expected receipts (purchase orders, transfers) with their
    /// arrival times.
    ///
    /// TIME is an RFC 3339 time such as 2026-12-31T00:00:00Z, a date such as 2026-12-31
    /// (00:00 UTC), or + and a whole number of minutes, hours or days after the
    /// server's clock, such as +90m, +12h or +30d. A time with an offset such as +02:00
    /// is converted to UTC.
    #[command(subcommand)]
    Supply(SupplyCommand),
    /// Print the availability (ATP) of a SKU at one, some or all locations, or at one
    /// location by a time, counting inbound supply.
    ///
    /// With --by, print the units available by TIME. With --quantity, print the
    /// earliest time that many units are available.
    ///
    /// TIME is an RFC 3339 time such as 2026-12-31T00:00:00Z, a date such as 2026-12-31
    /// (00:00 UTC), or + and a whole number of minutes, hours or days after the
    /// server's clock, such as +90m, +12h or +30d. A time with an offset such as +02:00
    /// is converted to UTC.
    Atp {
        /// SKU code.
        sku: String,
        /// Location code, repeatable. Without it, every location of the SKU. --by and
        /// --quantity read one location.
        #[arg(long = "location", value_name = "LOC")]
        locations: Vec<String>,
        /// Channel code [default: the server's default channel].
        #[arg(long)]
        channel: Option<String>,
        /// Print the units available by TIME: ATP now plus the receipts that arrive by
        /// then, less the units backordered against them.
        #[arg(long, value_name = "TIME", value_parser = parse_time, conflicts_with = "quantity")]
        by: Option<TimeArgument>,
        /// Print the earliest time N units are available, counting inbound supply.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        quantity: Option<u64>,
    },
    /// Plan where an order would ship from, with costs and promise dates, changing
    /// nothing.
    Quote(QuoteArguments),
    /// Hold units until a deadline: at the locations the lines name, or, with --to or
    /// --to-postal, at the locations routing plans for the order.
    Reserve(ReserveArguments),
    /// Move held units of a reservation to allocated.
    Confirm(OperationArguments),
    /// Release units of a reservation.
    Release {
        #[command(flatten)]
        operation: OperationArguments,
        /// State of the units to release.
        #[arg(long, value_enum, default_value_t = ReleaseFrom::HeldFirst)]
        from: ReleaseFrom,
    },
    /// Ship units of a reservation (allocated first, then held) and lower on hand.
    Fulfil(OperationArguments),
    /// Move the deadline of a reservation's held units later.
    Extend {
        /// Reservation id.
        id: String,
        #[command(flatten)]
        deadline: NewDeadline,
        /// Operation id, unique within the reservation [default: a random id].
        #[arg(long, value_name = "ID")]
        op_id: Option<String>,
    },
    /// Print a reservation.
    Get {
        /// Reservation id.
        id: String,
    },
    /// Print the server's counters and figures.
    Stats,
}

#[derive(Subcommand)]
pub(crate) enum LocationCommand {
    /// Insert or replace locations from a CSV file.
    ///
    /// Header: code,kind,lat,lon and optionally methods,daily_capacity,active. kind is
    /// warehouse, store, dark_store, drop_ship or 0 to 3. methods is a |-separated list
    /// of ship, pickup, curbside, drop_ship, same_day, or the bit number [default: ship].
    /// daily_capacity is orders per day, 0 for no limit [default: 0]. active is true or
    /// false [default: true].
    ///
    /// Optional routing columns, where an empty cell takes the default.
    /// utc_offset_minutes is the local time's offset from UTC, -720 to 840 [default: 0].
    /// pickup_only is true or false, and a pickup-only location's stock is never used for
    /// orders that ship [default: false]. handling_minutes is the minutes until an order
    /// is ready, for every method [default: 0]. cutoff is the local time HH:MM after which
    /// an order is handled the next day, for every method, or 24:00 for none
    /// [default: 24:00]. shipment_cost_cents is the cost of one shipment [default: 500].
    /// km_cost_cents is the cost per kilometre [default: 1]. speed_km_per_day is the
    /// distance a shipment covers per day in transit [default: 500].
    ///
    /// Rows are sent in requests of at most 10,000, and each request is applied on its
    /// own, all its rows or none.
    Import {
        /// CSV file.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
pub(crate) enum StockCommand {
    /// Set on hand (and optionally safety stock) from a CSV file, all rows or none.
    ///
    /// Header: sku,location,on_hand and optionally safety_stock. The rows are staged on
    /// the server and applied together when all are valid. Otherwise nothing is
    /// applied, and the error lists the bad rows by line number.
    Import {
        /// CSV file.
        file: PathBuf,
    },
    /// Set on hand of a position to a count.
    Set {
        /// Position as SKU@LOCATION.
        #[arg(value_parser = parse_position)]
        position: Position,
        /// New on hand.
        units: u64,
    },
    /// Change on hand of a position by a signed delta.
    Adjust {
        /// Position as SKU@LOCATION.
        #[arg(value_parser = parse_position)]
        position: Position,
        /// Units to add, negative to remove.
        #[arg(allow_negative_numbers = true)]
        delta: i64,
        /// Reason of the change.
        #[arg(long, value_enum)]
        reason: AdjustReason,
        /// Operation id: a retry with the same id is applied once [default: a random id].
        #[arg(long, value_name = "ID")]
        op_id: Option<String>,
    },
    /// Set safety stock of a position.
    Safety {
        /// Position as SKU@LOCATION.
        #[arg(value_parser = parse_position)]
        position: Position,
        /// Units kept back from channels that may not sell safety stock.
        units: u64,
    },
}

#[derive(Subcommand)]
pub(crate) enum ChannelCommand {
    /// Insert or replace a channel.
    Upsert {
        /// Channel code.
        code: String,
        /// Let the channel sell safety stock.
        #[arg(long)]
        may_sell_safety_stock: bool,
        /// Location codes the channel may route orders to, comma-separated
        /// [default: every location].
        #[arg(long, value_name = "L1,L2", value_delimiter = ',')]
        locations: Option<Vec<String>>,
    },
}

#[derive(Subcommand)]
pub(crate) enum SupplyCommand {
    /// Add an expected receipt of units of a SKU at a location.
    ///
    /// The receipt id is the idempotency key: adding the same receipt again changes
    /// nothing, and the same id with another SKU, location, quantity or arrival is
    /// rejected with id_reused. A relative --arrival such as +30d counts from the
    /// server's clock at each call, so a retry needs the absolute time.
    Add {
        /// Receipt id, such as a purchase order or transfer number.
        #[arg(long, value_name = "ID")]
        id: String,
        /// SKU code.
        #[arg(long)]
        sku: String,
        /// Location code where the units arrive.
        #[arg(long, value_name = "LOC")]
        location: String,
        /// Units expected.
        #[arg(long, value_name = "N")]
        quantity: u64,
        /// Expected arrival, a TIME (see `promesa supply --help`).
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        arrival: TimeArgument,
    },
    /// Move the expected arrival of a receipt.
    Move {
        /// Receipt id.
        id: String,
        /// New expected arrival, a TIME (see `promesa supply --help`).
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        arrival: TimeArgument,
    },
    /// Cancel a receipt. Rejected while backorders need its units.
    Cancel {
        /// Receipt id.
        id: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum PostalCommand {
    /// Insert or replace postal codes from a CSV file.
    ///
    /// Header: country,postal_code,lat,lon. country is a two-letter ISO 3166-1 code,
    /// such as MX. postal_code is a code of 1 to 16 bytes, or a region prefix ending in
    /// '*', such as 06*: a destination whose code is not in the table gets the point of
    /// the longest region prefix it starts with. lat and lon are in degrees.
    ///
    /// Every row is checked before anything is sent, so a file with a bad row changes
    /// nothing. Rows are then sent in requests of at most 20,000, each applied all or
    /// nothing. Unlike a stock import, a file of more rows is not applied atomically as
    /// a whole: if a later request fails, the earlier ones stay applied.
    Import {
        /// CSV file.
        file: PathBuf,
    },
}

/// Destination and fulfilment method of a routed order.
#[derive(Args)]
pub(crate) struct RouteArguments {
    /// Destination as latitude and longitude in degrees, such as 19.43,-99.13.
    #[arg(long, value_name = "LAT,LON", value_parser = parse_point, conflicts_with = "to_postal",
          allow_hyphen_values = true)]
    pub(crate) to: Option<Destination>,
    /// Destination as a postal code with its two-letter country code, such as MX:06700,
    /// looked up in the postal-code table (see `promesa postal import`).
    #[arg(long, value_name = "CC:CODE", value_parser = parse_postal)]
    pub(crate) to_postal: Option<Destination>,
    /// Fulfilment method: cheapest or fastest shipping, same-day delivery, pickup in
    /// store or curbside pickup, at STORE or else at the nearest store that fills the
    /// order [default: cheapest].
    #[arg(long, value_name = "cheapest|fastest|same-day|pickup[:STORE]|curbside[:STORE]",
          value_parser = parse_route_method)]
    pub(crate) method: Option<RouteMethod>,
    /// Maximum number of shipments the order may split into, 1 to 8; 1 ships from one
    /// location. Pickup orders never split [default: 2].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=8))]
    pub(crate) max_shipments: Option<u32>,
}

/// Shipments an order may split into when `--max-shipments` is not given.
pub(crate) const MAX_SHIPMENTS_DEFAULT: u32 = 2;

impl RouteArguments {
    /// Returns the destination, if --to or --to-postal was given.
    pub(crate) fn destination(&self) -> Option<Destination> {
        self.to.clone().or_else(|| self.to_postal.clone())
    }
}

#[derive(Args)]
pub(crate) struct QuoteArguments {
    #[command(flatten)]
    pub(crate) route: RouteArguments,
    /// Units of a SKU, as SKU=QUANTITY. Repeat for more lines.
    #[arg(long = "line", value_name = "SKU=QTY", required = true, value_parser = parse_route_line)]
    pub(crate) lines: Vec<RouteLine>,
    /// Plan what can be filled and report the rest, instead of refusing the order.
    #[arg(long)]
    pub(crate) partial: bool,
    /// Plan units no eligible location has in stock against a location's inbound
    /// supply (see `promesa supply`), promised from the receipt that brings them.
    #[arg(long)]
    pub(crate) backorder: bool,
    /// Channel code [default: the server's default channel].
    #[arg(long)]
    pub(crate) channel: Option<String>,
}

#[derive(Args)]
pub(crate) struct ReserveArguments {
    /// Reservation id: a retry with the same id and lines returns the first outcome.
    #[arg(long)]
    pub(crate) id: String,
    /// Units of a SKU at a location, as SKU@LOCATION=QUANTITY, or, for an order routed
    /// with --to or --to-postal, units of a SKU as SKU=QUANTITY. Repeat for more lines,
    /// all in the same form. A location code must not contain '@', and the SKU of a
    /// routed line must not either.
    #[arg(long = "line", value_name = "SKU@LOC=QTY|SKU=QTY", required = true, value_parser = parse_line_argument)]
    pub(crate) lines: Vec<LineArgument>,
    #[command(flatten)]
    pub(crate) route: RouteArguments,
    /// Time-to-live of the hold: a whole number with a unit ms, s, m, h or d.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = parse_duration_ms)]
    pub(crate) ttl: u64,
    /// Hold what is available instead of all lines or none. For a routed order: plan
    /// and hold what can be filled, and report the rest.
    #[arg(long)]
    pub(crate) partial: bool,
    /// Hold every line in full or nothing, and backorder a line that ATP now cannot
    /// fill against the location's inbound supply (see `promesa supply`); not with
    /// --partial. For a routed order: units no eligible location has in stock are
    /// backordered where inbound supply covers them.
    #[arg(long)]
    pub(crate) backorder: bool,
    /// Channel code [default: the server's default channel].
    #[arg(long)]
    pub(crate) channel: Option<String>,
}

/// A `--line` of `reserve` as given: the text before the last '=' (SKU@LOCATION or
/// SKU) and the quantity. Which form it must have depends on --to and --to-postal.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LineArgument {
    pub(crate) text: String,
    pub(crate) item: String,
    pub(crate) quantity: u64,
}

impl LineArgument {
    /// Returns the line as SKU@LOCATION=QUANTITY, if it names a location.
    pub(crate) fn located(&self) -> Option<ReserveLine> {
        let position = parse_position(&self.item).ok()?;
        Some(ReserveLine { sku: position.sku, location: position.location, quantity: self.quantity })
    }
}

#[derive(Args)]
pub(crate) struct OperationArguments {
    /// Reservation id.
    pub(crate) id: String,
    /// Units of one line, as INDEX=QUANTITY with the 0-based line index of the reserve.
    /// Repeat for more lines. Without it, every unit the operation applies to.
    #[arg(long = "line", value_name = "INDEX=QTY", value_parser = parse_line_quantity)]
    pub(crate) lines: Vec<LineQuantity>,
    /// Operation id, unique within the reservation: a retry with the same id is
    /// applied once [default: a random id].
    #[arg(long, value_name = "ID")]
    pub(crate) op_id: Option<String>,
}

#[derive(Args)]
#[group(required = true, multiple = false)]
pub(crate) struct NewDeadline {
    /// New deadline, milliseconds since the Unix epoch.
    #[arg(long, value_name = "MS")]
    pub(crate) deadline_ms: Option<u64>,
    /// New deadline as a duration after the server's current time, such as 10m.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_ms)]
    pub(crate) by: Option<u64>,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ReleaseFrom {
    /// Held units first, then allocated ones.
    HeldFirst,
    /// Held units only.
    Held,
    /// Allocated units only.
    Allocated,
}

impl ReleaseFrom {
    pub(crate) fn code(self) -> u8 {
        match self {
            ReleaseFrom::HeldFirst => 0,
            ReleaseFrom::Held => 1,
            ReleaseFrom::Allocated => 2,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum AdjustReason {
    /// Goods received.
    Receipt,
    /// Goods damaged.
    Damage,
    /// A count corrected.
    Correction,
    /// Goods returned by a customer.
    Return,
}

impl AdjustReason {
    pub(crate) fn code(self) -> u8 {
        match self {
            AdjustReason::Receipt => 0,
            AdjustReason::Damage => 1,
            AdjustReason::Correction => 2,
            AdjustReason::Return => 3,
        }
    }
}

/// A TIME argument: a time, or a duration after the server's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimeArgument {
    /// Milliseconds since the Unix epoch.
    At(u64),
    /// Milliseconds after the server's time now.
    AfterNow(u64),
}

/// A SKU at a location.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Position {
    pub(crate) sku: String,
    pub(crate) location: String,
}

fn parse_position(text: &str) -> Result<Position, String> {
    let Some((sku, location)) = text.rsplit_once('@') else {
        return Err("expected SKU@LOCATION".to_owned());
    };
    if sku.is_empty() || location.is_empty() {
        return Err("expected SKU@LOCATION with both codes non-empty".to_owned());
    }
    Ok(Position { sku: sku.to_owned(), location: location.to_owned() })
}

fn parse_line_argument(text: &str) -> Result<LineArgument, String> {
    let expected = "expected SKU@LOCATION=QUANTITY, or SKU=QUANTITY with --to or --to-postal";
    let Some((item, quantity)) = text.rsplit_once('=') else {
        return Err(expected.to_owned());
    };
    if item.is_empty() || item.starts_with('@') || item.ends_with('@') {
        return Err(expected.to_owned());
    }
    let quantity = quantity.parse().map_err(|_| format!("quantity {quantity:?} is not a whole number of units"))?;
    Ok(LineArgument { text: text.to_owned(), item: item.to_owned(), quantity })
}

fn parse_route_line(text: &str) -> Result<RouteLine, String> {
    let Some((sku, quantity)) = text.rsplit_once('=') else {
        return Err("expected SKU=QUANTITY".to_owned());
    };
    if sku.is_empty() {
        return Err("expected SKU=QUANTITY with a non-empty SKU".to_owned());
    }
    let quantity = quantity.parse().map_err(|_| format!("quantity {quantity:?} is not a whole number of units"))?;
    Ok(RouteLine { sku: sku.to_owned(), quantity })
}

/// Parses `LAT,LON` in degrees, within -90..=90 and -180..=180.
fn parse_point(text: &str) -> Result<Destination, String> {
    let Some((lat, lon)) = text.split_once(',') else {
        return Err("expected LAT,LON in degrees, such as 19.43,-99.13".to_owned());
    };
    let degrees = |name: &str, value: &str, limit: f64| -> Result<f64, String> {
        let parsed: f64 = value.trim().parse().map_err(|_| format!("{name} {value:?} is not a number of degrees"))?;
        if !(-limit..=limit).contains(&parsed) {
            return Err(format!("{name} {parsed} is not within -{limit}..={limit}"));
        }
        Ok(parsed)
    };
    Ok(Destination::Point { lat: degrees("latitude", lat, 90.0)?, lon: degrees("longitude", lon, 180.0)? })
}

/// Parses `CC:CODE`: a country code and a postal code.
fn parse_postal(text: &str) -> Result<Destination, String> {
    match text.split_once(':') {
        Some((country, postal_code)) if !country.is_empty() && !postal_code.is_empty() => {
            Ok(Destination::Postal { country: country.to_owned(), postal_code: postal_code.to_owned() })
        }
        _ => Err("expected CC:CODE, a two-letter country code and a postal code, such as MX:06700".to_owned()),
    }
}

fn parse_route_method(text: &str) -> Result<RouteMethod, String> {
    let (name, store) = match text.split_once(':') {
        Some((name, store)) if !store.is_empty() => (name, Some(store.to_owned())),
        Some(_) => return Err(format!("method {text:?} names no store; give pickup:STORE or pickup")),
        None => (text, None),
    };
    match (name, store) {
        ("cheapest", None) => Ok(RouteMethod::ShipCheapest),
        ("fastest", None) => Ok(RouteMethod::ShipFastest),
        ("same-day", None) => Ok(RouteMethod::SameDay),
        ("pickup", None) => Ok(RouteMethod::PickupNearest { curbside: false }),
        ("curbside", None) => Ok(RouteMethod::PickupNearest { curbside: true }),
        ("pickup", Some(store)) => Ok(RouteMethod::PickupAt { store, curbside: false }),
        ("curbside", Some(store)) => Ok(RouteMethod::PickupAt { store, curbside: true }),
        _ => Err(format!(
            "method {text:?} is not known; expected cheapest, fastest, same-day, pickup[:STORE] or curbside[:STORE]"
        )),
    }
}

fn parse_line_quantity(text: &str) -> Result<LineQuantity, String> {
    let Some((line, quantity)) = text.split_once('=') else {
        return Err("expected INDEX=QUANTITY, such as 0=2".to_owned());
    };
    let line = line.parse().map_err(|_| format!("line index {line:?} is not a whole number"))?;
    let quantity = quantity.parse().map_err(|_| format!("quantity {quantity:?} is not a whole number of units"))?;
    Ok(LineQuantity { line, quantity })
}

/// Parses a duration such as `500ms`, `30s`, `15m`, `2h` or `1d` into milliseconds.
fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let expected = "expected a whole number with a unit ms, s, m, h or d, such as 15m";
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| expected.to_owned())?;
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(expected.to_owned()),
    };
    number.checked_mul(unit_ms).ok_or_else(|| format!("{text} is too long: the limit is {} ms", u64::MAX))
}

/// Parses a TIME: an RFC 3339 or ISO 8601 time with an offset (converted to UTC), an
/// ISO 8601 date meaning 00:00 UTC, or `+` and a duration after the server's clock.
fn parse_time(text: &str) -> Result<TimeArgument, String> {
    use time::format_description::well_known::{Iso8601, Rfc3339};
    use time::{Date, OffsetDateTime};

    if let Some(duration) = text.strip_prefix('+') {
        return parse_duration_ms(duration).map(TimeArgument::AfterNow).map_err(|_| {
            format!(
                "{text:?} is not a time after now; expected + and a whole number with a unit m, h or d, such as +30d"
            )
        });
    }
    let parsed = OffsetDateTime::parse(text, &Rfc3339).or_else(|_| OffsetDateTime::parse(text, &Iso8601::PARSING));
    // A date alone means 00:00 UTC. A date and time without an offset is rejected,
    // because it may be meant as local time, so Date::parse (which would read its date
    // part) gets only texts without a time.
    let date_only = !text.contains(['T', 't']);
    let parsed = parsed.or_else(|error| {
        if date_only {
            Date::parse(text, &Iso8601::PARSING).map(|date| date.midnight().assume_utc())
        } else {
            Err(error)
        }
    });
    // RFC 3339 offsets run to 23:59, but no time zone is beyond -12:00 or +14:00.
    if let Ok(time) = &parsed
        && !(-12 * 3_600..=14 * 3_600).contains(&time.offset().whole_seconds())
    {
        return Err(format!("{text:?} has a UTC offset of {}; offsets run from -12:00 to +14:00", time.offset()));
    }
    // A date and time that parses once a Z is added lacks only its offset.
    if parsed.is_err() && OffsetDateTime::parse(&format!("{text}Z"), &Rfc3339).is_ok() {
        return Err(format!(
            "{text:?} has no UTC offset; add Z or an offset such as -06:00 (a time without one may be meant as \
             local time)"
        ));
    }
    let Ok(time) = parsed else {
        return Err(format!(
            "{text:?} is not a time; expected an RFC 3339 time with Z or an offset, such as 2026-12-31T00:00:00Z, \
             a date such as 2026-12-31, or +30d, +12h or +90m after now"
        ));
    };
    let ms = time.unix_timestamp_nanos().div_euclid(1_000_000);
    u64::try_from(ms).map(TimeArgument::At).map_err(|_| format!("{text:?} is before 1970-01-01T00:00:00Z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_each_unit() {
        assert_eq!(parse_duration_ms("250ms"), Ok(250));
        assert_eq!(parse_duration_ms("30s"), Ok(30_000));
        assert_eq!(parse_duration_ms("15m"), Ok(900_000));
        assert_eq!(parse_duration_ms("2h"), Ok(7_200_000));
        assert_eq!(parse_duration_ms("1d"), Ok(86_400_000));
        for invalid in ["", "15", "m", "1.5h", "-1s", "10 m", "3w"] {
            assert!(parse_duration_ms(invalid).is_err(), "{invalid:?} was accepted");
        }
        assert!(parse_duration_ms(&format!("{}d", u64::MAX)).is_err());
    }

    #[test]
    fn reserve_line_arguments_keep_both_forms() {
        let located = parse_line_argument("SKU@A@MX-01=3").unwrap();
        assert_eq!(located.located(), Some(ReserveLine { sku: "SKU@A".into(), location: "MX-01".into(), quantity: 3 }));
        let routed = parse_line_argument("SKU-1=2").unwrap();
        assert_eq!((routed.item.as_str(), routed.quantity, routed.located()), ("SKU-1", 2, None));
        for invalid in ["SKU-1", "SKU@MX-01", "=2", "@MX-01=2", "SKU@=2", "SKU=-2", "SKU@MX-01=-3"] {
            assert!(parse_line_argument(invalid).is_err(), "{invalid:?} was accepted");
        }
    }

    #[test]
    fn destinations_parse_and_check_ranges() {
        assert_eq!(parse_point("19.43,-99.13"), Ok(Destination::Point { lat: 19.43, lon: -99.13 }));
        assert_eq!(parse_point("91,0"), Err("latitude 91 is not within -90..=90".to_owned()));
        assert_eq!(parse_point("0,-181"), Err("longitude -181 is not within -180..=180".to_owned()));
        assert!(parse_point("19.43").is_err());
        assert!(parse_point("north,west").is_err());
        let postal = Destination::Postal { country: "MX".into(), postal_code: "06700".into() };
        assert_eq!(parse_postal("MX:06700"), Ok(postal));
        assert!(parse_postal("MX").is_err());
        assert!(parse_postal(":06700").is_err());
    }

    #[test]
    fn route_methods_parse() {
        assert_eq!(parse_route_method("cheapest"), Ok(RouteMethod::ShipCheapest));
        assert_eq!(parse_route_method("same-day"), Ok(RouteMethod::SameDay));
        assert_eq!(parse_route_method("pickup"), Ok(RouteMethod::PickupNearest { curbside: false }));
        assert_eq!(
            parse_route_method("curbside:MX-GDL-01"),
            Ok(RouteMethod::PickupAt { store: "MX-GDL-01".into(), curbside: true })
        );
        for invalid in ["teleport", "pickup:", "fastest:MX-01", ""] {
            assert!(parse_route_method(invalid).is_err(), "{invalid:?} was accepted");
        }
    }

    #[test]
    fn times_parse_in_each_form() {
        let day_ms = 86_400_000;
        let new_year_2027_ms = 1_798_761_600_000;
        assert_eq!(parse_time("2027-01-01T00:00:00Z"), Ok(TimeArgument::At(new_year_2027_ms)));
        assert_eq!(parse_time("2027-01-01T00:00:00.250Z"), Ok(TimeArgument::At(new_year_2027_ms + 250)));
        assert_eq!(parse_time("2027-01-01T02:00:00+02:00"), Ok(TimeArgument::At(new_year_2027_ms)));
        assert_eq!(parse_time("2027-01-01T00:00Z"), Ok(TimeArgument::At(new_year_2027_ms)));
        assert_eq!(parse_time("2027-01-01"), Ok(TimeArgument::At(new_year_2027_ms)));
        assert_eq!(parse_time("2026-12-31"), Ok(TimeArgument::At(new_year_2027_ms - day_ms)));
        assert_eq!(parse_time("1970-01-01"), Ok(TimeArgument::At(0)));
        assert_eq!(parse_time("+30d"), Ok(TimeArgument::AfterNow(30 * day_ms)));
        assert_eq!(parse_time("+12h"), Ok(TimeArgument::AfterNow(12 * 3_600_000)));
        assert_eq!(parse_time("+90m"), Ok(TimeArgument::AfterNow(90 * 60_000)));
        for invalid in ["", "tomorrow", "2026-13-01", "2026-02-30", "2026-12-31T00:00:00", "31/12/2026", "+", "+3w"] {
            assert!(parse_time(invalid).is_err(), "{invalid:?} was accepted");
        }
        assert_eq!(parse_time("1969-12-31"), Err("\"1969-12-31\" is before 1970-01-01T00:00:00Z".to_owned()));
        let far = parse_time("2026-12-31T00:00:00+25:00").unwrap_err();
        assert!(far.contains("offsets run from -12:00 to +14:00"), "{far}");
        let local = parse_time("2026-12-31T00:00:00").unwrap_err();
        assert!(local.contains("has no UTC offset"), "{local}");
    }

    #[test]
    fn line_quantities_parse() {
        assert_eq!(parse_line_quantity("1=4"), Ok(LineQuantity { line: 1, quantity: 4 }));
        assert!(parse_line_quantity("1").is_err());
        assert!(parse_line_quantity("a=4").is_err());
    }
}
