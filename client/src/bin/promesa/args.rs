//! Command-line arguments: the clap definitions of the flags and subcommands, and the
//! parsers of argument values such as `SKU@LOCATION` and durations.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use promesa_client::TIMEOUT_MS_DEFAULT;
use promesa_protocol::{LineQuantity, ReserveLine};

/// Promesa's command-line client: locations, stock, availability and reservations.
///
/// Connection settings come from flags, else from the environment variables
/// PROMESA_ADDR, PROMESA_CA and PROMESA_TOKEN. For a server on this machine that
/// generated its own certificate and admin token, `--server-data-dir DIR` reads both
/// from its data folder.
#[derive(Parser)]
#[command(name = "promesa", version)]
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
    /// Print the availability (ATP) of a SKU at one, some or all locations.
    Atp {
        /// SKU code.
        sku: String,
        /// Location code, repeatable. Without it, every location of the SKU.
        #[arg(long = "location", value_name = "LOC")]
        locations: Vec<String>,
        /// Channel code [default: the server's default channel].
        #[arg(long)]
        channel: Option<String>,
    },
    /// Hold units until a deadline.
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
    /// false [default: true]. Rows are sent in requests of at most 10,000, and each
    /// request is applied on its own.
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
    },
}

#[derive(Args)]
pub(crate) struct ReserveArguments {
    /// Reservation id: a retry with the same id and lines returns the first outcome.
    #[arg(long)]
    pub(crate) id: String,
    /// Units of a SKU at a location, as SKU@LOCATION=QUANTITY. Repeat for more lines.
    /// The location code must not contain '@'.
    #[arg(long = "line", value_name = "SKU@LOC=QTY", required = true, value_parser = parse_reserve_line)]
    pub(crate) lines: Vec<ReserveLine>,
    /// Time-to-live of the hold: a whole number with a unit ms, s, m, h or d.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = parse_duration_ms)]
    pub(crate) ttl: u64,
    /// Hold what is available instead of all lines or none.
    #[arg(long)]
    pub(crate) partial: bool,
    /// Channel code [default: the server's default channel].
    #[arg(long)]
    pub(crate) channel: Option<String>,
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

fn parse_reserve_line(text: &str) -> Result<ReserveLine, String> {
    let Some((position, quantity)) = text.rsplit_once('=') else {
        return Err("expected SKU@LOCATION=QUANTITY".to_owned());
    };
    let position = parse_position(position).map_err(|_| "expected SKU@LOCATION=QUANTITY".to_owned())?;
    let quantity = quantity.parse().map_err(|_| format!("quantity {quantity:?} is not a whole number of units"))?;
    Ok(ReserveLine { sku: position.sku, location: position.location, quantity })
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
    fn reserve_lines_split_at_last_separators() {
        let line = parse_reserve_line("SKU@A@MX-01=3").unwrap();
        assert_eq!((line.sku.as_str(), line.location.as_str(), line.quantity), ("SKU@A", "MX-01", 3));
        assert!(parse_reserve_line("SKU@MX-01").is_err());
        assert!(parse_reserve_line("SKU=3").is_err());
        assert!(parse_reserve_line("@MX-01=3").is_err());
        assert!(parse_reserve_line("SKU@MX-01=-3").is_err());
    }

    #[test]
    fn line_quantities_parse() {
        assert_eq!(parse_line_quantity("1=4"), Ok(LineQuantity { line: 1, quantity: 4 }));
        assert!(parse_line_quantity("1").is_err());
        assert!(parse_line_quantity("a=4").is_err());
    }
}
