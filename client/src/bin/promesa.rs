//! `promesa`: the operator's command-line client.
//!
//! Each run connects to a server, sends the requests of one command and prints the
//! result: aligned text by default, one JSON document with `--json`. On failure it
//! prints one line `promesa: <code>: <message>` to stderr and exits with 2 for a usage
//! error and 1 otherwise. The code is the name of the server's error code
//! (docs/protocol.md), or one of the client's own: `usage`, `invalid_csv`, `io`,
//! `setup`, `connection`, `timeout` and `malformed_response`.

use std::collections::HashMap;
use std::fmt::Display;
use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::error::ErrorKind;
use clap::{Args, Parser, Subcommand, ValueEnum};
use promesa_client::{ADMIN_TOKEN_FILE, Client, ClientConfig, ClientError, DEV_CERT_FILE, TIMEOUT_MS_DEFAULT};
use promesa_protocol::limits::ROWS_PER_REQUEST_MAX;
use promesa_protocol::{
    ErrorCode, LineQuantity, LocationRow, PositionAvailability, Request, ReserveLine, Response, StockRow, Units,
};
use serde::Serialize;

/// Server address used when neither `--addr` nor `PROMESA_ADDR` is set.
const ADDR_DEFAULT: &str = "127.0.0.1:7400";
/// Environment variable for the server address.
const ADDR_VARIABLE: &str = "PROMESA_ADDR";
/// Environment variable for the PEM file of the certificate to trust.
const CA_VARIABLE: &str = "PROMESA_CA";
/// Environment variable for the token.
const TOKEN_VARIABLE: &str = "PROMESA_TOKEN";
/// Max bad CSV rows listed in one error message. The message also gives the count of all.
const BAD_ROWS_LISTED_MAX: usize = 20;

