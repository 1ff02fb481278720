//! The snapshot file: a fixed header and an rkyv-encoded image of the engine, in
//! on-disk types of the engine's own (docs/format.md lists them).
//!
//! The image is fuzzy: objects are copied one by one while requests run, each with the
//! LSN of the last log record it reflects, so recovery replays onto each object only
//! the records after its LSN.

use rkyv::rancor;
use thiserror::Error;

/// First bytes of every snapshot file.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"PROMESNP";
/// Snapshot format version this build writes and reads.
pub const SNAPSHOT_FORMAT_VERSION: u32 = 2;
/// Bytes of the header before the image.
pub const SNAPSHOT_HEADER_LEN: usize = 32;

/// A location as the snapshot keeps it.
#[derive(rkyv::Archive, rkyv::Serialize, Debug, Clone, PartialEq)]
pub(crate) struct LocationImage {
    pub code: String,
    pub kind: u8,
    pub lat: f64,
    pub lon: f64,
    pub methods: u8,
    pub daily_capacity: u32,
    pub active: bool,
    /// Routing parameters, encoded as in a `LocationUpserted` log record.
    pub routing: Vec<u8>,
}

/// A channel as the snapshot keeps it.
#[derive(rkyv::Archive, rkyv::Serialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChannelImage {
    pub code: String,
    pub may_sell_safety_stock: bool,
    /// Location ids the channel may route to; `None` for all.
    pub locations: Option<Vec<u32>>,
}

/// An open receipt of inbound supply.
#[derive(rkyv::Archive, rkyv::Serialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReceiptImage {
    pub receipt_id: String,
    /// The inbound twin position.
    pub position: u32,
    pub quantity: u32,
    pub arrival_ms: u64,
}

/// A row of the postal-code table.
#[derive(rkyv::Archive, rkyv::Serialize, Debug, Clone, PartialEq)]
pub(crate) struct PostalImage {
    pub country: String,
    pub postal_code: String,
    pub lat: f64,
    pub lon: f64,
}

/// A position's counters and stamp, by position index.
#[derive(rkyv::Archive, rkyv::Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PositionImage {
    pub sku: u32,
    pub location: u32,
    pub on_hand: u32,
    pub reserved: u32,
    pub allocated: u32,
    pub safety_stock: u32,
    pub hold_deadline_floor_s: u32,
    /// LSN just past the last record reflected in the counters.
    pub lsn: u64,
}

/// One line of a stored reservation.
#[derive(rkyv::Archive, rkyv::Serialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct LineImage {
    pub position: u32,
    pub sku: u32,
    pub location: u32,
    pub status: u8,
    pub requested: u32,
    pub held: u32,
    pub allocated: u32,
    pub fulfilled: u32,
    pub released: u32,
}

/// The recorded outcome of one operation on a reservation.
#[derive(rkyv::Archive, rkyv::Serialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct OperationImage {
    pub op_id: String,
    pub fingerprint: u64,
    pub moved: Vec<u32>,
    pub state: u8,
    pub deadline_ms: u64,
}

/// A line that named an unknown SKU or location, with the codes as given.
#[derive(rkyv::Archive, rkyv::Serialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnresolvedImage {
    pub line: u32,
    pub sku: String,
    pub location: String,
}

/// A stored reservation, open or ended.
#[derive(rkyv::Archive, rkyv::Serialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReservationImage {
    pub id: String,
    pub fingerprint: u64,
    pub channel: u32,
    pub policy: u8,
    pub ttl_ms: u32,
    pub created_ms: u64,
    pub deadline_ms: u64,
    /// `u64::MAX` while open.
    pub ended_ms: u64,
    pub expired: bool,
    pub lines: Vec<LineImage>,
    pub unresolved: Vec<UnresolvedImage>,
    pub operations: Vec<OperationImage>,
    /// LSN just past the reservation's last record.
    pub last_lsn: u64,
    /// The plan of a routed reserve, encoded as in a `Reserved` log record; empty
    /// for a reserve without routing.
    pub routed: Vec<u8>,
}

