//! CSV files of locations, stock and postal codes: header checks, row parsing with the
//! file's line numbers, and the split of rows into request batches.

use std::collections::HashMap;
use std::fmt::Display;
use std::path::{Path, PathBuf};

use promesa_protocol::limits::POSTAL_CODE_LEN_MAX;
use promesa_protocol::{
    LocationRouting, LocationRow, LocationWithRouting, METHOD_COUNT, MethodTerms, NO_CUTOFF_MINUTE, PostalCodeRow,
    StockRow,
};

use crate::errors::Failure;

/// Max bad CSV rows listed in one error message. The message also gives the count of all.
const BAD_ROWS_LISTED_MAX: usize = 20;

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

fn parse_bool(column: &str, value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err(format!("{column} {value:?} is not true or false")),
    }
}

/// Parses a local time `HH:MM`, from 00:00 to 24:00, into the minute of the day;
/// 24:00 means no cut-off.
fn parse_cutoff(value: &str) -> Result<u16, String> {
    let invalid = || format!("cutoff {value:?} is not a local time HH:MM from 00:00 to 24:00");
    let (hours, minutes) = value.split_once(':').ok_or_else(invalid)?;
    let two_digits = |part: &str| part.len() == 2 && part.bytes().all(|byte| byte.is_ascii_digit());
    if !two_digits(hours) || !two_digits(minutes) {
        return Err(invalid());
    }
    let (hours, minutes): (u16, u16) = (hours.parse().map_err(|_| invalid())?, minutes.parse().map_err(|_| invalid())?);
    let minute = hours * 60 + minutes;
    if minutes >= 60 || minute > NO_CUTOFF_MINUTE {
        return Err(invalid());
    }
    Ok(minute)
}

/// Reads the optional routing columns of a location row; absent or empty cells take
/// the values of `LocationRouting::default()`.
fn parse_routing(record: &Record<'_>) -> Result<LocationRouting, String> {
    let defaults = LocationRouting::default();
    let number = |column: &str, expected: &str, default: u32| {
        record.optional(column).map_or(Ok(default), |value| parse_number(column, value, expected))
    };
    let handling_minutes = number("handling_minutes", "a whole number of minutes", 0)?;
    let cutoff_minute = record.optional("cutoff").map_or(Ok(NO_CUTOFF_MINUTE), parse_cutoff)?;
    Ok(LocationRouting {
        utc_offset_minutes: record.optional("utc_offset_minutes").map_or(Ok(0), |value| {
            parse_number("utc_offset_minutes", value, "a whole number of minutes from -720 to 840")
        })?,
        pickup_only: record.optional("pickup_only").map_or(Ok(false), |value| parse_bool("pickup_only", value))?,
        terms: [MethodTerms { handling_minutes, cutoff_minute }; METHOD_COUNT],
        shipment_cost_cents: number("shipment_cost_cents", "a whole number of cents", defaults.shipment_cost_cents)?,
        km_cost_cents: number("km_cost_cents", "a whole number of cents", defaults.km_cost_cents)?,
        speed_km_per_day: number("speed_km_per_day", "a whole number of kilometres", defaults.speed_km_per_day)?,
        transit_bands: Vec::new(),
    })
}

/// Rows of a CSV file with the line number of each.
pub(crate) struct Rows<T> {
    pub(crate) lines: Vec<u64>,
    pub(crate) rows: Vec<T>,
}

/// Optional columns of a location file.
const LOCATION_OPTIONAL_COLUMNS: &[&str] = &[
    "methods",
    "daily_capacity",
    "active",
    "utc_offset_minutes",
    "pickup_only",
    "handling_minutes",
    "cutoff",
    "shipment_cost_cents",
    "km_cost_cents",
    "speed_km_per_day",
];

/// Parses a coordinate within -`limit`..=`limit` degrees, so that a bad one is
/// reported with the other bad rows before anything is sent.
fn parse_degrees(field: &str, value: &str, limit: f64) -> Result<f64, String> {
    let degrees: f64 = parse_number(field, value, "a number of degrees")?;
    if !(-limit..=limit).contains(&degrees) {
        return Err(format!("{field} {value} is not within -{limit}..={limit} degrees"));
    }
    Ok(degrees)
}

pub(crate) fn read_locations(path: &Path) -> Result<Rows<LocationWithRouting>, Failure> {
    let file = CsvFile::open(path, &["code", "kind", "lat", "lon"], LOCATION_OPTIONAL_COLUMNS)?;
    let mut read = Rows { lines: Vec::new(), rows: Vec::new() };
    let mut bad = BadRows::default();
    file.for_each_record(&mut bad, |record| {
        let row = LocationRow {
            code: record.required("code")?.to_owned(),
            kind: parse_kind(record.required("kind")?)?,
            lat: parse_degrees("lat", record.required("lat")?, 90.0)?,
            lon: parse_degrees("lon", record.required("lon")?, 180.0)?,
            methods: record.optional("methods").map_or(Ok(1), parse_methods)?,
            daily_capacity: record
                .optional("daily_capacity")
                .map_or(Ok(0), |value| parse_number("daily_capacity", value, "a whole number of orders"))?,
            active: record.optional("active").map_or(Ok(true), |value| parse_bool("active", value))?,
        };
        let routing = parse_routing(record)?;
        read.lines.push(record.line);
        read.rows.push(LocationWithRouting { location: row, routing });
        Ok(())
    })?;
    bad.into_result(path)?;
    Ok(read)
}

