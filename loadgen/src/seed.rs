//! Loads a synthetic catalogue: locations `L-0`.. and every SKU `SKU-0`.. at each of
//! them with the same on hand, through a staged import in batches. The locations sit
//! on a square grid around Mexico City with the default routing parameters, so that
//! routed reserves to points near them have locations to choose from.

use promesa_client::{Client, ClientConfig, ClientError};
use promesa_protocol::limits::ROWS_PER_REQUEST_MAX;
use promesa_protocol::{LocationRouting, LocationRow, LocationWithRouting, Request, Response, StockRow};

/// Locations per upsert request.
const LOCATIONS_PER_REQUEST: usize = 1_000;

/// Latitude and longitude of the grid's centre, in degrees: the centre of Mexico City.
pub const GRID_CENTRE_DEGREES: (f64, f64) = (19.43, -99.13);

/// Distance between neighbouring locations on the grid, in degrees (about 5.5 km).
pub const GRID_SPACING_DEGREES: f64 = 0.05;

/// Margin of the destination box beyond the outermost locations, in degrees.
const DESTINATION_MARGIN_DEGREES: f64 = 0.1;

/// Maximum locations a seed loads. The grid of 1,000,000 locations spans 50 degrees,
/// which keeps every point at a valid latitude and longitude.
pub const SEED_LOCATIONS_MAX: u64 = 1_000_000;

/// A box of latitudes and longitudes, in degrees.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DestinationBox {
    /// Southern edge.
    pub lat_min: f64,
    /// Northern edge.
    pub lat_max: f64,
    /// Western edge.
    pub lon_min: f64,
    /// Eastern edge.
    pub lon_max: f64,
}

/// Returns the columns of the grid of `locations` locations: the side of the smallest
/// square they fit in, at least 1.
fn grid_columns(locations: u64) -> u64 {
    let columns = locations.isqrt().max(1);
    if columns * columns < locations { columns + 1 } else { columns }
}

/// Returns the rows and columns of the grid, and the offsets in degrees from the
/// centre to the first row and the first column.
fn grid(locations: u64) -> (u64, u64, f64, f64) {
    let columns = grid_columns(locations);
    let rows = locations.max(1).div_ceil(columns);
    let row_offset = -((rows - 1) as f64) / 2.0 * GRID_SPACING_DEGREES;
    let column_offset = -((columns - 1) as f64) / 2.0 * GRID_SPACING_DEGREES;
    (rows, columns, row_offset, column_offset)
}

/// Returns the latitude and longitude, in degrees, of location `L-index` of a seed of
/// `locations` locations: row by row on a grid centred on [`GRID_CENTRE_DEGREES`].
pub fn location_point(index: u64, locations: u64) -> (f64, f64) {
    let (_, columns, row_offset, column_offset) = grid(locations);
    let (row, column) = (index / columns, index % columns);
    (
        GRID_CENTRE_DEGREES.0 + row_offset + row as f64 * GRID_SPACING_DEGREES,
        GRID_CENTRE_DEGREES.1 + column_offset + column as f64 * GRID_SPACING_DEGREES,
    )
}

/// Returns the box that covers every location of a seed of `locations` locations,
/// with a margin, clamped to valid latitudes and longitudes: where routed reserves
/// send their orders.
pub fn destination_box(locations: u64) -> DestinationBox {
    let (rows, columns, row_offset, column_offset) = grid(locations);
    let lat_first = GRID_CENTRE_DEGREES.0 + row_offset;
    let lon_first = GRID_CENTRE_DEGREES.1 + column_offset;
    DestinationBox {
        lat_min: (lat_first - DESTINATION_MARGIN_DEGREES).max(-90.0),
        lat_max: (lat_first + (rows - 1) as f64 * GRID_SPACING_DEGREES + DESTINATION_MARGIN_DEGREES).min(90.0),
        lon_min: (lon_first - DESTINATION_MARGIN_DEGREES).max(-180.0),
        lon_max: (lon_first + (columns - 1) as f64 * GRID_SPACING_DEGREES + DESTINATION_MARGIN_DEGREES).min(180.0),
    }
}

