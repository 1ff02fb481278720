//! Log records: the effects of each change, in on-disk types of the engine's own.
//!
//! A record describes what changed and to what, not the request, so replay sets state
//! without checking anything again. Each record carries the engine time of the change.
//! Payloads are a fixed little-endian layout per type (docs/format.md lists them);
//! strings are a length (u16) and UTF-8 bytes; lists are a count (u32) and the items.

use thiserror::Error;

use crate::routing::{LocationRouting, METHOD_COUNT, MethodTerms, PostalCodeRow, TransitBand};

/// A position index meaning "none" (a reserve line that resolved to no position).
pub const NO_POSITION: u32 = u32::MAX;

/// One reserve line as the log keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReservedLine {
    /// Position index, or `NO_POSITION`.
    pub position: u32,
    /// SKU id, or `NO_POSITION` when the code was unknown.
    pub sku: u32,
    /// Location id, or `NO_POSITION` when the code was unknown.
    pub location: u32,
    /// `LineStatus` code at reserve time.
    pub status: u8,
    /// Units requested.
    pub requested: u32,
    /// Units held.
    pub held: u32,
}

/// One shipment of a routed reservation as the log keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct RoutedShipment {
    /// Location id.
    pub location: u32,
    /// `Method` as its number.
    pub method: u8,
    /// Distance to the destination in kilometres.
    pub distance_km: f64,
    /// Cost in cents.
    pub cost_cents: u64,
    /// Promise, milliseconds since the Unix epoch.
    pub promise_ms: u64,
    /// The location's local day whose capacity the shipment took.
    pub capacity_day: u32,
    /// Reservation lines of this shipment: the next this many lines after the
    /// previous shipment's.
    pub line_count: u32,
}

/// The plan of a routed reservation, kept so that a repeated routed reserve returns it
/// and capacity is given back when a shipment is released.
#[derive(Clone, Debug, PartialEq)]
pub struct RoutedRecord {
    /// Destination latitude in degrees.
    pub lat: f64,
    /// Destination longitude in degrees.
    pub lon: f64,
    /// How the destination was found: 0 coordinates, 1 postal code, 2 region prefix.
    pub source: u8,
    /// The region prefix when `source` is 2, else empty.
    pub region_prefix: String,
    /// Per reservation line, the order line it serves.
    pub order_lines: Vec<u32>,
    /// Shipments in plan order.
    pub shipments: Vec<RoutedShipment>,
    /// Order lines left partly unplaced: (line, requested, unfilled, `UnfilledReason`).
    pub unfilled: Vec<(u32, u32, u32, u8)>,
}

/// Units one operation took from one line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LineMove {
    /// Units taken from held.
    pub from_held: u32,
    /// Units taken from allocated.
    pub from_allocated: u32,
}

/// The operation that moved units, which decides where they went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum MoveKind {
    /// Held to allocated.
    Confirm = 1,
    /// Held or allocated to released.
    Release = 2,
    /// Held or allocated to fulfilled, and out of on hand.
    Fulfil = 3,
}

