//! The byte layout of log segments and records. docs/format.md describes it for
//! readers of the files; this module is the one place that writes and reads it.
//!
//! All integers are little-endian. A log sequence number (LSN) is the position of a
//! record's first byte in the log's byte stream, counting record bytes only (segment
//! headers excluded). So LSN order is write order, and the next record's LSN is the
//! previous one's plus its framed length.

use thiserror::Error;

/// First bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"PROMESAL";

/// Version of the segment and record layout. A reader refuses other versions.
pub const FORMAT_VERSION: u32 = 2;

/// Bytes of a segment header.
pub const SEGMENT_HEADER_LEN: usize = 32;

/// Bytes of a record header: payload length (4), CRC32C (4), LSN (8), record type (1).
pub const RECORD_HEADER_LEN: usize = 17;

/// Largest record payload, in bytes. A reservation of 1,000 lines with the longest ids
/// fits with room to spare; a length above this is treated as corruption.
pub const RECORD_PAYLOAD_MAX: usize = 1 << 20;

/// The header at the start of a segment file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// LSN of the first record in the segment.
    pub base_lsn: u64,
}

impl SegmentHeader {
    /// Encodes the header: magic (8), format version (4), header length (4), base LSN
    /// (8), CRC32C of the previous 24 bytes (4), zero (4).
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut bytes = [0u8; SEGMENT_HEADER_LEN];
        bytes[0..8].copy_from_slice(&SEGMENT_MAGIC);
        bytes[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes[12..16].copy_from_slice(&(SEGMENT_HEADER_LEN as u32).to_le_bytes());
        bytes[16..24].copy_from_slice(&self.base_lsn.to_le_bytes());
        let crc = crc32c::crc32c(&bytes[0..24]);
        bytes[24..28].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    /// Decodes and checks a header.
    pub fn decode(bytes: &[u8]) -> Result<Self, HeaderError> {
        if bytes.len() < SEGMENT_HEADER_LEN {
            return Err(HeaderError::Short { len: bytes.len() });
        }
        if bytes[0..8] != SEGMENT_MAGIC {
            return Err(HeaderError::Magic);
        }
        let version = u32_at(bytes, 8);
        if version != FORMAT_VERSION {
            return Err(HeaderError::Version { version });
        }
        let crc = u32_at(bytes, 24);
        if crc != crc32c::crc32c(&bytes[0..24]) {
            return Err(HeaderError::Checksum);
        }
        Ok(SegmentHeader { base_lsn: u64_at(bytes, 16) })
    }
}

/// A segment header that cannot be used.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum HeaderError {
    /// The file is shorter than a header.
    #[error("segment header is {len} bytes; a header is {SEGMENT_HEADER_LEN} bytes")]
    Short {
        /// Bytes present.
        len: usize,
    },
    /// The file does not start with the segment magic.
    #[error("segment does not start with the magic bytes PROMESAL")]
    Magic,
    /// A format version this build does not read.
    #[error("segment format version {version} is not supported; this build reads version {FORMAT_VERSION}")]
    Version {
        /// Version found.
        version: u32,
    },
    /// The header's checksum does not match.
    #[error("segment header checksum does not match")]
    Checksum,
}

/// Appends one framed record to `out`.
///
/// The CRC32C covers the payload length, the LSN, the type and the payload, so a
/// torn or shifted length is caught as surely as a damaged payload.
pub fn encode_record(lsn: u64, record_type: u8, payload: &[u8], out: &mut Vec<u8>) {
    assert!(payload.len() <= RECORD_PAYLOAD_MAX, "record payload of {} bytes is over the limit", payload.len());
    let start = out.len();
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&lsn.to_le_bytes());
    out.push(record_type);
    out.extend_from_slice(payload);
    let crc = record_crc(&out[start..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Framed length of a record with `payload_len` bytes of payload.
pub fn framed_len(payload_len: usize) -> usize {
    RECORD_HEADER_LEN + payload_len
}

fn record_crc(framed: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&framed[0..4]);
    crc32c::crc32c_append(crc, &framed[8..])
}

/// A record read back from a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// The record's LSN.
    pub lsn: u64,
    /// The record's type.
    pub record_type: u8,
    /// The payload bytes.
    pub payload: &'a [u8],
}

