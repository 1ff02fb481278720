//! Measurements of a run: per operation, the count, refusals, errors by code and a
//! latency histogram, rendered as a table and as JSON, and the same figures for each
//! second of the run.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Bytes in a mebibyte.
const MIB: f64 = 1_048_576.0;

/// Maximum latency a histogram records, in microseconds. Longer ones count as this.
pub const LATENCY_US_MAX: u64 = 60_000_000;

/// The operations a mix draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// ATP of one SKU at one location.
    Availability,
    /// A reserve of one or more lines.
    Reserve,
    /// A routed reserve: an order of one or more lines to a destination, planned and
    /// held by the server.
    Routed,
    /// Confirm every held unit of a reservation this worker made.
    Confirm,
    /// Release every unit of a reservation this worker made.
    Release,
    /// Fulfil every unit of a reservation this worker made.
    Fulfil,
}

impl Operation {
    /// Every operation, in report order.
    pub const ALL: [Operation; 6] = [
        Operation::Availability,
        Operation::Reserve,
        Operation::Routed,
        Operation::Confirm,
        Operation::Release,
        Operation::Fulfil,
    ];

    /// Returns the name used in `--mix` and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Availability => "availability",
            Operation::Reserve => "reserve",
            Operation::Routed => "routed",
            Operation::Confirm => "confirm",
            Operation::Release => "release",
            Operation::Fulfil => "fulfil",
        }
    }

    /// Returns the operation with this name.
    pub fn from_name(name: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|operation| operation.name() == name)
    }
}

/// Measurements of one operation by one worker, or by the whole run.
#[derive(Clone, Debug)]
pub struct Tally {
    /// Requests answered.
    pub count: u64,
    /// Reserves and routed reserves that held no unit (not enough ATP).
    pub refused: u64,
    /// Error responses by code name.
    pub errors: BTreeMap<String, u64>,
    /// Latency in microseconds: the round trip of the request's frame.
    pub latency_us: Histogram<u64>,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            count: 0,
            refused: 0,
            errors: BTreeMap::new(),
            latency_us: Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).expect("valid bounds"),
        }
    }
}

impl Tally {
    /// Adds another tally into this one.
    pub fn add(&mut self, other: &Tally) {
        self.count += other.count;
        self.refused += other.refused;
        for (code, count) in &other.errors {
            *self.errors.entry(code.clone()).or_default() += count;
        }
        self.latency_us.add(&other.latency_us).expect("histograms of the same bounds add");
    }

    fn errors_total(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Computes the figures of this tally over `secs` seconds.
    pub fn figures(&self, secs: f64) -> Figures {
        let quantile = |q: f64| if self.latency_us.is_empty() { 0 } else { self.latency_us.value_at_quantile(q) };
        Figures {
            count: self.count,
            ops_per_sec: self.count as f64 / secs.max(f64::MIN_POSITIVE),
            refused: self.refused,
            errors: self.errors_total(),
            errors_by_code: self.errors.clone(),
            latency_us: Percentiles {
                p50: quantile(0.50),
                p90: quantile(0.90),
                p99: quantile(0.99),
                p999: quantile(0.999),
                max: self.latency_us.max(),
            },
        }
    }
}

/// Latency percentiles in microseconds.
#[derive(Clone, Debug, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Slowest.
    pub max: u64,
}

/// The figures of one operation, or of all.
#[derive(Clone, Debug, Serialize)]
pub struct Figures {
    /// Responses after the warm-up.
    pub count: u64,
    /// Responses per second.
    pub ops_per_sec: f64,
    /// Reserves and routed reserves that held nothing.
    pub refused: u64,
    /// Error responses.
    pub errors: u64,
    /// Error responses by code name.
    pub errors_by_code: BTreeMap<String, u64>,
    /// Latency percentiles.
    pub latency_us: Percentiles,
}

/// The figures of about one second of a run, warm-up included: the per-second series
/// behind `--plot`.
#[derive(Clone, Debug, Serialize)]
pub struct Second {
    /// Start of the interval, in seconds from the start of the run.
    pub start_secs: f64,
    /// End of the interval: about one second after the start, less for the last one.
    pub end_secs: f64,
    /// The interval started before the warm-up ended, so its responses may be missing
    /// from the report's other figures.
    pub warmup: bool,
    /// Every response of the interval, over its length.
    #[serde(flatten)]
    pub figures: Figures,
}