/// Promesa's command-line client: locations, stock, availability and reservations.
///
/// Connection settings come from flags, else from the environment variables
/// PROMESA_ADDR, PROMESA_CA and PROMESA_TOKEN. For a server on this machine that
/// generated its own certificate and admin token, `--server-data-dir DIR` reads both
/// from its data folder.
#[derive(Parser)]
#[command(name = "promesa", version)]
struct Cli {
    /// Print the result as one JSON document instead of aligned text.
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    connection: ConnectionArguments,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
#[command(next_help_heading = "Connection")]
struct ConnectionArguments {
    /// Server address [env: PROMESA_ADDR] [default: 127.0.0.1:7400].
    #[arg(long, global = true, value_name = "HOST:PORT")]
    addr: Option<String>,
    /// PEM file of the certificate or CA to trust [env: PROMESA_CA].
    #[arg(long, global = true, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Token [env: PROMESA_TOKEN]. Prefer the variable: other users can read the
    /// command line of a running process.
    #[arg(long, global = true, value_name = "TOKEN")]
    token: Option<String>,
    /// Data folder of a local server: trust its development certificate (dev-cert.pem)
    /// and use its generated admin token (admin.token) unless --ca or --token is given.
    /// Takes precedence over PROMESA_CA and PROMESA_TOKEN.
    #[arg(long, global = true, value_name = "DIR")]
    server_data_dir: Option<PathBuf>,
    /// Name the server's certificate must carry [default: the host of the address].
    #[arg(long, global = true, value_name = "NAME")]
    server_name: Option<String>,
    /// Time to wait for the connection and for each response, in milliseconds.
    #[arg(long, global = true, value_name = "MS", default_value_t = TIMEOUT_MS_DEFAULT)]
    timeout_ms: u64,
}

#[derive(Subcommand)]
enum Command {
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
enum LocationCommand {
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
enum StockCommand {
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
enum ChannelCommand {
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
struct ReserveArguments {
    /// Reservation id: a retry with the same id and lines returns the first outcome.
    #[arg(long)]
    id: String,
    /// Units of a SKU at a location, as SKU@LOCATION=QUANTITY. Repeat for more lines.
    /// The location code must not contain '@'.
    #[arg(long = "line", value_name = "SKU@LOC=QTY", required = true, value_parser = parse_reserve_line)]
    lines: Vec<ReserveLine>,
    /// Time-to-live of the hold: a whole number with a unit ms, s, m, h or d.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = parse_duration_ms)]
    ttl: u64,
    /// Hold what is available instead of all lines or none.
    #[arg(long)]
    partial: bool,
    /// Channel code [default: the server's default channel].
    #[arg(long)]
    channel: Option<String>,
}

#[derive(Args)]
struct OperationArguments {
    /// Reservation id.
    id: String,
    /// Units of one line, as INDEX=QUANTITY with the 0-based line index of the reserve.
    /// Repeat for more lines. Without it, every unit the operation applies to.
    #[arg(long = "line", value_name = "INDEX=QTY", value_parser = parse_line_quantity)]
    lines: Vec<LineQuantity>,
    /// Operation id, unique within the reservation: a retry with the same id is
    /// applied once [default: a random id].
    #[arg(long, value_name = "ID")]
    op_id: Option<String>,
}

#[derive(Args)]
#[group(required = true, multiple = false)]
struct NewDeadline {
    /// New deadline, milliseconds since the Unix epoch.
    #[arg(long, value_name = "MS")]
    deadline_ms: Option<u64>,
    /// New deadline as a duration after the server's current time, such as 10m.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_ms)]
    by: Option<u64>,
}

#[derive(Clone, Copy, ValueEnum)]
enum ReleaseFrom {
    /// Held units first, then allocated ones.
    HeldFirst,
    /// Held units only.
    Held,
    /// Allocated units only.
    Allocated,
}

impl ReleaseFrom {
    fn code(self) -> u8 {
        match self {
            ReleaseFrom::HeldFirst => 0,
            ReleaseFrom::Held => 1,
            ReleaseFrom::Allocated => 2,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum AdjustReason {
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
    fn code(self) -> u8 {
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
struct Position {
    sku: String,
    location: String,
}

// ---------------------------------------------------------------------------------
// Failures and exit codes.

/// A failed run: the code name and message of the one error line, and the exit code.
#[derive(Debug)]
struct Failure {
    code: String,
    message: String,
    exit: u8,
}

impl Failure {
    fn new(code: &str, message: impl Into<String>) -> Failure {
        Failure { code: code.to_owned(), message: message.into(), exit: 1 }
    }

    fn usage(message: impl Into<String>) -> Failure {
        Failure { exit: 2, ..Failure::new("usage", message) }
    }

    /// Returns the failure for an error response or a refused hello, named by its error code.
    fn server(code: u16, message: &str) -> Failure {
        let name = match ErrorCode::from_number(code) {
            Some(known) => known.name().to_owned(),
            None => format!("error_{code}"),
        };
        Failure { code: name, message: message.to_owned(), exit: 1 }
    }

    fn client(error: ClientError, addr: SocketAddr) -> Failure {
        match error {
            ClientError::Setup(message) => Failure::new("setup", message),
            ClientError::Connection(message) => {
                Failure::new("connection", format!("connection to {addr} failed: {message}"))
            }
            ClientError::Refused { code, message } => {
                Failure::server(code, &format!("the server refused the connection: {message}"))
            }
            ClientError::Timeout { timeout_ms } => {
                Failure::new("timeout", format!("no response from {addr} within {timeout_ms} ms; see --timeout-ms"))
            }
            ClientError::Malformed(message) => Failure::new("malformed_response", message),
            other => Failure::new("connection", other.to_string()),
        }
    }

    fn unexpected(expected: &str, response: &Response) -> Failure {
        let mut got = format!("{response:?}");
        got.truncate(200);
        Failure::new("malformed_response", format!("expected a {expected} response, got {got}"))
    }

    /// Prints the one error line, with line breaks in the message replaced by spaces.
    fn print(&self) {
        let message = self.message.replace(['\n', '\r'], " ");
        eprintln!("promesa: {}: {message}", self.code);
    }
}

// ---------------------------------------------------------------------------------
// Entry point.

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return exit_on_parse_error(&error),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            Failure::new("setup", format!("failed to start the async runtime: {error}")).print();
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(output) => {
            print_output(&output);
            ExitCode::SUCCESS
        }
        Err(failure) => {
            failure.print();
            ExitCode::from(failure.exit)
        }
    }
}

/// Prints help or the version as clap does, and any other parse error as one line.
fn exit_on_parse_error(error: &clap::Error) -> ExitCode {
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = error.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = error.print();
            ExitCode::from(2)
        }
        _ => {
            Failure::usage(one_line_parse_error(&error.render().to_string())).print();
            ExitCode::from(2)
        }
    }
}

/// Joins the first paragraph of clap's rendered error into one line and, when clap
/// printed a `Usage:` line, points to the help of the subcommand it names.
fn one_line_parse_error(rendered: &str) -> String {
    let paragraph: Vec<&str> = rendered.lines().map(str::trim).take_while(|line| !line.is_empty()).collect();
    let joined = paragraph.join(" ");
    let message = joined.strip_prefix("error: ").unwrap_or(&joined);
    let command_path: Vec<&str> = rendered
        .lines()
        .find_map(|line| line.trim_start().strip_prefix("Usage: "))
        .map(|usage| usage.split_whitespace().take_while(|word| !word.starts_with(['-', '<', '[', '.'])).collect())
        .unwrap_or_default();
    if command_path.is_empty() {
        return message.to_owned();
    }
    format!("{message}; see `{} --help`", command_path.join(" "))
}

fn print_output(output: &str) {
    let mut stdout = std::io::stdout().lock();
    let written = stdout.write_all(output.as_bytes()).and_then(|()| stdout.flush());
    // A reader that stops early, such as `head`, is not an error of the command.
    if let Err(error) = written
        && error.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("promesa: io: failed to write the output: {error}");
    }
}

/// Runs one command and returns its output.
async fn run(cli: Cli) -> Result<String, Failure> {
    let config = client_config(&cli.connection)?;
    // Input files are read and checked before connecting, so a bad file sends nothing.
    let prepared = prepare(cli.command)?;

    let client = connect(&config).await?;
    let result = execute(&client, config.addr, prepared, cli.json).await;
    client.close().await;
    result
}

// ---------------------------------------------------------------------------------
// Connection settings.

fn client_config(arguments: &ConnectionArguments) -> Result<ClientConfig, Failure> {
    let (addr_text, addr_source) = match (&arguments.addr, environment(ADDR_VARIABLE)) {
        (Some(addr), _) => (addr.clone(), "--addr"),
        (None, Some(addr)) => (addr, ADDR_VARIABLE),
        (None, None) => (ADDR_DEFAULT.to_owned(), "the default address"),
    };
    let addr = resolve(&addr_text).map_err(|reason| {
        Failure::usage(format!("invalid server address {addr_text:?} from {addr_source}: {reason}"))
    })?;
    let server_name = match &arguments.server_name {
        Some(name) => name.clone(),
        None => host_of(&addr_text).to_owned(),
    };

    let data_dir = arguments.server_data_dir.as_deref();
    let ca = match (&arguments.ca, data_dir, environment(CA_VARIABLE)) {
        (Some(ca), _, _) => ca.clone(),
        (None, Some(dir), _) => dir.join(DEV_CERT_FILE),
        (None, None, Some(ca)) => PathBuf::from(ca),
        (None, None, None) => {
            return Err(Failure::usage(format!(
                "no certificate to trust: pass --ca FILE or set {CA_VARIABLE}, \
                 or pass --server-data-dir DIR for a local server"
            )));
        }
    };
    let token = match (&arguments.token, data_dir, environment(TOKEN_VARIABLE)) {
        (Some(token), _, _) => token.trim().to_owned(),
        (None, Some(dir), _) => read_token(dir)?,
        (None, None, Some(token)) => token.trim().to_owned(),
        (None, None, None) => {
            return Err(Failure::usage(format!(
                "no token: pass --token TOKEN or set {TOKEN_VARIABLE}, or pass --server-data-dir DIR for a local server"
            )));
        }
    };
    if token.is_empty() {
        return Err(Failure::usage(format!("the token is empty: pass --token TOKEN or set {TOKEN_VARIABLE}")));
    }

    Ok(ClientConfig { addr, server_name, ca, token, streams: 1, timeout_ms: arguments.timeout_ms })
}

/// Returns the variable's value, or `None` when it is unset or empty.
fn environment(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.trim().is_empty())
}

fn read_token(data_dir: &Path) -> Result<String, Failure> {
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    let token = std::fs::read_to_string(&path).map_err(|error| {
        Failure::new("setup", format!("failed to read the admin token {}: {error}", path.display()))
    })?;
    Ok(token.trim().to_owned())
}

/// Resolves `HOST:PORT` to the first address the system returns.
fn resolve(addr: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = addr.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let mut found = addr.to_socket_addrs().map_err(|error| format!("{error}; expected HOST:PORT"))?;
    found.next().ok_or_else(|| "the host has no address".to_owned())
}

/// Returns the host part of `HOST:PORT`, without the brackets of an IPv6 address.
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _port)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

async fn connect(config: &ClientConfig) -> Result<Client, Failure> {
    // The library bounds each call by the timeout but not the handshake, which
    // otherwise waits for QUIC's idle timeout when no server responds.
    let timeout = Duration::from_millis(config.timeout_ms);
    match tokio::time::timeout(timeout, Client::connect(config)).await {
        Ok(connected) => connected.map_err(|error| Failure::client(error, config.addr)),
        Err(_) => Err(Failure::new(
            "timeout",
            format!(
                "no connection to {} within {} ms; check that the server runs there, or raise --timeout-ms",
                config.addr, config.timeout_ms
            ),
        )),
    }
}

/// Sends one request and returns its response, turning an error response into a failure.
async fn call(client: &Client, addr: SocketAddr, request: Request) -> Result<Response, Failure> {
    match client.call_one(request).await {
        Ok(Response::Error { code, message }) => Err(Failure::server(code, &message)),
        Ok(response) => Ok(response),
        Err(error) => Err(Failure::client(error, addr)),
    }
}

// ---------------------------------------------------------------------------------
// Argument values.

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

fn random_id(prefix: &str) -> String {
    format!("{prefix}-{:032x}", rand::random::<u128>())
}

// ---------------------------------------------------------------------------------
// CSV files.

/// A CSV file read into memory, with its header checked: the index of each known column.
struct CsvFile {
    path: PathBuf,
    bytes: Vec<u8>,
    columns: HashMap<&'static str, usize>,
}

/// Bad rows of a CSV file: the first few messages and the count of all.
#[derive(Default)]
struct BadRows {
    listed: Vec<String>,
    count: usize,
}

impl BadRows {
    fn add(&mut self, line: u64, message: impl Display) {
        self.count += 1;
        if self.listed.len() < BAD_ROWS_LISTED_MAX {
            self.listed.push(format!("line {line}: {message}"));
        }
    }