/// A change, as written to the log.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    /// A location inserted or replaced; new locations get the next id.
    LocationUpserted {
        /// Engine time.
        now_ms: u64,
        /// Location id the catalog gave it.
        location: u32,
        /// Location code.
        code: String,
        /// `LocationKind` as its number.
        kind: u8,
        /// Latitude in degrees.
        lat: f64,
        /// Longitude in degrees.
        lon: f64,
        /// `FulfilmentMethods` bits.
        methods: u8,
        /// Orders per day.
        daily_capacity: u32,
        /// Whether it takes new reservations.
        active: bool,
        /// Routing parameters.
        routing: LocationRouting,
    },
    /// A channel inserted or replaced.
    ChannelUpserted {
        /// Engine time.
        now_ms: u64,
        /// Channel id the catalog gave it.
        channel: u32,
        /// Channel code.
        code: String,
        /// Whether it may sell safety stock.
        may_sell_safety_stock: bool,
        /// Location ids it may route to, sorted; `None` for all.
        locations: Option<Vec<u32>>,
    },
    /// A position created (and its SKU interned, if new).
    PositionCreated {
        /// Engine time.
        now_ms: u64,
        /// Position index the catalog gave it.
        position: u32,
        /// SKU code.
        sku_code: String,
        /// Location id.
        location: u32,
    },
    /// On hand set to a count.
    OnHandSet {
        /// Engine time.
        now_ms: u64,
        /// Position index.
        position: u32,
        /// The new on hand.
        on_hand: u32,
    },
    /// Safety stock set.
    SafetyStockSet {
        /// Engine time.
        now_ms: u64,
        /// Position index.
        position: u32,
        /// The new safety stock.
        units: u32,
    },
    /// On hand changed by an adjustment with an operation id.
    Adjusted {
        /// Engine time.
        now_ms: u64,
        /// Position index.
        position: u32,
        /// On hand before.
        previous: u32,
        /// On hand after.
        on_hand: u32,
        /// Whether the position was in shortage after the change.
        in_shortage: bool,
        /// Operation id.
        op_id: String,
        /// Fingerprint of the adjustment request.
        fingerprint: u64,
    },
    /// A reservation made.
    Reserved {
        /// Engine time (the reservation's creation time).
        now_ms: u64,
        /// Reservation id.
        id: String,
        /// Fingerprint of the reserve request.
        fingerprint: u64,
        /// Channel id.
        channel: u32,
        /// `Policy` as its number.
        policy: u8,
        /// Time-to-live in milliseconds.
        ttl_ms: u32,
        /// Lines in request order.
        lines: Vec<ReservedLine>,
        /// Codes of lines whose SKU or location was unknown: (line, SKU, location).
        unresolved: Vec<(u32, String, String)>,
        /// The plan, for a routed reserve.
        routed: Option<RoutedRecord>,
    },
    /// Units moved by confirm, release or fulfil.
    Moved {
        /// Engine time.
        now_ms: u64,
        /// Reservation id.
        id: String,
        /// Operation id.
        op_id: String,
        /// Fingerprint of the operation.
        fingerprint: u64,
        /// Which operation.
        kind: MoveKind,
        /// Per line, in line order.
        lines: Vec<LineMove>,
    },
    /// A hold's deadline moved later.
    Extended {
        /// Engine time.
        now_ms: u64,
        /// Reservation id.
        id: String,
        /// Operation id.
        op_id: String,
        /// Fingerprint of the operation.
        fingerprint: u64,
        /// The new deadline.
        deadline_ms: u64,
    },
    /// A hold released by expiry: every held unit of the reservation.
    Expired {
        /// Engine time of the expiry (at or after the deadline).
        now_ms: u64,
        /// Reservation id.
        id: String,
    },
    /// An expected receipt added; the inbound twin position's on hand becomes `inbound`.
    SupplyAdded {
        /// Engine time.
        now_ms: u64,
        /// Receipt id.
        receipt_id: String,
        /// The inbound twin position.
        position: u32,
        /// Units expected.
        quantity: u32,
        /// Expected arrival.
        arrival_ms: u64,
        /// The twin's on hand after the change.
        inbound: u32,
    },
    /// A receipt's arrival moved.
    SupplyMoved {
        /// Engine time.
        now_ms: u64,
        /// Receipt id.
        receipt_id: String,
        /// The new expected arrival.
        arrival_ms: u64,
    },
    /// A receipt cancelled; the twin's on hand becomes `inbound`.
    SupplyCancelled {
        /// Engine time.
        now_ms: u64,
        /// Receipt id.
        receipt_id: String,
        /// The inbound twin position.
        position: u32,
        /// The twin's on hand after the change.
        inbound: u32,
    },
    /// Postal codes or region prefixes inserted or replaced.
    PostalCodesUpserted {
        /// Engine time.
        now_ms: u64,
        /// The rows, validated, countries in uppercase.
        rows: Vec<PostalCodeRow>,
    },
}

