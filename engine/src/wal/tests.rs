//! Tests of the scan over real files: torn tails cut at every offset, damage with
//! valid records after it refused, segment boundaries.

use super::format::{SEGMENT_HEADER_LEN, SegmentHeader, encode_record};
use super::scan::{Cut, ScanError, ScanOptions, ScanReport, scan, segment_name};
use super::storage::{FsStorage, Storage};

/// Bytes of zeros after the records, as a preallocated segment has.
const PREALLOCATED_BYTES: usize = 256;

/// Builds a segment file's bytes holding `payloads` from `base_lsn`, and returns them
/// with the end offset of each record.
fn segment_bytes(base_lsn: u64, payloads: &[&[u8]]) -> (Vec<u8>, Vec<usize>) {
    let mut bytes = SegmentHeader { base_lsn }.encode().to_vec();
    let mut ends = Vec::new();
    let mut lsn = base_lsn;
    for (index, payload) in payloads.iter().enumerate() {
        let start = bytes.len();
        encode_record(lsn, index as u8 + 1, payload, &mut bytes);
        lsn += (bytes.len() - start) as u64;
        ends.push(bytes.len());
    }
    bytes.resize(bytes.len() + PREALLOCATED_BYTES, 0);
    (bytes, ends)
}

fn write_segment(storage: &FsStorage, base_lsn: u64, bytes: &[u8]) {
    let mut file = storage.create(&segment_name(base_lsn)).unwrap();
    file.write_at(0, bytes).unwrap();
}

fn scan_all(storage: &FsStorage, options: ScanOptions) -> Result<(ScanReport, Vec<Vec<u8>>), ScanError> {
    let mut payloads = Vec::new();
    let report = scan(storage, 0, options, |record| {
        payloads.push(record.payload.to_vec());
        Ok(())
    })?;
    Ok((report, payloads))
}

const PAYLOADS: [&[u8]; 3] = [b"reserve order-1 SKU-1@L0 x2", b"confirm order-1 c1", b"release order-1 r1"];

#[test]
fn scan_reads_every_record_of_a_clean_log() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FsStorage::new(dir.path()).unwrap();
    let (bytes, ends) = segment_bytes(0, &PAYLOADS);
    write_segment(&storage, 0, &bytes);

    let (report, payloads) = scan_all(&storage, ScanOptions::default()).unwrap();
    assert_eq!(payloads, PAYLOADS.iter().map(|payload| payload.to_vec()).collect::<Vec<_>>());
    assert_eq!(report.records, 3);
    assert_eq!(report.end_lsn, (ends[2] - SEGMENT_HEADER_LEN) as u64);
    assert_eq!(report.cut, None);
}

#[test]
fn scan_cuts_torn_tail_at_every_offset() {
    let (bytes, ends) = segment_bytes(0, &PAYLOADS);
    for cut_at in ends[1] + 1..ends[2] {
        let dir = tempfile::tempdir().unwrap();
        let storage = FsStorage::new(dir.path()).unwrap();
        let mut torn = bytes.clone();
        torn[cut_at..].fill(0);
        write_segment(&storage, 0, &torn);

        let (report, payloads) = scan_all(&storage, ScanOptions::default()).unwrap();
        assert_eq!(payloads.len(), 2, "cut at {cut_at}");
        assert_eq!(report.end_lsn, (ends[1] - SEGMENT_HEADER_LEN) as u64, "cut at {cut_at}");
        let cut = report.cut.expect("a torn record is cut");
        assert_eq!(cut.offset, ends[1] as u64, "cut at {cut_at}");
        assert!(!cut.hole);

        // The cut is durable: a second scan finds a clean log.
        let (again, _) = scan_all(&storage, ScanOptions::default()).unwrap();
        assert_eq!(again.cut, None, "second scan after cut at {cut_at}");
        assert_eq!(again.records, 2);
    }
}

#[test]
fn scan_cuts_last_record_with_flipped_bit() {
    let (bytes, ends) = segment_bytes(0, &PAYLOADS);
    for offset in ends[1]..ends[2] {
        for bit in [0, 3, 7] {
            let dir = tempfile::tempdir().unwrap();
            let storage = FsStorage::new(dir.path()).unwrap();
            let mut damaged = bytes.clone();
            damaged[offset] ^= 1 << bit;
            write_segment(&storage, 0, &damaged);

            let (report, payloads) = scan_all(&storage, ScanOptions::default()).unwrap();
            assert_eq!(payloads.len(), 2, "bit {bit} at byte {offset}");
            let cut = report.cut.expect("a damaged last record is cut");
            assert_eq!(cut.offset, ends[1] as u64);
            assert_eq!(cut.dropped_bytes, (ends[2] - ends[1]) as u64, "bit {bit} at byte {offset}");
        }
    }
}

#[test]
fn scan_refuses_damage_followed_by_valid_records() {
    let (bytes, ends) = segment_bytes(0, &PAYLOADS);
    let dir = tempfile::tempdir().unwrap();
    let storage = FsStorage::new(dir.path()).unwrap();
    let mut damaged = bytes.clone();
    damaged[ends[0] + 20] ^= 0x10;
    write_segment(&storage, 0, &damaged);

    let error = scan_all(&storage, ScanOptions::default()).unwrap_err();
    let name = segment_name(0);
    assert_eq!(
        error.to_string(),
        format!(
            "log segment {name} is damaged at byte {} and valid records follow; \
             restart with the option to truncate the log there to drop them",
            ends[0]
        )
    );

    // The operator's explicit choice: cut there and lose what follows.
    let options = ScanOptions { truncate_at_corruption: true };
    let (report, payloads) = scan_all(&storage, options).unwrap();
    assert_eq!(payloads.len(), 1);
    assert_eq!(
        report.cut,
        Some(Cut { segment: name, offset: ends[0] as u64, dropped_bytes: (ends[2] - ends[0]) as u64, hole: true })
    );
}

#[test]
fn scan_follows_segments_and_drops_empty_last_one() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FsStorage::new(dir.path()).unwrap();
    let (first, ends) = segment_bytes(0, &PAYLOADS[..2]);
    write_segment(&storage, 0, &first);
    let second_base = (ends[1] - SEGMENT_HEADER_LEN) as u64;
    let (second, _) = segment_bytes(second_base, &PAYLOADS[2..]);
    write_segment(&storage, second_base, &second);
    let (report, payloads) = scan_all(&storage, ScanOptions::default()).unwrap();
    assert_eq!(payloads.len(), 3);
    assert_eq!(report.segments, 2);

    // A third segment whose header never reached the disk is dropped as a torn tail.
    let third_base = report.end_lsn;
    write_segment(&storage, third_base, &[0; 64]);
    let (report, _) = scan_all(&storage, ScanOptions::default()).unwrap();
    assert_eq!(report.end_lsn, third_base);
    assert!(!storage.list().unwrap().contains(&segment_name(third_base)));
}

#[test]
fn scan_refuses_gap_between_segments() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FsStorage::new(dir.path()).unwrap();
    let (first, _) = segment_bytes(0, &PAYLOADS[..1]);
    write_segment(&storage, 0, &first);
    let (second, _) = segment_bytes(10_000, &PAYLOADS[1..]);
    write_segment(&storage, 10_000, &second);

    let error = scan_all(&storage, ScanOptions::default()).unwrap_err();
    assert!(matches!(error, ScanError::Gap { base_lsn: 10_000, .. }), "{error}");
}