    fn into_result(self, path: &Path) -> Result<(), Failure> {
        if self.count == 0 {
            return Ok(());
        }
        let more = if self.count > self.listed.len() { "; ..." } else { "" };
        let rows = if self.count == 1 { "row" } else { "rows" };
        Err(Failure::new(
            "invalid_csv",
            format!("{}: {} bad {rows}, nothing sent: {}{more}", path.display(), self.count, self.listed.join("; ")),
        ))
    }
}

impl CsvFile {
    /// Reads `path` and checks that its header has every required column, no unknown
    /// column and no column twice.
    fn open(path: &Path, required: &[&'static str], optional: &[&'static str]) -> Result<CsvFile, Failure> {
        let bytes = std::fs::read(path)
            .map_err(|error| Failure::new("io", format!("failed to read {}: {error}", path.display())))?;
        let mut reader = csv_reader(&bytes);
        let header = reader
            .headers()
            .map_err(|error| Failure::new("invalid_csv", format!("{} line 1: {error}", path.display())))?
            .clone();
        let expected = format!("the header needs {} and may have {}", required.join(","), optional.join(","));

        let mut columns = HashMap::new();
        for (index, name) in header.iter().enumerate() {
            let Some(known) = required.iter().chain(optional).find(|known| **known == name) else {
                return Err(Failure::new(
                    "invalid_csv",
                    format!("{} line 1: unknown column {name:?}; {expected}", path.display()),
                ));
            };
            if columns.insert(*known, index).is_some() {
                return Err(Failure::new(
                    "invalid_csv",
                    format!("{} line 1: column {name:?} appears twice", path.display()),
                ));
            }
        }
        if let Some(missing) = required.iter().find(|name| !columns.contains_key(*name)) {
            return Err(Failure::new(
                "invalid_csv",
                format!("{} line 1: missing column {missing:?}; {expected}", path.display()),
            ));
        }
        Ok(CsvFile { path: path.to_owned(), bytes, columns })
    }