/// A remembered adjustment operation id and its first outcome.
#[derive(rkyv::Archive, rkyv::Serialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct AdjustmentImage {
    pub op_id: String,
    pub fingerprint: u64,
    pub previous: u32,
    pub on_hand: u32,
    pub delta: i64,
    pub in_shortage: bool,
    pub lsn: u64,
    pub recorded_ms: u64,
}

/// Everything a snapshot holds.
#[derive(rkyv::Archive, rkyv::Serialize, Debug, Clone, PartialEq)]
pub(crate) struct EngineImage {
    /// Replay starts at this LSN: every record below it is reflected in the image.
    pub start_lsn: u64,
    /// Catalog records (locations, channels, positions created) ending at or below
    /// this LSN are in the image.
    pub catalog_lsn: u64,
    /// The next LSN once every reservation shard was copied. A record below it for a
    /// reservation the image lacks belongs to one forgotten before it was copied.
    pub reservations_lsn: u64,
    /// The log end once the copy finished; the log was durable to here before the file
    /// was written.
    pub end_lsn: u64,
    /// The engine clock's high-water mark.
    pub now_ms: u64,
    /// Holds with a deadline at or before this time were released.
    pub swept_until_ms: u64,
    pub holds_expired: u64,
    pub oversold: u64,
    pub locations: Vec<LocationImage>,
    pub channels: Vec<ChannelImage>,
    /// The postal-code table, copied with the catalog.
    pub postal_codes: Vec<PostalImage>,
    /// The next LSN when the supply ledger was copied: receipt records below it are in
    /// `receipts`.
    pub supply_lsn: u64,
    /// Open receipts of inbound supply.
    pub receipts: Vec<ReceiptImage>,
    /// SKU codes by SKU id.
    pub skus: Vec<String>,
    pub positions: Vec<PositionImage>,
    pub reservations: Vec<ReservationImage>,
    pub adjustments: Vec<AdjustmentImage>,
}

/// A snapshot file that cannot be used.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImageError {
    /// Shorter than its header, or than the image length the header gives.
    #[error("the snapshot is {len} bytes, it needs {needed}")]
    Truncated {
        /// Bytes in the file.
        len: u64,
        /// Bytes the header promises.
        needed: u64,
    },
    /// Not a snapshot file.
    #[error("the snapshot does not start with the snapshot magic")]
    Magic,
    /// A format this build does not read.
    #[error("snapshot format version {version} is not supported; this build reads version {SNAPSHOT_FORMAT_VERSION}")]
    Version {
        /// The version found.
        version: u32,
    },
    /// The header's checksum does not match.
    #[error("the snapshot header checksum does not match")]
    HeaderChecksum,
    /// The image's checksum does not match.
    #[error("the snapshot image checksum does not match: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum {
        /// Checksum in the header.
        stored: u32,
        /// Checksum of the bytes read.
        computed: u32,
    },
    /// The image failed validation.
    #[error("the snapshot image is malformed: {0}")]
    Malformed(String),
}