impl Record {
    /// Returns the record type byte written in the record header.
    pub fn type_byte(&self) -> u8 {
        match self {
            Record::LocationUpserted { .. } => 1,
            Record::ChannelUpserted { .. } => 2,
            Record::PositionCreated { .. } => 3,
            Record::OnHandSet { .. } => 4,
            Record::SafetyStockSet { .. } => 5,
            Record::Adjusted { .. } => 6,
            Record::Reserved { .. } => 7,
            Record::Moved { .. } => 8,
            Record::Extended { .. } => 9,
            Record::Expired { .. } => 10,
            Record::PostalCodesUpserted { .. } => 11,
            Record::SupplyAdded { .. } => 12,
            Record::SupplyMoved { .. } => 13,
            Record::SupplyCancelled { .. } => 14,
        }
    }

    /// Returns the engine time the record carries.
    pub fn now_ms(&self) -> u64 {
        match self {
            Record::LocationUpserted { now_ms, .. }
            | Record::ChannelUpserted { now_ms, .. }
            | Record::PositionCreated { now_ms, .. }
            | Record::OnHandSet { now_ms, .. }
            | Record::SafetyStockSet { now_ms, .. }
            | Record::Adjusted { now_ms, .. }
            | Record::Reserved { now_ms, .. }
            | Record::Moved { now_ms, .. }
            | Record::Extended { now_ms, .. }
            | Record::Expired { now_ms, .. }
            | Record::PostalCodesUpserted { now_ms, .. }
            | Record::SupplyAdded { now_ms, .. }
            | Record::SupplyMoved { now_ms, .. }
            | Record::SupplyCancelled { now_ms, .. } => *now_ms,
        }
    }