    /// Calls `parse` with each record after the header. Records the CSV reader cannot
    /// split, and records `parse` rejects, are counted in `bad` with their line number.
    fn for_each_record(
        &self,
        bad: &mut BadRows,
        mut parse: impl FnMut(&Record<'_>) -> Result<(), String>,
    ) -> Result<(), Failure> {
        let mut reader = csv_reader(&self.bytes);
        let mut lines = LineCounter::new(&self.bytes);
        let mut record = csv::StringRecord::new();
        loop {
            match reader.read_record(&mut record) {
                Ok(false) => return Ok(()),
                Ok(true) => {
                    let line = lines.line_of(record.position());
                    let row = Record { line, fields: &record, columns: &self.columns };
                    if let Err(message) = parse(&row) {
                        bad.add(line, message);
                    }
                }
                Err(error) => {
                    let line = lines.line_of(error.position());
                    match error.kind() {
                        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
                            bad.add(line, format!("{len} fields where the header has {expected_len}"));
                        }
                        csv::ErrorKind::Utf8 { .. } => bad.add(line, "the row is not valid UTF-8"),
                        _ => {
                            return Err(Failure::new(
                                "invalid_csv",
                                format!("{} line {line}: {error}", self.path.display()),
                            ));
                        }
                    }
                }
            }
        }
    }
}

fn csv_reader(bytes: &[u8]) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(bytes)
}

/// Finds the line number of a record from its byte offset.
///
/// The csv crate's own `Position::line` (csv 1.4) is not the file's line: it does not
/// count the empty lines it skips, counts a CRLF line end as less than a line, and
/// does not count bare CR line ends. Its byte offset is reliable but may point at the
/// line ends before the record, so the counter skips those first.
struct LineCounter<'a> {
    bytes: &'a [u8],
    offset: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(bytes: &'a [u8]) -> LineCounter<'a> {
        LineCounter { bytes, offset: 0, line: 1 }
    }

    /// Returns the line of the record at `position`. Positions must come in file order.
    fn line_of(&mut self, position: Option<&csv::Position>) -> u64 {
        let Some(position) = position else { return self.line };
        let mut start = (position.byte() as usize).min(self.bytes.len());
        while start < self.bytes.len() && matches!(self.bytes[start], b'\r' | b'\n') {
            start += 1;
        }
        while self.offset < start {
            let line_end = match self.bytes[self.offset] {
                b'\n' => true,
                b'\r' => self.bytes.get(self.offset + 1) != Some(&b'\n'),
                _ => false,
            };
            self.line += u64::from(line_end);
            self.offset += 1;
        }
        self.line
    }
}

/// One CSV record with its line number and the column indexes of its file.
struct Record<'a> {
    line: u64,
    fields: &'a csv::StringRecord,
    columns: &'a HashMap<&'static str, usize>,
}

impl Record<'_> {
    /// Returns the column's value, or `None` when the column is absent or the cell empty.
    fn optional(&self, column: &str) -> Option<&str> {
        let index = *self.columns.get(column)?;
        self.fields.get(index).filter(|value| !value.is_empty())
    }

