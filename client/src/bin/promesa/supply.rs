//! Inbound supply commands: receipts added, moved and cancelled, the units available by
//! a time and the earliest time a quantity is available, with their reports.

use std::net::SocketAddr;

use promesa_client::Client;
use promesa_protocol::{Request, Response, SupplyOutcome};
use serde::Serialize;

use crate::args::{SupplyCommand, TimeArgument};
use crate::connection::call;
use crate::errors::Failure;
use crate::output::{Facts, Report, format_time_ms, yes_no};

/// Returns the time a TIME argument names, in milliseconds since the Unix epoch. A time
/// after now counts from the server's clock, which the server also reads availability
/// with, rather than from this machine's.
async fn resolve_time(client: &Client, addr: SocketAddr, time: TimeArgument, flag: &str) -> Result<u64, Failure> {
    let after_ms = match time {
        TimeArgument::At(at_ms) => return Ok(at_ms),
        TimeArgument::AfterNow(after_ms) => after_ms,
    };
    let now_ms = match call(client, addr, Request::Ping).await? {
        Response::Pong { now_ms } => now_ms,
        other => return Err(Failure::unexpected("Pong", &other)),
    };
    now_ms
        .checked_add(after_ms)
        .ok_or_else(|| Failure::usage(format!("{flag} is {after_ms} ms after now, past the last time {} ms", u64::MAX)))
}

/// Runs `supply add`, `supply move` or `supply cancel`.
pub(crate) async fn change_supply(
    client: &Client,
    addr: SocketAddr,
    command: SupplyCommand,
) -> Result<SupplyReport, Failure> {
    let failure = |error| Failure::client(error, addr);
    match command {
        SupplyCommand::Add { id, sku, location, quantity, arrival } => {
            let arrival_ms = resolve_time(client, addr, arrival, "--arrival").await?;
            let outcome = client.add_supply(&id, &sku, &location, quantity, arrival_ms).await.map_err(failure)?;
            let mut report = SupplyReport::new(id, "add", outcome);
            report.sku = Some(sku);
            report.location = Some(location);
            report.quantity = Some(quantity);
            report.set_arrival(arrival_ms);
            Ok(report)
        }
        SupplyCommand::Move { id, arrival } => {
            let arrival_ms = resolve_time(client, addr, arrival, "--arrival").await?;
            let outcome = client.move_supply(&id, arrival_ms).await.map_err(failure)?;
            let mut report = SupplyReport::new(id, "move", outcome);
            report.set_arrival(arrival_ms);
            Ok(report)
        }
        SupplyCommand::Cancel { id } => {
            let outcome = client.cancel_supply(&id).await.map_err(failure)?;
            Ok(SupplyReport::new(id, "cancel", outcome))
        }
    }
}

/// Runs `atp SKU --location LOC --by TIME`.
pub(crate) async fn availability_by(
    client: &Client,
    addr: SocketAddr,
    position: (String, String),
    channel: Option<String>,
    by: TimeArgument,
) -> Result<AvailabilityByReport, Failure> {
    let (sku, location) = position;
    let by_ms = resolve_time(client, addr, by, "--by").await?;
    let read = client
        .availability_by(&sku, &location, channel.as_deref(), by_ms)
        .await
        .map_err(|error| Failure::client(error, addr))?;
    Ok(AvailabilityByReport {
        sku,
        location,
        channel: channel.unwrap_or_else(|| "default".to_owned()),
        by_ms,
        by: format_time_ms(by_ms),
        atp: read.atp,
        inbound_by: read.inbound_by,
        backordered: read.backordered,
        available: read.available,
    })
}

/// Runs `atp SKU --location LOC --quantity N`.
pub(crate) async fn earliest_available(
    client: &Client,
    addr: SocketAddr,
    position: (String, String),
    channel: Option<String>,
    quantity: u64,
) -> Result<EarliestReport, Failure> {
    let (sku, location) = position;
    let at_ms = client
        .earliest_available(&sku, &location, channel.as_deref(), quantity)
        .await
        .map_err(|error| Failure::client(error, addr))?;
    Ok(EarliestReport {
        sku,
        location,
        channel: channel.unwrap_or_else(|| "default".to_owned()),
        quantity,
        available_at_ms: at_ms,
        available_at: at_ms.map(format_time_ms),
    })
}