/// What to load.
#[derive(Clone, Debug)]
pub struct SeedPlan {
    /// SKUs.
    pub skus: u64,
    /// Locations.
    pub locations: u64,
    /// On hand of every position.
    pub on_hand: u64,
    /// Rows per import request, at most the protocol's limit.
    pub rows_per_request: usize,
    /// Print a progress line per request.
    pub progress: bool,
}

/// Loads the catalogue; returns the positions created or replaced.
pub async fn seed(config: &ClientConfig, plan: &SeedPlan) -> Result<u64, String> {
    if plan.locations > SEED_LOCATIONS_MAX {
        return Err(format!(
            "--locations {} is above the maximum of {SEED_LOCATIONS_MAX} locations a seed loads",
            plan.locations
        ));
    }
    let client = Client::connect(config).await.map_err(describe)?;
    let locations: Vec<LocationWithRouting> = (0..plan.locations)
        .map(|index| {
            let (lat, lon) = location_point(index, plan.locations);
            let location = LocationRow {
                code: format!("L-{index}"),
                kind: 0,
                lat,
                lon,
                methods: 1,
                daily_capacity: 0,
                active: true,
            };
            LocationWithRouting { location, routing: LocationRouting::default() }
        })
        .collect();
    for chunk in locations.chunks(LOCATIONS_PER_REQUEST) {
        expect_ok(client.call_one(Request::UpsertLocationsWithRouting { locations: chunk.to_vec() }).await)?;
    }

    let import_id = format!("loadgen-seed-{}", std::process::id());
    let rows_per_request = plan.rows_per_request.clamp(1, ROWS_PER_REQUEST_MAX);
    let total = plan.skus * plan.locations;
    let mut staged = 0u64;
    let mut batch = Vec::with_capacity(rows_per_request);
    for sku in 0..plan.skus {
        for location in 0..plan.locations {
            batch.push(StockRow {
                sku: format!("SKU-{sku}"),
                location: format!("L-{location}"),
                on_hand: plan.on_hand,
                safety_stock: None,
            });
            if batch.len() == rows_per_request || (sku + 1 == plan.skus && location + 1 == plan.locations) {
                let rows = std::mem::take(&mut batch);
                let count = rows.len() as u64;
                let request = Request::ImportRows { import_id: import_id.clone(), first_line: staged, rows };
                expect_ok(client.call_one(request).await)?;
                staged += count;
                if plan.progress {
                    eprintln!("staged {staged} of {total} positions");
                }
            }
        }
    }
    expect_ok(client.call_one(Request::ImportCommit { import_id }).await)?;
    client.close().await;
    Ok(total)
}

fn describe(error: ClientError) -> String {
    error.to_string()
}

fn expect_ok(response: Result<Response, ClientError>) -> Result<(), String> {
    match response.map_err(describe)? {
        Response::Error { code, message } => Err(format!("the server refused the seed (code {code}): {message}")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_points_are_distinct_and_inside_the_box() {
        for locations in [1, 2, 5, 9, 10, 150] {
            let bounds = destination_box(locations);
            let mut points = Vec::new();
            for index in 0..locations {
                let (lat, lon) = location_point(index, locations);
                assert!((bounds.lat_min..=bounds.lat_max).contains(&lat), "{locations}: L-{index} lat {lat}");
                assert!((bounds.lon_min..=bounds.lon_max).contains(&lon), "{locations}: L-{index} lon {lon}");
                points.push((lat, lon));
            }
            points.sort_by(|a, b| a.partial_cmp(b).unwrap());
            points.dedup();
            assert_eq!(points.len() as u64, locations);
        }
    }

    #[test]
    fn one_location_sits_at_the_centre() {
        assert_eq!(location_point(0, 1), GRID_CENTRE_DEGREES);
        let bounds = destination_box(1);
        assert!(bounds.lat_max - bounds.lat_min > 0.0);
        assert!(bounds.lon_max - bounds.lon_min > 0.0);
    }

    #[test]
    fn largest_grid_stays_on_the_globe() {
        let bounds = destination_box(SEED_LOCATIONS_MAX);
        assert!(bounds.lat_min > -90.0, "{bounds:?}");
        assert!(bounds.lat_max < 90.0, "{bounds:?}");
        assert!(bounds.lon_min > -180.0, "{bounds:?}");
        assert!(bounds.lon_max < 180.0, "{bounds:?}");
    }
}