    fn required(&self, column: &str) -> Result<&str, String> {
        self.optional(column).ok_or_else(|| format!("{column} is empty"))
    }
}

fn parse_number<T: std::str::FromStr>(column: &str, value: &str, expected: &str) -> Result<T, String> {
    value.parse().map_err(|_| format!("{column} {value:?} is not {expected}"))
}

fn parse_kind(value: &str) -> Result<u8, String> {
    match value {
        "warehouse" | "0" => Ok(0),
        "store" | "1" => Ok(1),
        "dark_store" | "2" => Ok(2),
        "drop_ship" | "3" => Ok(3),
        _ => Err(format!("kind {value:?} is not known; expected warehouse, store, dark_store, drop_ship or 0 to 3")),
    }
}

/// Parses fulfilment methods: a `|`-separated list of names, or the bits as a number.
fn parse_methods(value: &str) -> Result<u8, String> {
    const METHODS_MAX: u8 = 0x1f;
    if value.bytes().all(|byte| byte.is_ascii_digit()) {
        return match value.parse::<u8>() {
            Ok(bits) if bits <= METHODS_MAX => Ok(bits),
            _ => Err(format!("methods {value} has unknown bits; expected at most {METHODS_MAX}")),
        };
    }
    let mut bits = 0;
    for name in value.split('|').map(str::trim) {
        bits |= match name {
            "ship" => 1,
            "pickup" => 2,
            "curbside" => 4,
            "drop_ship" => 8,
            "same_day" => 16,
            _ => {
                return Err(format!(
                    "method {name:?} is not known; expected ship, pickup, curbside, drop_ship or same_day"
                ));
            }
        };
    }
    Ok(bits)
}

