//! Loads a synthetic catalogue: locations `L-0`.. and every SKU `SKU-0`.. at each of
//! them with the same on hand, through a staged import in batches.

use promesa_client::{Client, ClientConfig, ClientError};
use promesa_protocol::limits::ROWS_PER_REQUEST_MAX;
use promesa_protocol::{LocationRow, Request, Response, StockRow};

/// Locations per upsert request.
const LOCATIONS_PER_REQUEST: usize = 1_000;

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
    let client = Client::connect(config).await.map_err(describe)?;
    let locations: Vec<LocationRow> = (0..plan.locations)
        .map(|index| LocationRow {
            code: format!("L-{index}"),
            kind: 0,
            lat: 19.4 + index as f64 * 0.01,
            lon: -99.1,
            methods: 1,
            daily_capacity: 0,
            active: true,
        })
        .collect();
    for chunk in locations.chunks(LOCATIONS_PER_REQUEST) {
        expect_ok(client.call_one(Request::UpsertLocations { locations: chunk.to_vec() }).await)?;
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