/// Encodes an image into a whole snapshot file.
pub(crate) fn encode(image: &EngineImage) -> Vec<u8> {
    let body = rkyv::to_bytes::<rancor::Error>(image).expect("serializing to memory cannot fail");
    let mut bytes = Vec::with_capacity(SNAPSHOT_HEADER_LEN + body.len());
    bytes.extend_from_slice(&SNAPSHOT_MAGIC);
    bytes.extend_from_slice(&SNAPSHOT_FORMAT_VERSION.to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.extend_from_slice(&(body.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    let header_crc = crc32c::crc32c(&bytes[..28]);
    bytes.extend_from_slice(&header_crc.to_le_bytes());
    debug_assert_eq!(bytes.len(), SNAPSHOT_HEADER_LEN);
    bytes.extend_from_slice(&body);
    bytes
}

/// Checks a snapshot file and returns its image bytes, aligned for access.
pub(crate) fn decode(bytes: &[u8]) -> Result<rkyv::util::AlignedVec<16>, ImageError> {
    let truncated = |needed: u64| ImageError::Truncated { len: bytes.len() as u64, needed };
    if bytes.len() < SNAPSHOT_HEADER_LEN {
        return Err(truncated(SNAPSHOT_HEADER_LEN as u64));
    }
    if bytes[..8] != SNAPSHOT_MAGIC {
        return Err(ImageError::Magic);
    }
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("four bytes"));
    if crc32c::crc32c(&bytes[..28]) != u32_at(28) {
        return Err(ImageError::HeaderChecksum);
    }
    let version = u32_at(8);
    if version != SNAPSHOT_FORMAT_VERSION {
        return Err(ImageError::Version { version });
    }
    let body_len = u64::from_le_bytes(bytes[16..24].try_into().expect("eight bytes"));
    let needed = SNAPSHOT_HEADER_LEN as u64 + body_len;
    if (bytes.len() as u64) < needed {
        return Err(truncated(needed));
    }
    let body = &bytes[SNAPSHOT_HEADER_LEN..needed as usize];
    let (stored, computed) = (u32_at(24), crc32c::crc32c(body));
    if stored != computed {
        return Err(ImageError::Checksum { stored, computed });
    }
    let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(body.len());
    aligned.extend_from_slice(body);
    access(&aligned)?;
    Ok(aligned)
}

/// Validates image bytes and returns the archived image.
pub(crate) fn access(bytes: &[u8]) -> Result<&ArchivedEngineImage, ImageError> {
    rkyv::access::<ArchivedEngineImage, rancor::Error>(bytes).map_err(|error| ImageError::Malformed(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> EngineImage {
        EngineImage {
            start_lsn: 7,
            catalog_lsn: 9,
            reservations_lsn: 11,
            end_lsn: 13,
            now_ms: 1_000,
            swept_until_ms: 900,
            holds_expired: 2,
            oversold: 0,
            locations: vec![LocationImage {
                code: "MX-CDMX-01".into(),
                kind: 0,
                lat: 19.4,
                lon: -99.1,
                methods: 1,
                daily_capacity: 0,
                active: true,
                routing: vec![1, 2, 3],
            }],
            channels: vec![ChannelImage {
                code: "default".into(),
                may_sell_safety_stock: false,
                locations: Some(vec![0]),
            }],
            postal_codes: vec![PostalImage {
                country: "MX".into(),
                postal_code: "06700".into(),
                lat: 19.41,
                lon: -99.16,
            }],
            supply_lsn: 12,
            receipts: vec![ReceiptImage { receipt_id: "PO-1".into(), position: 1, quantity: 500, arrival_ms: 9_000 }],
            skus: vec!["SKU-1".into()],
            positions: vec![PositionImage {
                sku: 0,
                location: 0,
                on_hand: 10,
                reserved: 2,
                allocated: 1,
                safety_stock: 0,
                hold_deadline_floor_s: 5,
                lsn: 12,
            }],
            reservations: Vec::new(),
            adjustments: Vec::new(),
        }
    }

    #[test]
    fn round_trip_keeps_every_field() {
        let bytes = encode(&sample());
        let aligned = decode(&bytes).expect("a fresh snapshot decodes");
        let image = access(&aligned).expect("validated");
        assert_eq!(image.start_lsn.to_native(), 7);
        assert_eq!(image.locations[0].code.as_str(), "MX-CDMX-01");
        assert_eq!(image.positions[0].lsn.to_native(), 12);
        assert_eq!(image.skus[0].as_str(), "SKU-1");
    }

    #[test]
    fn every_flipped_bit_is_refused() {
        let bytes = encode(&sample());
        for bit in 0..bytes.len() * 8 {
            let mut damaged = bytes.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(decode(&damaged).is_err(), "bit {bit} flipped was accepted");
        }
    }

    #[test]
    fn every_truncation_is_refused() {
        let bytes = encode(&sample());
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "a snapshot cut to {len} bytes was accepted");
        }
    }
}