fn parse_active(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err(format!("active {value:?} is not true or false")),
    }
}

/// Rows of a CSV file with the line number of each.
struct Rows<T> {
    lines: Vec<u64>,
    rows: Vec<T>,
}

fn read_locations(path: &Path) -> Result<Rows<LocationRow>, Failure> {
    let file = CsvFile::open(path, &["code", "kind", "lat", "lon"], &["methods", "daily_capacity", "active"])?;
    let mut read = Rows { lines: Vec::new(), rows: Vec::new() };
    let mut bad = BadRows::default();
    file.for_each_record(&mut bad, |record| {
        let row = LocationRow {
            code: record.required("code")?.to_owned(),
            kind: parse_kind(record.required("kind")?)?,
            lat: parse_number("lat", record.required("lat")?, "a number of degrees")?,
            lon: parse_number("lon", record.required("lon")?, "a number of degrees")?,
            methods: record.optional("methods").map_or(Ok(1), parse_methods)?,
            daily_capacity: record
                .optional("daily_capacity")
                .map_or(Ok(0), |value| parse_number("daily_capacity", value, "a whole number of orders"))?,
            active: record.optional("active").map_or(Ok(true), parse_active)?,
        };
        read.lines.push(record.line);
        read.rows.push(row);
        Ok(())
    })?;
    bad.into_result(path)?;
    Ok(read)
}

fn read_stock(path: &Path) -> Result<Rows<StockRow>, Failure> {
    let file = CsvFile::open(path, &["sku", "location", "on_hand"], &["safety_stock"])?;
    let mut read = Rows { lines: Vec::new(), rows: Vec::new() };
    let mut bad = BadRows::default();
    file.for_each_record(&mut bad, |record| {
        let units = "a whole number of units";
        let row = StockRow {
            sku: record.required("sku")?.to_owned(),
            location: record.required("location")?.to_owned(),
            on_hand: parse_number("on_hand", record.required("on_hand")?, units)?,
            safety_stock: record
                .optional("safety_stock")
                .map(|value| parse_number("safety_stock", value, units))
                .transpose()?,
        };
        read.lines.push(record.line);
        read.rows.push(row);
        Ok(())
    })?;
    bad.into_result(path)?;
    Ok(read)
}

/// Splits rows into batches of at most `ROWS_PER_REQUEST_MAX` rows on consecutive
/// lines. The server numbers a batch's rows from its first line on, so a gap in the
/// file (an empty line, a quoted field over several lines) starts a new batch.
fn batches(lines: &[u64]) -> Vec<std::ops::Range<usize>> {
    let mut batches = Vec::new();
    let mut start = 0;
    for index in 1..=lines.len() {
        let full = index - start == ROWS_PER_REQUEST_MAX;
        let gap = index < lines.len() && lines[index] != lines[index - 1] + 1;
        if index == lines.len() || full || gap {
            batches.push(start..index);
            start = index;
        }
    }
    batches
}

// ---------------------------------------------------------------------------------
// Commands.

/// A command with its input files read and checked.
enum Prepared {
    Command(Command),
    Locations { path: PathBuf, read: Rows<LocationRow> },
    Stock { path: PathBuf, read: Rows<StockRow> },
}