pub(crate) fn read_stock(path: &Path) -> Result<Rows<StockRow>, Failure> {
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

/// Checks a postal-code row by the rules the server applies, so that a file with a
/// bad row is rejected before anything is sent.
fn check_postal_row(row: &PostalCodeRow) -> Result<(), String> {
    if row.country.len() != 2 || !row.country.bytes().all(|byte| byte.is_ascii_alphabetic()) {
        return Err(format!("country {:?} is not a two-letter country code such as MX", row.country));
    }
    let code = &row.postal_code;
    if code.len() > POSTAL_CODE_LEN_MAX {
        return Err(format!("postal_code {code:?} is {} bytes long; the limit is {POSTAL_CODE_LEN_MAX}", code.len()));
    }
    if code.chars().any(char::is_control) {
        return Err(format!("postal_code {code:?} contains a control character"));
    }
    if code.find('*').is_some_and(|at| at != code.len() - 1) {
        return Err(format!("postal_code {code:?} has a '*' before its end; '*' only ends a region prefix"));
    }
    if !(-90.0..=90.0).contains(&row.lat) {
        return Err(format!("lat {} is not within -90..=90", row.lat));
    }
    if !(-180.0..=180.0).contains(&row.lon) {
        return Err(format!("lon {} is not within -180..=180", row.lon));
    }
    Ok(())
}

pub(crate) fn read_postal_codes(path: &Path) -> Result<Rows<PostalCodeRow>, Failure> {
    let file = CsvFile::open(path, &["country", "postal_code", "lat", "lon"], &[])?;
    let mut read = Rows { lines: Vec::new(), rows: Vec::new() };
    let mut bad = BadRows::default();
    file.for_each_record(&mut bad, |record| {
        let row = PostalCodeRow {
            country: record.required("country")?.to_owned(),
            postal_code: record.required("postal_code")?.to_owned(),
            lat: parse_number("lat", record.required("lat")?, "a number of degrees")?,
            lon: parse_number("lon", record.required("lon")?, "a number of degrees")?,
        };
        check_postal_row(&row)?;
        read.lines.push(record.line);
        read.rows.push(row);
        Ok(())
    })?;
    bad.into_result(path)?;
    Ok(read)
}

/// Splits rows into batches of at most `rows_max` rows on consecutive lines. The
/// server numbers a batch's rows from its first line on, so a gap in the file (an
/// empty line, a quoted field over several lines) starts a new batch.
pub(crate) fn batches(lines: &[u64], rows_max: usize) -> Vec<std::ops::Range<usize>> {
    let mut batches = Vec::new();
    let mut start = 0;
    for index in 1..=lines.len() {
        let full = index - start == rows_max;
        let gap = index < lines.len() && lines[index] != lines[index - 1] + 1;
        if index == lines.len() || full || gap {
            batches.push(start..index);
            start = index;
        }
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

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
        use promesa_protocol::limits::ROWS_PER_REQUEST_MAX;
        assert_eq!(batches(&[2, 3, 4], ROWS_PER_REQUEST_MAX), vec![0..3]);
        assert_eq!(batches(&[2, 3, 5, 6], ROWS_PER_REQUEST_MAX), vec![0..2, 2..4]);
        let long: Vec<u64> = (2..2 + ROWS_PER_REQUEST_MAX as u64 + 1).collect();
        assert_eq!(
            batches(&long, ROWS_PER_REQUEST_MAX),
            vec![0..ROWS_PER_REQUEST_MAX, ROWS_PER_REQUEST_MAX..ROWS_PER_REQUEST_MAX + 1]
        );
        assert_eq!(batches(&[2, 3, 4, 5, 6], 2), vec![0..2, 2..4, 4..5]);
        assert!(batches(&[], ROWS_PER_REQUEST_MAX).is_empty());
    }

    #[test]
    fn coordinates_are_checked_before_sending() {
        assert_eq!(parse_degrees("lat", "19.43", 90.0), Ok(19.43));
        assert_eq!(parse_degrees("lon", "-180", 180.0), Ok(-180.0));
        assert_eq!(parse_degrees("lat", "91.5", 90.0), Err("lat 91.5 is not within -90..=90 degrees".to_owned()));
        assert!(parse_degrees("lat", "NaN", 90.0).is_err());
        assert!(parse_degrees("lon", "north", 180.0).is_err());
    }

    #[test]
    fn cutoffs_are_local_times() {
        assert_eq!(parse_cutoff("00:00"), Ok(0));
        assert_eq!(parse_cutoff("14:30"), Ok(870));
        assert_eq!(parse_cutoff("24:00"), Ok(NO_CUTOFF_MINUTE));
        for invalid in ["24:01", "25:00", "12:60", "9:00", "12", "12:3", "noon", "-1:00"] {
            assert_eq!(
                parse_cutoff(invalid),
                Err(format!("cutoff {invalid:?} is not a local time HH:MM from 00:00 to 24:00"))
            );
        }
    }

    #[test]
    fn postal_rows_follow_the_server_rules() {
        let row = |country: &str, postal_code: &str, lat: f64| PostalCodeRow {
            country: country.into(),
            postal_code: postal_code.into(),
            lat,
            lon: -99.1,
        };
        assert_eq!(check_postal_row(&row("MX", "06700", 19.4)), Ok(()));
        assert_eq!(check_postal_row(&row("mx", "06*", 19.4)), Ok(()));
        assert_eq!(check_postal_row(&row("MX", "*", 19.4)), Ok(()));
        assert!(check_postal_row(&row("MEX", "06700", 19.4)).unwrap_err().contains("country \"MEX\""));
        assert!(check_postal_row(&row("MX", "0*6", 19.4)).unwrap_err().contains("postal_code \"0*6\""));
        let long = "1".repeat(POSTAL_CODE_LEN_MAX + 1);
        assert!(check_postal_row(&row("MX", &long, 19.4)).unwrap_err().contains("the limit is 16"));
        assert_eq!(check_postal_row(&row("MX", "06700", 91.0)), Err("lat 91 is not within -90..=90".to_owned()));
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
}
