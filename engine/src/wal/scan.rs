//! Reading the log back at recovery: every valid record in LSN order, a torn or
//! corrupt tail cut, and corruption followed by valid records (a hole) refused.

use std::io;

use thiserror::Error;

use super::format::{Decoded, HeaderError, RecordRef, SEGMENT_HEADER_LEN, SegmentHeader, decode_record};
use super::storage::Storage;

/// Suffix of segment file names; the stem is the segment's base LSN in 20 digits.
const SEGMENT_SUFFIX: &str = ".log";

/// Returns the file name of the segment whose first record has LSN `base_lsn`.
pub fn segment_name(base_lsn: u64) -> String {
    format!("{base_lsn:020}{SEGMENT_SUFFIX}")
}

pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(SEGMENT_SUFFIX)?;
    if stem.len() != 20 || !stem.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// Options of the scan for damage that valid records follow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanOptions {
    /// Cut the log at the first damaged record even when valid records follow, losing
    /// them. Off by default: a hole in the middle stops recovery with an error, because
    /// guessing could replay a state no sequence of requests produced.
    pub truncate_at_corruption: bool,
}

/// The place where the log was cut, and the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cut {
    /// Segment file name.
    pub segment: String,
    /// Byte offset in that file of the first byte dropped.
    pub offset: u64,
    /// Bytes dropped (written bytes from the cut to the end of the log).
    pub dropped_bytes: u64,
    /// Whether valid records followed the cut (only with `truncate_at_corruption`).
    pub hole: bool,
}

/// The result of a scan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanReport {
    /// Segment files read.
    pub segments: usize,
    /// Records passed to the visitor (those at or after `from_lsn`).
    pub records: u64,
    /// LSN just past the last valid record: where the next record goes.
    pub end_lsn: u64,
    /// The cut made, if the log ended in a torn or damaged record.
    pub cut: Option<Cut>,
}

/// Recovery cannot read the log.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ScanError {
    /// Damage with valid records after it.
    #[error(
        "log segment {segment} is damaged at byte {offset} and valid records follow; \
         restart with the option to truncate the log there to drop them"
    )]
    Hole {
        /// Segment file name.
        segment: String,
        /// Byte offset of the damaged record.
        offset: u64,
    },
    /// A segment whose header cannot be read, with later segments present.
    #[error("log segment {segment} has an unusable header: {error}")]
    Header {
        /// Segment file name.
        segment: String,
        /// The header problem.
        error: HeaderError,
    },
    /// Segments whose LSNs do not follow each other.
    #[error("log segment {segment} starts at LSN {base_lsn}, but the previous segment ends at LSN {expected_lsn}")]
    Gap {
        /// Segment file name.
        segment: String,
        /// Its base LSN.
        base_lsn: u64,
        /// The LSN where the previous segment ended.
        expected_lsn: u64,
    },
    /// The visitor refused a record.
    #[error("log record at LSN {lsn} in segment {segment} could not be applied: {reason}")]
    Apply {
        /// Segment file name.
        segment: String,
        /// The record's LSN.
        lsn: u64,
        /// The visitor's reason.
        reason: String,
    },
    /// A file operation failed.
    #[error("log folder: {0}")]
    Io(#[from] io::Error),
}