fn prepare(command: Command) -> Result<Prepared, Failure> {
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

async fn execute(client: &Client, addr: SocketAddr, prepared: Prepared, json: bool) -> Result<String, Failure> {
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
        // NOTE: the protocol has no request to drop a staged import, so rows staged
        // before a failure here stay on the server and are never applied.
        match call(client, addr, request).await? {
            Response::ImportStaged { rows_staged } => eprintln!(
                "staged lines {} to {} ({rows_staged} of {} rows)",
                lines[0],
                lines[lines.len() - 1],
                read.rows.len()
            ),
            other => return Err(Failure::unexpected("ImportStaged", &other)),
        }
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

// ---------------------------------------------------------------------------------
// Output: one report type per command, serialized with `--json` and written as
// aligned text otherwise.

/// A command's result.
trait Report: Serialize {
    /// Writes the result as aligned text, one fact per line.
    fn write_text(&self, out: &mut String);
}

fn render(report: &impl Report, json: bool) -> String {
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
struct Facts(Vec<(&'static str, String)>);

impl Facts {
    fn add(&mut self, label: &'static str, value: impl Display) -> &mut Facts {
        self.0.push((label, value.to_string()));
        self
    }

    fn write(&self, out: &mut String) {
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

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

/// Formats milliseconds since the Unix epoch as an ISO 8601 UTC time.
fn format_time_ms(ms: u64) -> String {
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
struct PingReport {
    server_now_ms: u64,
    role: &'static str,
    round_trip_us: u64,
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
struct LocationImportReport {
    rows: u64,
    created: u64,
    replaced: u64,
}

impl Report for LocationImportReport {
    fn write_text(&self, out: &mut String) {
        Facts::default().add("rows", self.rows).add("created", self.created).add("replaced", self.replaced).write(out);
    }
}

#[derive(Serialize)]
struct StockImportReport {
    import_id: String,
    rows: u64,
    positions_created: u64,
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
struct StockReport {
    sku: String,
    location: String,
    previous_on_hand: u64,
    on_hand: u64,
    /// The safety stock set by `stock safety`; other commands leave it out.
    #[serde(skip_serializing_if = "Option::is_none")]
    safety_stock: Option<u64>,
    in_shortage: bool,
    replayed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    op_id: Option<String>,
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
struct ChannelReport {
    channel: String,
    may_sell_safety_stock: bool,
    created: bool,
}

impl Report for ChannelReport {
    fn write_text(&self, out: &mut String) {
        Facts::default()
            .add("channel", &self.channel)
            .add("may_sell_safety_stock", yes_no(self.may_sell_safety_stock))
            .add("created", yes_no(self.created))
            .write(out);
    }
}

#[derive(Serialize)]
struct AtpReport {
    sku: String,
    channel: String,
    locations: Vec<AtpLocation>,
    /// Sum of the positive ATP over the locations.
    total_atp: u64,
}

#[derive(Serialize)]
struct AtpLocation {
    location: String,
    on_hand: u64,
    reserved: u64,
    allocated: u64,
    safety_stock: u64,
    atp: i64,
    in_shortage: bool,
}

impl AtpLocation {
    fn new(location: String, read: &PositionAvailability) -> AtpLocation {
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
struct ReserveReport {
    reservation_id: String,
    replayed: bool,
    deadline_ms: u64,
    lines: Vec<ReservedLine>,
}

#[derive(Serialize)]
struct ReservedLine {
    line: u32,
    sku: String,
    location: String,
    status: String,
    requested: u64,
    held: u64,
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
struct OperatedReport {
    reservation_id: String,
    /// `confirm`, `release`, `fulfil` or `extend`.
    operation: &'static str,
    op_id: String,
    replayed: bool,
    /// Reservation state after the operation.
    state: String,
    deadline_ms: u64,
    /// Units moved per line, in line order.
    moved: Vec<u64>,
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
struct ReservationReport {
    reservation_id: String,
    channel: String,
    partial: bool,
    state: String,
    deadline_ms: u64,
    created_ms: u64,
    ended_ms: Option<u64>,
    lines: Vec<ReservationLine>,
}

#[derive(Serialize)]
struct ReservationLine {
    line: u32,
    sku: String,
    location: String,
    /// Status at reserve time.
    status: String,
    requested: u64,
    held: u64,
    allocated: u64,
    fulfilled: u64,
    released: u64,
}

impl Report for ReservationReport {
    fn write_text(&self, out: &mut String) {
        Facts::default()
            .add("reservation", &self.reservation_id)
            .add("channel", &self.channel)
            .add("partial", yes_no(self.partial))
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
struct StatsReport(Vec<(String, u64)>);

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

    #[test]
    fn methods_take_names_or_bits() {
        assert_eq!(parse_methods("ship"), Ok(1));
        assert_eq!(parse_methods("ship|pickup|same_day"), Ok(19));
        assert_eq!(parse_methods("31"), Ok(31));
        assert!(parse_methods("32").is_err());
        assert!(parse_methods("ship|teleport").is_err());
    }

    #[test]
    fn batches_break_at_size_and_gaps() {
        assert_eq!(batches(&[2, 3, 4]), vec![0..3]);
        assert_eq!(batches(&[2, 3, 5, 6]), vec![0..2, 2..4]);
        let long: Vec<u64> = (2..2 + ROWS_PER_REQUEST_MAX as u64 + 1).collect();
        assert_eq!(batches(&long), vec![0..ROWS_PER_REQUEST_MAX, ROWS_PER_REQUEST_MAX..ROWS_PER_REQUEST_MAX + 1]);
        assert!(batches(&[]).is_empty());
    }

    /// Returns the line number of each record of `text` after the header.
    fn record_lines(text: &str) -> Vec<u64> {
        let mut reader = csv_reader(text.as_bytes());
        let mut lines = LineCounter::new(text.as_bytes());
        let mut record = csv::StringRecord::new();
        let mut found = Vec::new();
        while reader.read_record(&mut record).unwrap() {
            found.push(lines.line_of(record.position()));
        }
        found
    }

    #[test]
    fn csv_lines_count_every_line_end() {
        assert_eq!(record_lines("a,b\n1,2\n\n3,4\n\n\n5,6\n"), vec![2, 4, 7]);
        assert_eq!(record_lines("a,b\r\n1,2\r\n\r\n3,4\r\n"), vec![2, 4]);
        assert_eq!(record_lines("a,b\r1,2\r\r3,4\r"), vec![2, 4]);
        assert_eq!(record_lines("a,b\n\"x\ny\",2\n3,4\n"), vec![2, 4]);
        assert_eq!(record_lines("\u{feff}a,b\n1,2\n3,4"), vec![2, 3]);
    }

    #[test]
    fn times_format_as_utc() {
        assert_eq!(format_time_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_time_ms(1_767_225_600_123), "2026-01-01T00:00:00.123Z");
        assert_eq!(format_time_ms(951_825_600_000), "2000-02-29T12:00:00.000Z");
    }

    #[test]
    fn hosts_lose_port_and_brackets() {
        assert_eq!(host_of("127.0.0.1:7400"), "127.0.0.1");
        assert_eq!(host_of("[::1]:7400"), "::1");
        assert_eq!(host_of("promesa.internal:7400"), "promesa.internal");
    }

    #[test]
    fn parse_errors_fit_one_line() {
        let rendered = "error: unexpected argument '--bogus' found\n\nUsage: promesa reserve [OPTIONS] --id <ID>\n";
        assert_eq!(one_line_parse_error(rendered), "unexpected argument '--bogus' found; see `promesa reserve --help`");
        let rendered = "error: the following required arguments were not provided:\n  --line <SKU@LOC=QTY>\n\n\
                        Usage: promesa reserve --id <ID> --line <SKU@LOC=QTY>\n";
        assert_eq!(
            one_line_parse_error(rendered),
            "the following required arguments were not provided: --line <SKU@LOC=QTY>; see `promesa reserve --help`"
        );
        let rendered = "error: invalid value 'A' for '<POSITION>': expected SKU@LOCATION\n\n\
                        For more information, try '--help'.\n";
        assert_eq!(one_line_parse_error(rendered), "invalid value 'A' for '<POSITION>': expected SKU@LOCATION");
    }
}
