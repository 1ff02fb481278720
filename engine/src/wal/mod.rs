//! The write-ahead log: segment files of checksummed records, and the scan that reads
//! them back at recovery. docs/format.md gives the byte layout.

pub mod format;
pub mod record;
pub mod scan;
pub mod sim;
pub mod storage;
pub mod writer;

#[cfg(test)]
mod tests;