/// Reads the segments from the one holding `from_lsn` on, in LSN order, passes each
/// valid record at or after `from_lsn` to `visit`, and cuts a torn or damaged tail so
/// that writing can continue at `end_lsn`. Empty segments after the cut are removed.
pub fn scan(
    storage: &dyn Storage,
    from_lsn: u64,
    options: ScanOptions,
    mut visit: impl FnMut(RecordRef<'_>) -> Result<(), String>,
) -> Result<ScanReport, ScanError> {
    let mut segments: Vec<(u64, String)> =
        storage.list()?.into_iter().filter_map(|name| parse_segment_name(&name).map(|lsn| (lsn, name))).collect();
    segments.sort();

    // Segments wholly before `from_lsn` are not read: the one holding it comes first.
    // With none holding it, records are missing (a log that starts after it).
    let first = segments.iter().rposition(|(lsn, _)| *lsn <= from_lsn).unwrap_or(0);
    segments.drain(..first);
    if let Some((base_lsn, name)) = segments.first()
        && *base_lsn > from_lsn
    {
        return Err(ScanError::Gap { segment: name.clone(), base_lsn: *base_lsn, expected_lsn: from_lsn });
    }
    let mut report =
        ScanReport { end_lsn: segments.first().map_or(from_lsn, |(lsn, _)| *lsn), ..ScanReport::default() };

    // Segments are read one at a time, so memory contains one segment, not the whole log.
    // Only damage makes the scan read the later segments early, to tell a torn tail
    // from a hole.
    let read = |index: usize| storage.open(&segments[index].1).and_then(|mut file| file.read_all());
    let later_has_record = |from: usize| -> io::Result<bool> {
        for index in from..segments.len() {
            if has_valid_record(&read(index)?) {
                return Ok(true);
            }
        }
        Ok(false)
    };
    let later_written_bytes = |from: usize| -> io::Result<u64> {
        (from..segments.len()).map(|index| read(index).map(|bytes| written_len(&bytes) as u64)).sum()
    };

    for (index, (named_lsn, name)) in segments.iter().enumerate() {
        let bytes = read(index)?;
        report.segments += 1;
        let header = match SegmentHeader::decode(&bytes) {
            Ok(header) => header,
            Err(error) => {
                // A segment whose header never fully reached the disk is a torn tail,
                // unless valid records follow it.
                if later_has_record(index + 1)? {
                    return Err(ScanError::Header { segment: name.clone(), error });
                }
                let dropped_bytes = written_len(&bytes) as u64 + later_written_bytes(index + 1)?;
                if dropped_bytes > 0 {
                    report.cut = Some(Cut { segment: name.clone(), offset: 0, dropped_bytes, hole: false });
                }
                remove_segments(storage, &segments[index..])?;
                break;
            }
        };
        if header.base_lsn != *named_lsn || (index > 0 && header.base_lsn != report.end_lsn) {
            return Err(ScanError::Gap {
                segment: name.clone(),
                base_lsn: header.base_lsn,
                expected_lsn: report.end_lsn,
            });
        }

        let mut offset = SEGMENT_HEADER_LEN;
        let mut lsn = header.base_lsn;
        let stop = loop {
            match decode_record(&bytes[offset..], lsn) {
                Decoded::Record(record) => {
                    if record.lsn >= from_lsn {
                        visit(record).map_err(|reason| ScanError::Apply { segment: name.clone(), lsn, reason })?;
                        report.records += 1;
                    }
                    offset += record.framed_len();
                    lsn += record.framed_len() as u64;
                }
                Decoded::Unwritten => break None,
                Decoded::Truncated | Decoded::Corrupt => break Some(offset),
            }
        };
        report.end_lsn = lsn;

        // Bytes after the last valid record must be unwritten, in this segment and in
        // every later one, unless they are the torn tail of the log.
        let damage_at = stop.or_else(|| first_written_byte(&bytes[offset..]).map(|_| offset));
        if let Some(damage_at) = damage_at {
            let hole = later_has_record(index + 1)? || has_valid_record_after(&bytes[damage_at + 1..]);
            if hole && !options.truncate_at_corruption {
                return Err(ScanError::Hole { segment: name.clone(), offset: damage_at as u64 });
            }
            let dropped_bytes = written_len(&bytes[damage_at..]) as u64 + later_written_bytes(index + 1)?;
            let mut file = storage.open(name)?;
            file.write_at(damage_at as u64, &vec![0; bytes.len() - damage_at])?;
            file.sync_data()?;
            report.cut = Some(Cut { segment: name.clone(), offset: damage_at as u64, dropped_bytes, hole });
            remove_segments(storage, &segments[index + 1..])?;
            break;
        }
    }
    Ok(report)
}

fn remove_segments(storage: &dyn Storage, segments: &[(u64, String)]) -> io::Result<()> {
    if segments.is_empty() {
        return Ok(());
    }
    for (_, name) in segments {
        storage.remove(name)?;
    }
    storage.sync_dir()
}

fn first_written_byte(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&byte| byte != 0)
}

/// Bytes up to and including the last non-zero byte.
fn written_len(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|&byte| byte != 0).map_or(0, |last| last + 1)
}

/// Returns whether a segment file contains at least one valid record.
fn has_valid_record(bytes: &[u8]) -> bool {
    let Ok(header) = SegmentHeader::decode(bytes) else { return false };
    matches!(decode_record(&bytes[SEGMENT_HEADER_LEN..], header.base_lsn), Decoded::Record(_))
}

/// Returns whether any byte offset in `bytes` starts a record whose checksum matches
/// and whose LSN field agrees with a record framed there. Used only after damage, to
/// tell a torn tail from a hole.
fn has_valid_record_after(bytes: &[u8]) -> bool {
    (0..bytes.len()).any(|start| {
        let candidate = &bytes[start..];
        if candidate.len() < super::format::RECORD_HEADER_LEN {
            return false;
        }
        let lsn = u64::from_le_bytes(candidate[8..16].try_into().expect("eight bytes"));
        matches!(decode_record(candidate, lsn), Decoded::Record(_))
    })
}