/// The whole report, written with `--json`.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The run's settings.
    pub settings: serde_json::Value,
    /// Seconds measured, after the warm-up.
    pub secs: f64,
    /// Every operation together.
    pub total: Figures,
    /// Per operation that ran.
    pub operations: BTreeMap<String, Figures>,
    /// Every operation together, per second of the run, warm-up included.
    pub per_second: Vec<Second>,
    /// Every request's latency together, for `--hgrm`.
    #[serde(skip)]
    pub total_latency_us: Histogram<u64>,
    /// The server's memory and open reservations before and after the run, when it
    /// reports them.
    pub server_memory: Option<ServerMemory>,
}

/// The server's resident memory and open reservations around a run.
#[derive(Clone, Debug, Serialize)]
pub struct ServerMemory {
    /// Resident bytes of the server process before the run.
    pub resident_bytes_before: u64,
    /// Resident bytes after the run.
    pub resident_bytes_after: u64,
    /// Open reservations before the run.
    pub open_reservations_before: u64,
    /// Open reservations after the run.
    pub open_reservations_after: u64,
    /// Growth of resident memory per reservation opened during the run and still open.
    /// It is `None` when the run left no more open reservations than it found, or when
    /// the server's memory shrank because its allocator gave memory back.
    pub bytes_per_open_reservation: Option<f64>,
}

impl ServerMemory {
    /// Computes the growth from the two readings.
    pub fn new(before: (u64, u64), after: (u64, u64)) -> ServerMemory {
        let opened = after.1.saturating_sub(before.1);
        let grown = after.0 as f64 - before.0 as f64;
        ServerMemory {
            resident_bytes_before: before.0,
            resident_bytes_after: after.0,
            open_reservations_before: before.1,
            open_reservations_after: after.1,
            bytes_per_open_reservation: (opened > 0 && grown >= 0.0).then(|| grown / opened as f64),
        }
    }
}

impl Report {
    /// Builds the report from the run's tallies.
    pub fn new(settings: serde_json::Value, secs: f64, tallies: &BTreeMap<Operation, Tally>) -> Report {
        let mut total = Tally::default();
        let mut operations = BTreeMap::new();
        for (operation, tally) in tallies {
            total.add(tally);
            operations.insert(operation.name().to_owned(), tally.figures(secs));
        }
        Report {
            settings,
            secs,
            total: total.figures(secs),
            operations,
            per_second: Vec::new(),
            total_latency_us: total.latency_us,
            server_memory: None,
        }
    }

    /// Renders the latency distribution of every request in HdrHistogram's
    /// percentile text format (microseconds).
    pub fn hgrm(&self) -> String {
        let histogram = &self.total_latency_us;
        let mut out =
            format!("{:>12} {:>14} {:>10} {:>14}\n\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)");
        let mut total_count = 0u64;
        for step in histogram.iter_quantiles(5) {
            total_count += step.count_since_last_iteration();
            let quantile = step.quantile_iterated_to();
            let inverse = if quantile < 1.0 { format!("{:>14.2}", 1.0 / (1.0 - quantile)) } else { String::new() };
            out.push_str(&format!(
                "{:>12.3} {:>14.12} {:>10} {inverse}\n",
                step.value_iterated_to() as f64,
                quantile,
                total_count
            ));
        }
        out.push_str(&format!(
            "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]\n#[Max     = {:>12.3}, Total count    = {:>12}]\n",
            histogram.mean(),
            histogram.stdev(),
            histogram.max() as f64,
            histogram.len()
        ));
        out
    }

    /// Renders the report as a table.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<13} {:>10} {:>12} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>8}\n",
            "operation", "count", "ops/s", "p50 us", "p90 us", "p99 us", "p99.9 us", "max us", "refused", "errors"
        );
        let rows = self.operations.iter().map(|(name, figures)| (name.as_str(), figures));
        for (name, figures) in rows.chain(std::iter::once(("total", &self.total))) {
            let latency = &figures.latency_us;
            out.push_str(&format!(
                "{:<13} {:>10} {:>12.0} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>8}\n",
                name,
                figures.count,
                figures.ops_per_sec,
                latency.p50,
                latency.p90,
                latency.p99,
                latency.p999,
                latency.max,
                figures.refused,
                figures.errors
            ));
            for (code, count) in &figures.errors_by_code {
                out.push_str(&format!("{:<13}   {count} × {code}\n", ""));
            }
        }
        if let Some(memory) = &self.server_memory {
            out.push_str(&format!(
                "server: {} -> {} open reservations, resident memory {:.1} -> {:.1} MiB",
                memory.open_reservations_before,
                memory.open_reservations_after,
                memory.resident_bytes_before as f64 / MIB,
                memory.resident_bytes_after as f64 / MIB,
            ));
            if let Some(bytes) = memory.bytes_per_open_reservation {
                out.push_str(&format!(", {bytes:.0} bytes per reservation opened"));
            }
            out.push('\n');
        }
        out
    }
}