    /// Encodes the payload (everything but the record header).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Writer(Vec::with_capacity(64));
        match self {
            Record::LocationUpserted {
                now_ms,
                location,
                code,
                kind,
                lat,
                lon,
                methods,
                daily_capacity,
                active,
                routing,
            } => {
                out.u64(*now_ms);
                out.u32(*location);
                out.string(code);
                out.u8(*kind);
                out.u64(lat.to_bits());
                out.u64(lon.to_bits());
                out.u8(*methods);
                out.u32(*daily_capacity);
                out.u8(u8::from(*active));
                out.location_routing(routing);
            }
            Record::ChannelUpserted { now_ms, channel, code, may_sell_safety_stock, locations } => {
                out.u64(*now_ms);
                out.u32(*channel);
                out.string(code);
                out.u8(u8::from(*may_sell_safety_stock));
                match locations {
                    None => out.u8(0),
                    Some(locations) => {
                        out.u8(1);
                        out.u32(locations.len() as u32);
                        for &location in locations {
                            out.u32(location);
                        }
                    }
                }
            }
            Record::PositionCreated { now_ms, position, sku_code, location } => {
                out.u64(*now_ms);
                out.u32(*position);
                out.string(sku_code);
                out.u32(*location);
            }
            Record::OnHandSet { now_ms, position, on_hand } => {
                out.u64(*now_ms);
                out.u32(*position);
                out.u32(*on_hand);
            }
            Record::SafetyStockSet { now_ms, position, units } => {
                out.u64(*now_ms);
                out.u32(*position);
                out.u32(*units);
            }
            Record::Adjusted { now_ms, position, previous, on_hand, in_shortage, op_id, fingerprint } => {
                out.u64(*now_ms);
                out.u32(*position);
                out.u32(*previous);
                out.u32(*on_hand);
                out.u8(u8::from(*in_shortage));
                out.string(op_id);
                out.u64(*fingerprint);
            }
            Record::Reserved { now_ms, id, fingerprint, channel, policy, ttl_ms, lines, unresolved, routed } => {
                out.u64(*now_ms);
                out.string(id);
                out.u64(*fingerprint);
                out.u32(*channel);
                out.u8(*policy);
                out.u32(*ttl_ms);
                out.u32(lines.len() as u32);
                for line in lines {
                    out.u32(line.position);
                    out.u32(line.sku);
                    out.u32(line.location);
                    out.u8(line.status);
                    out.u32(line.requested);
                    out.u32(line.held);
                }
                out.u32(unresolved.len() as u32);
                for (line, sku, location) in unresolved {
                    out.u32(*line);
                    out.string(sku);
                    out.string(location);
                }
                match routed {
                    None => out.u8(0),
                    Some(routed) => {
                        out.u8(1);
                        out.routed(routed);
                    }
                }
            }
            Record::Moved { now_ms, id, op_id, fingerprint, kind, lines } => {
                out.u64(*now_ms);
                out.string(id);
                out.string(op_id);
                out.u64(*fingerprint);
                out.u8(*kind as u8);
                out.u32(lines.len() as u32);
                for line in lines {
                    out.u32(line.from_held);
                    out.u32(line.from_allocated);
                }
            }
            Record::Extended { now_ms, id, op_id, fingerprint, deadline_ms } => {
                out.u64(*now_ms);
                out.string(id);
                out.string(op_id);
                out.u64(*fingerprint);
                out.u64(*deadline_ms);
            }
            Record::Expired { now_ms, id } => {
                out.u64(*now_ms);
                out.string(id);
            }
            Record::SupplyAdded { now_ms, receipt_id, position, quantity, arrival_ms, inbound } => {
                out.u64(*now_ms);
                out.string(receipt_id);
                out.u32(*position);
                out.u32(*quantity);
                out.u64(*arrival_ms);
                out.u32(*inbound);
            }
            Record::SupplyMoved { now_ms, receipt_id, arrival_ms } => {
                out.u64(*now_ms);
                out.string(receipt_id);
                out.u64(*arrival_ms);
            }
            Record::SupplyCancelled { now_ms, receipt_id, position, inbound } => {
                out.u64(*now_ms);
                out.string(receipt_id);
                out.u32(*position);
                out.u32(*inbound);
            }
            Record::PostalCodesUpserted { now_ms, rows } => {
                out.u64(*now_ms);
                out.u32(rows.len() as u32);
                for row in rows {
                    out.string(&row.country);
                    out.string(&row.postal_code);
                    out.f64(row.lat);
                    out.f64(row.lon);
                }
            }
        }
        out.0
    }

    /// Decodes a payload of the given record type.
    pub fn decode(record_type: u8, payload: &[u8]) -> Result<Record, RecordError> {
        let mut input = Reader { bytes: payload, at: 0 };
        let record = match record_type {
            1 => Record::LocationUpserted {
                now_ms: input.u64()?,
                location: input.u32()?,
                code: input.string()?,
                kind: input.u8()?,
                lat: f64::from_bits(input.u64()?),
                lon: f64::from_bits(input.u64()?),
                methods: input.u8()?,
                daily_capacity: input.u32()?,
                active: input.bool()?,
                routing: input.location_routing()?,
            },
            2 => Record::ChannelUpserted {
                now_ms: input.u64()?,
                channel: input.u32()?,
                code: input.string()?,
                may_sell_safety_stock: input.bool()?,
                locations: if input.bool()? {
                    let count = input.count(4)?;
                    let mut locations = Vec::with_capacity(count);
                    for _ in 0..count {
                        locations.push(input.u32()?);
                    }
                    Some(locations)
                } else {
                    None
                },
            },
            3 => Record::PositionCreated {
                now_ms: input.u64()?,
                position: input.u32()?,
                sku_code: input.string()?,
                location: input.u32()?,
            },
            4 => Record::OnHandSet { now_ms: input.u64()?, position: input.u32()?, on_hand: input.u32()? },
            5 => Record::SafetyStockSet { now_ms: input.u64()?, position: input.u32()?, units: input.u32()? },
            6 => Record::Adjusted {
                now_ms: input.u64()?,
                position: input.u32()?,
                previous: input.u32()?,
                on_hand: input.u32()?,
                in_shortage: input.bool()?,
                op_id: input.string()?,
                fingerprint: input.u64()?,
            },
            7 => {
                let now_ms = input.u64()?;
                let id = input.string()?;
                let fingerprint = input.u64()?;
                let channel = input.u32()?;
                let policy = input.u8()?;
                let ttl_ms = input.u32()?;
                let line_count = input.count(21)?;
                let mut lines = Vec::with_capacity(line_count);
                for _ in 0..line_count {
                    lines.push(ReservedLine {
                        position: input.u32()?,
                        sku: input.u32()?,
                        location: input.u32()?,
                        status: input.u8()?,
                        requested: input.u32()?,
                        held: input.u32()?,
                    });
                }
                let unresolved_count = input.count(8)?;
                let mut unresolved = Vec::with_capacity(unresolved_count);
                for _ in 0..unresolved_count {
                    unresolved.push((input.u32()?, input.string()?, input.string()?));
                }
                let routed = if input.bool()? { Some(input.routed()?) } else { None };
                Record::Reserved { now_ms, id, fingerprint, channel, policy, ttl_ms, lines, unresolved, routed }
            }
            8 => {
                let now_ms = input.u64()?;
                let id = input.string()?;
                let op_id = input.string()?;
                let fingerprint = input.u64()?;
                let kind = match input.u8()? {
                    1 => MoveKind::Confirm,
                    2 => MoveKind::Release,
                    3 => MoveKind::Fulfil,
                    other => return Err(RecordError::Field { field: "move kind", value: u64::from(other) }),
                };
                let line_count = input.count(8)?;
                let mut lines = Vec::with_capacity(line_count);
                for _ in 0..line_count {
                    lines.push(LineMove { from_held: input.u32()?, from_allocated: input.u32()? });
                }
                Record::Moved { now_ms, id, op_id, fingerprint, kind, lines }
            }
            9 => Record::Extended {
                now_ms: input.u64()?,
                id: input.string()?,
                op_id: input.string()?,
                fingerprint: input.u64()?,
                deadline_ms: input.u64()?,
            },
            10 => Record::Expired { now_ms: input.u64()?, id: input.string()? },
            11 => {
                let now_ms = input.u64()?;
                let count = input.count(20)?;
                let mut rows = Vec::with_capacity(count);
                for _ in 0..count {
                    rows.push(PostalCodeRow {
                        country: input.string()?,
                        postal_code: input.string()?,
                        lat: input.f64()?,
                        lon: input.f64()?,
                    });
                }
                Record::PostalCodesUpserted { now_ms, rows }
            }
            12 => Record::SupplyAdded {
                now_ms: input.u64()?,
                receipt_id: input.string()?,
                position: input.u32()?,
                quantity: input.u32()?,
                arrival_ms: input.u64()?,
                inbound: input.u32()?,
            },
            13 => Record::SupplyMoved { now_ms: input.u64()?, receipt_id: input.string()?, arrival_ms: input.u64()? },
            14 => Record::SupplyCancelled {
                now_ms: input.u64()?,
                receipt_id: input.string()?,
                position: input.u32()?,
                inbound: input.u32()?,
            },
            other => return Err(RecordError::Field { field: "record type", value: u64::from(other) }),
        };
        input.finish()?;
        Ok(record)
    }
}

