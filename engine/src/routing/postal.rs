//! The postal-code table: where a postal code is, and the fallback point of a region
//! for codes the table does not list.

use compact_str::CompactString;
use parking_lot::RwLock;

use crate::catalog::validate_id;
use crate::error::{PostalError, RouteError};
use crate::limits::POSTAL_CODE_LEN_MAX;
use crate::routing::{DestinationSource, PostalCodeRow, ResolvedDestination};

/// Postal codes and region prefixes by "CC:code" key (a prefix key ends in `*`).
#[derive(Default)]
pub(crate) struct PostalTable {
    entries: RwLock<hashbrown::HashMap<CompactString, (f64, f64), foldhash::fast::RandomState>>,
}

/// Checks a row and returns it with the country in uppercase.
pub(crate) fn validate_row(row_index: usize, row: &PostalCodeRow) -> Result<PostalCodeRow, PostalError> {
    if row.country.len() != 2 || !row.country.bytes().all(|byte| byte.is_ascii_alphabetic()) {
        return Err(PostalError::Country { row: row_index, country: row.country.clone() });
    }
    let star = row.postal_code.find('*');
    let code_ok = validate_id("postal_code", &row.postal_code, POSTAL_CODE_LEN_MAX).is_ok()
        && star.is_none_or(|at| at == row.postal_code.len() - 1);
    if !code_ok {
        return Err(PostalError::PostalCode { row: row_index, postal_code: row.postal_code.clone() });
    }
    if !(-90.0..=90.0).contains(&row.lat) || !(-180.0..=180.0).contains(&row.lon) {
        return Err(PostalError::Coordinates { row: row_index, lat: row.lat, lon: row.lon });
    }
    Ok(PostalCodeRow { country: row.country.to_ascii_uppercase(), ..row.clone() })
}

fn key(country: &str, postal_code: &str) -> CompactString {
    let mut key = CompactString::with_capacity(country.len() + 1 + postal_code.len());
    for byte in country.bytes() {
        key.push(byte.to_ascii_uppercase() as char);
    }
    key.push(':');
    key.push_str(postal_code);
    key
}

impl PostalTable {
    /// Inserts or replaces validated rows.
    pub(crate) fn upsert(&self, rows: &[PostalCodeRow]) {
        let mut entries = self.entries.write();
        entries.reserve(rows.len());
        for row in rows {
            entries.insert(key(&row.country, &row.postal_code), (row.lat, row.lon));
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.read().len()
    }

    /// Returns every row, sorted by key, for snapshots.
    pub(crate) fn rows(&self) -> Vec<PostalCodeRow> {
        let entries = self.entries.read();
        let mut rows: Vec<_> = entries
            .iter()
            .map(|(key, &(lat, lon))| {
                let (country, postal_code) = key.split_once(':').expect("keys have a colon");
                PostalCodeRow { country: country.to_owned(), postal_code: postal_code.to_owned(), lat, lon }
            })
            .collect();
        rows.sort_by(|a, b| (&a.country, &a.postal_code).cmp(&(&b.country, &b.postal_code)));
        rows
    }

    /// Finds a postal code's point, or else the point of the longest region prefix
    /// that covers it.
    pub(crate) fn resolve(&self, country: &str, postal_code: &str) -> Result<ResolvedDestination, RouteError> {
        let malformed = |reason| RouteError::MalformedPostalCode {
            country: country.to_owned(),
            postal_code: postal_code.to_owned(),
            reason,
        };
        if country.len() != 2 || !country.bytes().all(|byte| byte.is_ascii_alphabetic()) {
            return Err(malformed("the country is not two letters"));
        }
        if validate_id("postal_code", postal_code, POSTAL_CODE_LEN_MAX).is_err() || postal_code.contains('*') {
            return Err(malformed("the postal code must be 1 to 16 bytes without control characters or `*`"));
        }

        let entries = self.entries.read();
        if let Some(&(lat, lon)) = entries.get(&key(country, postal_code)) {
            return Ok(ResolvedDestination { lat, lon, source: DestinationSource::PostalCode });
        }
        let mut prefix_key = key(country, postal_code);
        for len in (0..postal_code.len()).rev() {
            if !postal_code.is_char_boundary(len) {
                continue;
            }
            prefix_key.truncate(3 + len);
            prefix_key.push('*');
            if let Some(&(lat, lon)) = entries.get(&prefix_key) {
                return Ok(ResolvedDestination {
                    lat,
                    lon,
                    source: DestinationSource::PostalRegion { prefix: postal_code[..len].to_owned() },
                });
            }
            prefix_key.pop();
        }
        Err(RouteError::UnknownPostalCode { country: country.to_owned(), postal_code: postal_code.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(country: &str, postal_code: &str, lat: f64, lon: f64) -> PostalCodeRow {
        PostalCodeRow { country: country.into(), postal_code: postal_code.into(), lat, lon }
    }

    #[test]
    fn exact_code_then_longest_region_prefix() {
        let table = PostalTable::default();
        let rows = [row("mx", "06700", 19.41, -99.16), row("MX", "06*", 19.43, -99.13), row("MX", "0*", 19.0, -99.0)];
        let rows: Vec<_> = rows.iter().enumerate().map(|(index, row)| validate_row(index, row).unwrap()).collect();
        table.upsert(&rows);

        let exact = table.resolve("MX", "06700").unwrap();
        assert_eq!((exact.lat, exact.source), (19.41, DestinationSource::PostalCode));
        let region = table.resolve("mx", "06600").unwrap();
        assert_eq!((region.lat, region.source), (19.43, DestinationSource::PostalRegion { prefix: "06".into() }));
        let wider = table.resolve("MX", "01000").unwrap();
        assert_eq!(wider.source, DestinationSource::PostalRegion { prefix: "0".into() });
        assert_eq!(
            table.resolve("MX", "99999").unwrap_err().to_string(),
            "postal code MX:99999 is not known and no region prefix in the postal table covers it"
        );
        assert!(matches!(table.resolve("MEX", "06700"), Err(RouteError::MalformedPostalCode { .. })));
        assert_eq!(table.rows().len(), 3);
    }

    #[test]
    fn rows_are_checked() {
        assert!(matches!(validate_row(0, &row("M1", "06700", 0.0, 0.0)), Err(PostalError::Country { .. })));
        assert!(matches!(validate_row(1, &row("MX", "0*6", 0.0, 0.0)), Err(PostalError::PostalCode { row: 1, .. })));
        assert!(matches!(validate_row(2, &row("MX", "", 0.0, 0.0)), Err(PostalError::PostalCode { .. })));
        assert!(matches!(validate_row(3, &row("MX", "06700", 91.0, 0.0)), Err(PostalError::Coordinates { .. })));
        assert!(validate_row(4, &row("MX", "*", 19.0, -99.0)).is_ok());
    }
}