impl RecordRef<'_> {
    /// Bytes the record occupies in the segment, header included.
    pub fn framed_len(&self) -> usize {
        framed_len(self.payload.len())
    }
}

/// The content found at a position where a record was expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A whole record whose checksum and LSN match.
    Record(RecordRef<'a>),
    /// Zero bytes: space the writer never used (the end of the written log).
    Unwritten,
    /// Too few bytes for the record the header announces, or for a header.
    Truncated,
    /// A checksum, length or LSN that does not match.
    Corrupt,
}

/// Decodes the record at the start of `bytes`, which should have LSN `expected_lsn`.
pub fn decode_record(bytes: &[u8], expected_lsn: u64) -> Decoded<'_> {
    if bytes.len() < RECORD_HEADER_LEN {
        return if bytes.iter().all(|&byte| byte == 0) { Decoded::Unwritten } else { Decoded::Truncated };
    }
    if bytes[..RECORD_HEADER_LEN].iter().all(|&byte| byte == 0) {
        return Decoded::Unwritten;
    }
    let payload_len = u32_at(bytes, 0) as usize;
    if payload_len > RECORD_PAYLOAD_MAX {
        return Decoded::Corrupt;
    }
    let len = framed_len(payload_len);
    if bytes.len() < len {
        return Decoded::Truncated;
    }
    let framed = &bytes[..len];
    if u32_at(framed, 4) != record_crc(framed) || u64_at(framed, 8) != expected_lsn {
        return Decoded::Corrupt;
    }
    Decoded::Record(RecordRef { lsn: expected_lsn, record_type: framed[16], payload: &framed[RECORD_HEADER_LEN..] })
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("four bytes"))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("eight bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_header_round_trip() {
        let header = SegmentHeader { base_lsn: 123_456 };
        let bytes = header.encode();
        assert_eq!(SegmentHeader::decode(&bytes), Ok(header));

        let mut damaged = bytes;
        damaged[17] ^= 1;
        assert_eq!(SegmentHeader::decode(&damaged), Err(HeaderError::Checksum));
        let mut other_version = bytes;
        other_version[8] = 9;
        assert_eq!(SegmentHeader::decode(&other_version), Err(HeaderError::Version { version: 9 }));
        assert_eq!(SegmentHeader::decode(&bytes[..10]), Err(HeaderError::Short { len: 10 }));
        assert_eq!(SegmentHeader::decode(&[0; 32]), Err(HeaderError::Magic));
    }

    #[test]
    fn record_round_trip() {
        let mut log = Vec::new();
        encode_record(1_000, 7, b"reserve order-1", &mut log);
        let second_lsn = 1_000 + log.len() as u64;
        encode_record(second_lsn, 8, b"", &mut log);

        let Decoded::Record(first) = decode_record(&log, 1_000) else { panic!("first record did not decode") };
        assert_eq!((first.lsn, first.record_type, first.payload), (1_000, 7, &b"reserve order-1"[..]));
        let rest = &log[first.framed_len()..];
        let Decoded::Record(second) = decode_record(rest, second_lsn) else { panic!("second record did not decode") };
        assert_eq!((second.record_type, second.payload.len()), (8, 0));
        assert_eq!(decode_record(&rest[second.framed_len()..], 0), Decoded::Unwritten);
    }

    #[test]
    fn record_damage_is_detected_at_every_byte() {
        let mut log = Vec::new();
        encode_record(64, 3, b"confirm order-9 op c1", &mut log);
        for offset in 0..log.len() {
            for bit in 0..8 {
                let mut damaged = log.clone();
                damaged[offset] ^= 1 << bit;
                let decoded = decode_record(&damaged, 64);
                assert!(
                    matches!(decoded, Decoded::Corrupt | Decoded::Truncated),
                    "flip of bit {bit} at byte {offset} decoded as {decoded:?}"
                );
            }
        }
        for len in 0..log.len() {
            let decoded = decode_record(&log[..len], 64);
            assert!(matches!(decoded, Decoded::Truncated | Decoded::Unwritten), "cut at {len}: {decoded:?}");
        }
        assert_eq!(decode_record(&log, 65), Decoded::Corrupt);
    }
}