/// A receipt added, moved or cancelled, and the inbound supply of its position after
/// the change.
#[derive(Serialize)]
pub(crate) struct SupplyReport {
    receipt_id: String,
    /// `add`, `move` or `cancel`.
    operation: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sku: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    quantity: Option<u64>,
    /// The expected arrival that `add` or `move` sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    arrival_ms: Option<u64>,
    /// `arrival_ms` as an ISO 8601 UTC time.
    #[serde(skip_serializing_if = "Option::is_none")]
    arrival: Option<String>,
    replayed: bool,
    /// Units of every open receipt of the position.
    inbound: u64,
    /// Units backordered against them.
    backordered: u64,
}

impl SupplyReport {
    fn new(receipt_id: String, operation: &'static str, outcome: SupplyOutcome) -> SupplyReport {
        SupplyReport {
            receipt_id,
            operation,
            sku: None,
            location: None,
            quantity: None,
            arrival_ms: None,
            arrival: None,
            replayed: outcome.replayed,
            inbound: outcome.inbound,
            backordered: outcome.backordered,
        }
    }

    fn set_arrival(&mut self, arrival_ms: u64) {
        self.arrival_ms = Some(arrival_ms);
        self.arrival = Some(format_time_ms(arrival_ms));
    }
}

impl Report for SupplyReport {
    fn write_text(&self, out: &mut String) {
        let mut facts = Facts::default();
        facts.add("receipt", &self.receipt_id).add("operation", self.operation);
        if let (Some(sku), Some(location)) = (&self.sku, &self.location) {
            facts.add("sku", sku).add("location", location);
        }
        if let Some(quantity) = self.quantity {
            facts.add("quantity", quantity);
        }
        if let Some(arrival) = &self.arrival {
            facts.add("arrival", arrival);
        }
        facts
            .add("replayed", yes_no(self.replayed))
            .add("inbound", self.inbound)
            .add("backordered", self.backordered)
            .write(out);
    }
}

/// Units of a SKU at a location that can be promised by a time.
#[derive(Serialize)]
pub(crate) struct AvailabilityByReport {
    sku: String,
    location: String,
    channel: String,
    by_ms: u64,
    /// `by_ms` as an ISO 8601 UTC time.
    by: String,
    /// ATP now; negative in shortage.
    atp: i64,
    /// Units of the receipts arriving by the time.
    inbound_by: u64,
    /// Units backordered against inbound supply.
    backordered: u64,
    /// Units that can be promised by the time.
    available: u64,
}

impl Report for AvailabilityByReport {
    fn write_text(&self, out: &mut String) {
        Facts::default()
            .add("sku", &self.sku)
            .add("location", &self.location)
            .add("channel", &self.channel)
            .add("by", &self.by)
            .add("atp", self.atp)
            .add("inbound_by", self.inbound_by)
            .add("backordered", self.backordered)
            .add("available", self.available)
            .write(out);
    }
}

/// The earliest time a quantity of a SKU at a location can be promised.
#[derive(Serialize)]
pub(crate) struct EarliestReport {
    sku: String,
    location: String,
    channel: String,
    quantity: u64,
    /// Milliseconds since the Unix epoch; null when the open receipts never bring the
    /// quantity.
    available_at_ms: Option<u64>,
    /// `available_at_ms` as an ISO 8601 UTC time.
    available_at: Option<String>,
}

impl Report for EarliestReport {
    fn write_text(&self, out: &mut String) {
        let available_at = match &self.available_at {
            Some(time) => time.clone(),
            None => format!("never: ATP now and the open receipts do not reach {} units", self.quantity),
        };
        Facts::default()
            .add("sku", &self.sku)
            .add("location", &self.location)
            .add("channel", &self.channel)
            .add("quantity", self.quantity)
            .add("available_at", available_at)
            .write(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::render;

    #[test]
    fn earliest_report_says_when_receipts_fall_short() {
        let report = EarliestReport {
            sku: "SKU-1".into(),
            location: "MX-01".into(),
            channel: "default".into(),
            quantity: 600,
            available_at_ms: None,
            available_at: None,
        };
        let expected = "\
sku           SKU-1
location      MX-01
channel       default
quantity      600
available_at  never: ATP now and the open receipts do not reach 600 units
";
        assert_eq!(render(&report, false), expected);
        let json: serde_json::Value = serde_json::from_str(&render(&report, true)).unwrap();
        assert_eq!(json["available_at_ms"], serde_json::Value::Null);
    }

    #[test]
    fn supply_report_lists_what_the_command_sent() {
        let outcome = SupplyOutcome { replayed: false, inbound: 500, backordered: 0 };
        let mut report = SupplyReport::new("po-1".into(), "move", outcome);
        report.set_arrival(1_798_761_600_000);
        let expected = "\
receipt      po-1
operation    move
arrival      2027-01-01T00:00:00.000Z
replayed     no
inbound      500
backordered  0
";
        assert_eq!(render(&report, false), expected);
    }
}