/// Encodes a location's routing parameters as in a `LocationUpserted` record (for
/// snapshots, which keep them as bytes).
pub(crate) fn encode_location_routing(routing: &LocationRouting) -> Vec<u8> {
    let mut out = Writer(Vec::with_capacity(64));
    out.location_routing(routing);
    out.0
}

/// Decodes what `encode_location_routing` wrote.
pub(crate) fn decode_location_routing(bytes: &[u8]) -> Result<LocationRouting, RecordError> {
    let mut input = Reader { bytes, at: 0 };
    let routing = input.location_routing()?;
    input.finish()?;
    Ok(routing)
}

/// Encodes a routed plan as in a `Reserved` record (for snapshots).
pub(crate) fn encode_routed(routed: &RoutedRecord) -> Vec<u8> {
    let mut out = Writer(Vec::with_capacity(128));
    out.routed(routed);
    out.0
}

/// Decodes what `encode_routed` wrote.
pub(crate) fn decode_routed(bytes: &[u8]) -> Result<RoutedRecord, RecordError> {
    let mut input = Reader { bytes, at: 0 };
    let routed = input.routed()?;
    input.finish()?;
    Ok(routed)
}

/// A payload that does not decode. The record's checksum matched, so this means a bug
/// or a record from another format version.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum RecordError {
    /// The payload ends before the record does.
    #[error("record payload ends at byte {at}, inside a field")]
    Truncated {
        /// Byte offset where it ended.
        at: usize,
    },
    /// A field with a value no record has.
    #[error("record field {field} has the value {value}, which no record uses")]
    Field {
        /// The field.
        field: &'static str,
        /// The value found.
        value: u64,
    },
    /// Bytes left after the last field.
    #[error("record payload has {bytes} bytes after its last field")]
    TrailingBytes {
        /// Bytes left.
        bytes: usize,
    },
}

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, value: u8) {
        self.0.push(value);
    }
    fn u32(&mut self, value: u32) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }
    fn u64(&mut self, value: u64) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }
    fn f64(&mut self, value: f64) {
        self.u64(value.to_bits());
    }

    fn location_routing(&mut self, routing: &LocationRouting) {
        self.u16(routing.utc_offset_minutes as u16);
        self.u8(u8::from(routing.pickup_only));
        for terms in &routing.terms {
            self.u32(terms.handling_minutes);
            self.u16(terms.cutoff_minute);
        }
        self.u32(routing.shipment_cost_cents);
        self.u32(routing.km_cost_cents);
        self.u32(routing.speed_km_per_day);
        self.u32(routing.transit_bands.len() as u32);
        for band in &routing.transit_bands {
            self.u32(band.distance_km_max);
            self.u16(band.days);
        }
    }

    fn u16(&mut self, value: u16) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    fn routed(&mut self, routed: &RoutedRecord) {
        self.f64(routed.lat);
        self.f64(routed.lon);
        self.u8(routed.source);
        self.string(&routed.region_prefix);
        self.u32(routed.order_lines.len() as u32);
        for &line in &routed.order_lines {
            self.u32(line);
        }
        self.u32(routed.shipments.len() as u32);
        for shipment in &routed.shipments {
            self.u32(shipment.location);
            self.u8(shipment.method);
            self.f64(shipment.distance_km);
            self.u64(shipment.cost_cents);
            self.u64(shipment.promise_ms);
            self.u32(shipment.capacity_day);
            self.u32(shipment.line_count);
        }
        self.u32(routed.unfilled.len() as u32);
        for &(line, requested, unfilled, reason) in &routed.unfilled {
            self.u32(line);
            self.u32(requested);
            self.u32(unfilled);
            self.u8(reason);
        }
    }

    fn string(&mut self, value: &str) {
        let len = u16::try_from(value.len()).expect("codes and ids are at most 128 bytes");
        self.0.extend_from_slice(&len.to_le_bytes());
        self.0.extend_from_slice(value.as_bytes());
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, len: usize) -> Result<&[u8], RecordError> {
        let end = self.at.checked_add(len).filter(|&end| end <= self.bytes.len());
        let end = end.ok_or(RecordError::Truncated { at: self.bytes.len() })?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }
    fn u8(&mut self) -> Result<u8, RecordError> {
        Ok(self.take(1)?[0])
    }
    fn bool(&mut self) -> Result<bool, RecordError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(RecordError::Field { field: "flag", value: u64::from(other) }),
        }
    }
    fn u32(&mut self) -> Result<u32, RecordError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("four bytes")))
    }
    fn f64(&mut self) -> Result<f64, RecordError> {
        Ok(f64::from_bits(self.u64()?))
    }

    fn finish(&self) -> Result<(), RecordError> {
        if self.at != self.bytes.len() {
            return Err(RecordError::TrailingBytes { bytes: self.bytes.len() - self.at });
        }
        Ok(())
    }

    fn u16(&mut self) -> Result<u16, RecordError> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().expect("two bytes")))
    }

    fn location_routing(&mut self) -> Result<LocationRouting, RecordError> {
        let utc_offset_minutes = self.u16()? as i16;
        let pickup_only = self.bool()?;
        let mut terms = [MethodTerms::default(); METHOD_COUNT];
        for terms in &mut terms {
            *terms = MethodTerms { handling_minutes: self.u32()?, cutoff_minute: self.u16()? };
        }
        let shipment_cost_cents = self.u32()?;
        let km_cost_cents = self.u32()?;
        let speed_km_per_day = self.u32()?;
        let count = self.count(6)?;
        let mut transit_bands = Vec::with_capacity(count);
        for _ in 0..count {
            transit_bands.push(TransitBand { distance_km_max: self.u32()?, days: self.u16()? });
        }
        Ok(LocationRouting {
            utc_offset_minutes,
            pickup_only,
            terms,
            shipment_cost_cents,
            km_cost_cents,
            speed_km_per_day,
            transit_bands,
        })
    }

    fn routed(&mut self) -> Result<RoutedRecord, RecordError> {
        let lat = self.f64()?;
        let lon = self.f64()?;
        let source = self.u8()?;
        let region_prefix = self.string()?;
        let count = self.count(4)?;
        let mut order_lines = Vec::with_capacity(count);
        for _ in 0..count {
            order_lines.push(self.u32()?);
        }
        let count = self.count(37)?;
        let mut shipments = Vec::with_capacity(count);
        for _ in 0..count {
            shipments.push(RoutedShipment {
                location: self.u32()?,
                method: self.u8()?,
                distance_km: self.f64()?,
                cost_cents: self.u64()?,
                promise_ms: self.u64()?,
                capacity_day: self.u32()?,
                line_count: self.u32()?,
            });
        }
        let count = self.count(13)?;
        let mut unfilled = Vec::with_capacity(count);
        for _ in 0..count {
            unfilled.push((self.u32()?, self.u32()?, self.u32()?, self.u8()?));
        }
        Ok(RoutedRecord { lat, lon, source, region_prefix, order_lines, shipments, unfilled })
    }

    fn u64(&mut self) -> Result<u64, RecordError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("eight bytes")))
    }
    fn string(&mut self) -> Result<String, RecordError> {
        let len = u16::from_le_bytes(self.take(2)?.try_into().expect("two bytes")) as usize;
        let at = self.at;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| RecordError::Field { field: "string at byte", value: at as u64 })
    }
    /// Reads a list count, checking that the rest of the payload can hold that many
    /// items of at least `item_len_min` bytes, so a bad count cannot allocate much.
    fn count(&mut self, item_len_min: usize) -> Result<usize, RecordError> {
        let count = self.u32()? as usize;
        if count.saturating_mul(item_len_min) > self.bytes.len() - self.at {
            return Err(RecordError::Field { field: "list length", value: count as u64 });
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_round_trip(record: Record) {
        let payload = record.encode();
        assert_eq!(Record::decode(record.type_byte(), &payload), Ok(record.clone()));
        for len in 0..payload.len() {
            assert!(Record::decode(record.type_byte(), &payload[..len]).is_err(), "{record:?} cut at {len}");
        }
    }

    #[test]
    fn records_round_trip() {
        check_round_trip(Record::LocationUpserted {
            now_ms: 1,
            location: 2,
            code: "MTY-DC".into(),
            kind: 0,
            lat: 25.67,
            lon: -100.31,
            methods: 1,
            daily_capacity: 5_000,
            active: true,
            routing: LocationRouting {
                utc_offset_minutes: -360,
                pickup_only: true,
                terms: [MethodTerms { handling_minutes: 90, cutoff_minute: 14 * 60 }; METHOD_COUNT],
                shipment_cost_cents: 9_900,
                km_cost_cents: 3,
                speed_km_per_day: 600,
                transit_bands: vec![
                    TransitBand { distance_km_max: 50, days: 1 },
                    TransitBand { distance_km_max: 900, days: 2 },
                ],
            },
        });
        check_round_trip(Record::ChannelUpserted {
            now_ms: 1,
            channel: 1,
            code: "pos".into(),
            may_sell_safety_stock: true,
            locations: None,
        });
        check_round_trip(Record::ChannelUpserted {
            now_ms: 1,
            channel: 2,
            code: "web".into(),
            may_sell_safety_stock: false,
            locations: Some(vec![0, 2, 7]),
        });
        check_round_trip(Record::SupplyAdded {
            now_ms: 1,
            receipt_id: "PO-1".into(),
            position: 3,
            quantity: 500,
            arrival_ms: 2_000,
            inbound: 700,
        });
        check_round_trip(Record::SupplyMoved { now_ms: 1, receipt_id: "PO-1".into(), arrival_ms: 3_000 });
        check_round_trip(Record::SupplyCancelled { now_ms: 1, receipt_id: "PO-1".into(), position: 3, inbound: 200 });
        check_round_trip(Record::PostalCodesUpserted {
            now_ms: 1,
            rows: vec![
                PostalCodeRow { country: "MX".into(), postal_code: "06700".into(), lat: 19.41, lon: -99.16 },
                PostalCodeRow { country: "MX".into(), postal_code: "06*".into(), lat: 19.43, lon: -99.13 },
            ],
        });
        check_round_trip(Record::PositionCreated { now_ms: 1, position: 9, sku_code: "TV-55".into(), location: 2 });
        check_round_trip(Record::OnHandSet { now_ms: 1, position: 9, on_hand: 12 });
        check_round_trip(Record::SafetyStockSet { now_ms: 1, position: 9, units: 2 });
        check_round_trip(Record::Adjusted {
            now_ms: 1,
            position: 9,
            previous: 12,
            on_hand: 10,
            in_shortage: false,
            op_id: "damage-1".into(),
            fingerprint: 77,
        });
        check_round_trip(Record::Reserved {
            now_ms: 5,
            id: "order-1".into(),
            fingerprint: 1234,
            channel: 0,
            policy: 1,
            ttl_ms: 900_000,
            lines: vec![
                ReservedLine { position: 9, sku: 0, location: 2, status: 0, requested: 2, held: 2 },
                ReservedLine { position: NO_POSITION, sku: NO_POSITION, location: 2, status: 2, requested: 1, held: 0 },
            ],
            unresolved: vec![(1, "NEW-SKU".into(), "MTY-DC".into())],
            routed: None,
        });
        check_round_trip(Record::Reserved {
            now_ms: 5,
            id: "order-2".into(),
            fingerprint: 99,
            channel: 0,
            policy: 0,
            ttl_ms: 900_000,
            lines: vec![ReservedLine { position: 9, sku: 0, location: 2, status: 0, requested: 2, held: 2 }],
            unresolved: Vec::new(),
            routed: Some(RoutedRecord {
                lat: 19.41,
                lon: -99.16,
                source: 2,
                region_prefix: "06".into(),
                order_lines: vec![0],
                shipments: vec![RoutedShipment {
                    location: 2,
                    method: 0,
                    distance_km: 712.5,
                    cost_cents: 1_212,
                    promise_ms: 86_400_000,
                    capacity_day: 20_000,
                    line_count: 1,
                }],
                unfilled: vec![(1, 3, 1, 2)],
            }),
        });
        check_round_trip(Record::Moved {
            now_ms: 6,
            id: "order-1".into(),
            op_id: "c1".into(),
            fingerprint: 5,
            kind: MoveKind::Fulfil,
            lines: vec![LineMove { from_held: 1, from_allocated: 1 }, LineMove::default()],
        });
        check_round_trip(Record::Extended {
            now_ms: 7,
            id: "order-1".into(),
            op_id: "e1".into(),
            fingerprint: 6,
            deadline_ms: 9_000,
        });
        check_round_trip(Record::Expired { now_ms: 8, id: "order-1".into() });
    }

    #[test]
    fn record_decode_rejects_bad_type_and_tail() {
        assert_eq!(Record::decode(99, &[]), Err(RecordError::Field { field: "record type", value: 99 }));
        let mut payload = Record::Expired { now_ms: 8, id: "order-1".into() }.encode();
        payload.push(0);
        assert_eq!(Record::decode(10, &payload), Err(RecordError::TrailingBytes { bytes: 1 }));
    }
}
