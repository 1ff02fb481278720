//! Real order data to replay: a fulfilment network (locations with coordinates and
//! stock) and orders in time order, each with a destination point and lines.
//!
//! Three sources. The bundled extract of the Olist marketplace sample (`data/olist-demo`
//! in the repository, compiled into the binary) is what the demo replays. With a data
//! folder, `Source::OlistItems` reads the full Olist order-item table and
//! `Source::OnlineRetail` the UCI Online Retail invoices. The full Olist table has no
//! order-to-customer link for most orders: those orders get a customer drawn from the
//! real customer table, and the dataset's notes count the orders paired that way.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use promesa_protocol::limits::ROUTE_LINES_MAX;

use crate::draws::Draws;
use crate::replay::grouped;

/// The bundled extract's orders.
const BUNDLED_ORDERS: &str = include_str!("../../data/olist-demo/orders.csv");
/// The bundled extract's locations.
const BUNDLED_LOCATIONS: &str = include_str!("../../data/olist-demo/locations.csv");
/// The bundled extract's stock.
const BUNDLED_STOCK: &str = include_str!("../../data/olist-demo/stock.csv");

/// Brazil's mainland offset from UTC, in minutes (no daylight saving since 2019).
const BRAZIL_UTC_OFFSET_MINUTES: i16 = -180;

/// One (seller, product) pair in this many is stocked one unit short of its demand.
const SHORT_ONE_IN: u64 = 5;
/// Share of a product's demand each fulfilment centre stocks.
const CENTRE_SHARE: f64 = 0.4;
/// Best-selling products every fulfilment centre stocks.
const CENTRE_PRODUCTS: usize = 300;
/// The fulfilment centres of the Olist network: code and IBGE municipality code of the
/// seat they stand at (Sao Paulo, Rio de Janeiro, Belo Horizonte).
const OLIST_CENTRES: [(&str, &str); 3] =
    [("FC-SAO-PAULO", "3550308"), ("FC-RIO", "3304557"), ("FC-BELO-HORIZONTE", "3106200")];

/// Share of each SKU's demand the UCI retailer's warehouse stocks, so late orders of
/// the best sellers run short.
const RETAIL_STOCK_SHARE: f64 = 0.95;
/// The UCI retailer's warehouse: its location is not published; London is assumed.
const RETAIL_WAREHOUSE: (&str, f64, f64) = ("UK-WAREHOUSE", 51.5074, -0.1278);
/// Coordinates of each country of the UCI invoices: its capital (the European
/// Community at Brussels). Orders of `Unspecified` are left out.
const COUNTRY_POINTS: [(&str, f64, f64); 37] = [
    ("United Kingdom", 51.5074, -0.1278),
    ("Germany", 52.5200, 13.4050),
    ("France", 48.8566, 2.3522),
    ("EIRE", 53.3498, -6.2603),
    ("Spain", 40.4168, -3.7038),
    ("Netherlands", 52.3676, 4.9041),
    ("Belgium", 50.8503, 4.3517),
    ("Switzerland", 46.9480, 7.4474),
    ("Portugal", 38.7223, -9.1393),
    ("Australia", -35.2809, 149.1300),
    ("Norway", 59.9139, 10.7522),
    ("Italy", 41.9028, 12.4964),
    ("Channel Islands", 49.1858, -2.1100),
    ("Finland", 60.1699, 24.9384),
    ("Cyprus", 35.1856, 33.3823),
    ("Sweden", 59.3293, 18.0686),
    ("Austria", 48.2082, 16.3738),
    ("Denmark", 55.6761, 12.5683),
    ("Japan", 35.6762, 139.6503),
    ("Poland", 52.2297, 21.0122),
    ("Israel", 31.7683, 35.2137),
    ("USA", 38.9072, -77.0369),
    ("Hong Kong", 22.3193, 114.1694),
    ("Singapore", 1.3521, 103.8198),
    ("Iceland", 64.1466, -21.9426),
    ("Canada", 45.4215, -75.6972),
    ("Greece", 37.9838, 23.7275),
    ("Malta", 35.8989, 14.5146),
    ("United Arab Emirates", 24.4539, 54.3773),
    ("European Community", 50.8503, 4.3517),
    ("RSA", -25.7479, 28.2293),
    ("Lebanon", 33.8938, 35.5018),
    ("Lithuania", 54.6872, 25.2797),
    ("Brazil", -15.7939, -47.8828),
    ("Czech Republic", 50.0755, 14.4378),
    ("Bahrain", 26.2285, 50.5860),
    ("Saudi Arabia", 24.7136, 46.6753),
];

/// The source of a dataset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The extract compiled into the binary (`data/olist-demo`).
    Bundled,
    /// An extract folder with `orders.csv`, `locations.csv` and `stock.csv`.
    Extract(PathBuf),
    /// The full Olist order-item table of a data folder (`olist/`).
    OlistItems(PathBuf),
    /// The UCI Online Retail invoices of a data folder (`online_retail/`).
    OnlineRetail(PathBuf),
}

/// A location of the network.
#[derive(Clone, Debug, PartialEq)]
pub struct Site {
    /// Location code.
    pub code: String,
    /// Kind: 0 warehouse, 3 drop-ship vendor.
    pub kind: u8,
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
    /// Fulfilment method bits: 1 ship, 8 drop-ship.
    pub methods: u8,
}

/// Units of a SKU at a location at the start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stock {
    /// SKU code.
    pub sku: String,
    /// Location code.
    pub location: String,
    /// Units on hand.
    pub on_hand: u64,
}

/// An order to replay.
#[derive(Clone, Debug, PartialEq)]
pub struct Order {
    /// The source's order id.
    pub id: String,
    /// The order's time as the source gives it (local time of the source's country).
    pub time: String,
    /// The same time in seconds since 1970-01-01 00:00 of that local clock, for pacing.
    pub time_secs: i64,
    /// Destination latitude in degrees.
    pub lat: f64,
    /// Destination longitude in degrees.
    pub lon: f64,
    /// Lines: SKU and units.
    pub lines: Vec<(String, u64)>,
    /// The destination is a customer drawn from the real customer table, not the
    /// order's own.
    pub synthetic_customer: bool,
}

/// A network, its stock and the orders to replay over it.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Title of the data, for reports.
    pub title: String,
    /// Offset of the network's local time from UTC, in minutes.
    pub utc_offset_minutes: i16,
    /// The locations.
    pub sites: Vec<Site>,
    /// The stock at the start.
    pub stock: Vec<Stock>,
    /// Orders in time order.
    pub orders: Vec<Order>,
    /// Facts about how the data was read, for reports (rows left out, synthetic
    /// pairings, assumed locations).
    pub notes: Vec<String>,
}

impl Dataset {
    /// Reads a dataset. `seed` draws the synthetic customers of the full Olist table.
    pub fn load(source: &Source, seed: u64) -> Result<Dataset, String> {
        let mut dataset = match source {
            Source::Bundled => Dataset::from_extract(
                "real Olist marketplace orders from the bundled extract".to_owned(),
                BUNDLED_ORDERS.as_bytes(),
                BUNDLED_LOCATIONS.as_bytes(),
                BUNDLED_STOCK.as_bytes(),
            ),
            Source::Extract(folder) => {
                let read = |name: &str| read_file(&folder.join(name));
                Dataset::from_extract(
                    format!("orders from the extract in {}", folder.display()),
                    &read("orders.csv")?,
                    &read("locations.csv")?,
                    &read("stock.csv")?,
                )
            }
            Source::OlistItems(folder) => olist_items(folder, seed),
            Source::OnlineRetail(folder) => online_retail(folder),
        }?;
        dataset.split_long_orders();
        Ok(dataset)
    }

    /// Sends an order of more lines than a routed order takes as several orders of at
    /// most `ROUTE_LINES_MAX` lines, with ids ending in `/1`, `/2`, and so on.
    fn split_long_orders(&mut self) {
        let long = self.orders.iter().filter(|order| order.lines.len() > ROUTE_LINES_MAX).count();
        if long == 0 {
            return;
        }
        let mut orders = Vec::with_capacity(self.orders.len() + long);
        for order in self.orders.drain(..) {
            if order.lines.len() <= ROUTE_LINES_MAX {
                orders.push(order);
                continue;
            }
            for (part, lines) in order.lines.chunks(ROUTE_LINES_MAX).enumerate() {
                orders.push(Order { id: format!("{}/{}", order.id, part + 1), lines: lines.to_vec(), ..order.clone() });
            }
        }
        self.notes.push(format!(
            "{} orders have more than {ROUTE_LINES_MAX} lines, the most a routed order takes: each is sent as \
             several orders of at most {ROUTE_LINES_MAX} lines",
            grouped(long as u64)
        ));
        self.orders = orders;
    }

    /// Total units ordered.
    pub fn units_ordered(&self) -> u64 {
        self.orders.iter().flat_map(|order| &order.lines).map(|(_, units)| units).sum()
    }

    /// Returns the distinct SKUs of the stock, sorted.
    pub fn skus(&self) -> Vec<String> {
        let skus: BTreeSet<&str> = self.stock.iter().map(|stock| stock.sku.as_str()).collect();
        skus.into_iter().map(str::to_owned).collect()
    }

    fn from_extract(title: String, orders: &[u8], locations: &[u8], stock: &[u8]) -> Result<Dataset, String> {
        let mut sites = Vec::new();
        for (index, row) in records(locations, "locations.csv")?.into_iter().enumerate() {
            let line = index + 2;
            let [code, kind, lat, lon, methods] = columns::<5>(&row, "locations.csv", line)?;
            let (kind, methods) = match (kind, methods) {
                ("warehouse", "ship") => (0, 1),
                ("drop_ship", "drop_ship") => (3, 8),
                other => return Err(format!("locations.csv line {line}: kind and methods {other:?} are not known")),
            };
            sites.push(Site {
                code: code.to_owned(),
                kind,
                lat: number(lat, "lat", "locations.csv", line)?,
                lon: number(lon, "lon", "locations.csv", line)?,
                methods,
            });
        }

        let mut stocked = Vec::new();
        for (index, row) in records(stock, "stock.csv")?.into_iter().enumerate() {
            let line = index + 2;
            let [sku, location, on_hand] = columns::<3>(&row, "stock.csv", line)?;
            let on_hand = on_hand
                .parse()
                .map_err(|_| format!("stock.csv line {line}: on_hand {on_hand:?} is not a whole number"))?;
            stocked.push(Stock { sku: sku.to_owned(), location: location.to_owned(), on_hand });
        }

        let mut parsed = Vec::new();
        let mut ids = HashSet::new();
        for (index, row) in records(orders, "orders.csv")?.into_iter().enumerate() {
            let line = index + 2;
            let [id, time, lat, lon, lines] = columns::<5>(&row, "orders.csv", line)?;
            let mut order_lines = Vec::new();
            for item in lines.split('|') {
                let (sku, units) = item
                    .split_once(':')
                    .ok_or_else(|| format!("orders.csv line {line}: line {item:?} is not SKU:QUANTITY"))?;
                let units =
                    units.parse::<u64>().ok().filter(|&units| units >= 1).ok_or_else(|| {
                        format!("orders.csv line {line}: quantity {units:?} is not a whole number >= 1")
                    })?;
                order_lines.push((sku.to_owned(), units));
            }
            if !ids.insert(id.to_owned()) {
                return Err(format!("orders.csv line {line}: order id {id:?} appears on an earlier line too"));
            }
            let (lat, lon) = (number(lat, "lat", "orders.csv", line)?, number(lon, "lon", "orders.csv", line)?);
            if !((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon)) {
                return Err(format!(
                    "orders.csv line {line}: point {lat}, {lon} is off the globe (latitude -90 to 90, longitude \
                     -180 to 180)"
                ));
            }
            parsed.push(Order {
                id: id.to_owned(),
                time: time.to_owned(),
                time_secs: local_secs(time)
                    .ok_or_else(|| format!("orders.csv line {line}: time {time:?} is not YYYY-MM-DD HH:MM"))?,
                lat,
                lon,
                lines: order_lines,
                synthetic_customer: false,
            });
        }
        if parsed.is_empty() {
            return Err("orders.csv has no orders".to_owned());
        }
        parsed.sort_by(|a, b| (a.time_secs, &a.id).cmp(&(b.time_secs, &b.id)));

        let sellers = sites.iter().filter(|site| site.kind == 3).count();
        Ok(Dataset {
            title: format!(
                "{} {title} ({} to {})",
                grouped(parsed.len() as u64),
                parsed.first().map_or("", |order| order.time.as_str()),
                parsed.last().map_or("", |order| order.time.as_str()),
            ),
            utc_offset_minutes: BRAZIL_UTC_OFFSET_MINUTES,
            notes: vec![format!(
                "network: {} sellers as drop-ship vendors at their zip-prefix points and {} fulfilment \
                 centres, stocked by the extract's rule (data/NOTICE)",
                grouped(sellers as u64),
                sites.len() - sellers
            )],
            sites,
            stock: stocked,
            orders: parsed,
        })
    }
}

/// Reads the full Olist order-item table: every order with items, timed by its first
/// item's shipping limit, the table's only time (the purchase came a few days before).
/// An order goes to its customer's zip-prefix point where the 9,999-order sample links
/// it, and otherwise to a customer drawn from the real customer table. The network and
/// its stock follow the bundled extract's rule over all the orders.
fn olist_items(data: &Path, seed: u64) -> Result<Dataset, String> {
    let folder = data_subfolder(data, "olist")?;
    let coordinates = Table::read(&folder.join("olist_zip_prefix_coords.csv"))?;
    let points = coordinates.points("zip_code_prefix", "lat", "lng")?;
    let customers = Table::read(&folder.join("olist_customers_dataset.csv.gz"))?;
    let customer_zip = customers.pairs("customer_id", "customer_zip_code_prefix")?;
    let zip_column = customers.column("customer_zip_code_prefix")?;
    let customer_pool: Vec<&str> = customers.rows.iter().map(|row| &row[zip_column]).collect();
    let linked = Table::read(&folder.join("olist_orders_sample_first9999.csv"))?.pairs("order_id", "customer_id")?;
    let seller_zip =
        Table::read(&folder.join("olist_sellers_dataset.csv"))?.pairs("seller_id", "seller_zip_code_prefix")?;
    let seats = Table::read(&data.join("br_geo/br_municipios.csv"))?.points("codigo_ibge", "latitude", "longitude")?;
    if customer_pool.is_empty() {
        return Err(format!("{}: no customers", customers.file.display()));
    }

    // Items grouped by order: units per product, the seller of each, the earliest limit.
    struct Gathered {
        time: String,
        lines: BTreeMap<String, (u64, String)>,
    }
    let mut gathered: BTreeMap<String, Gathered> = BTreeMap::new();
    let items = Table::read(&folder.join("olist_order_items_dataset.csv.gz"))?;
    let [order_column, product_column, seller_column, time_column] =
        items.columns(["order_id", "product_id", "seller_id", "shipping_limit_date"])?;
    for item in &items.rows {
        let sku = &item[product_column];
        let sku = sku.get(..16).unwrap_or(sku).to_owned();
        let time = &item[time_column];
        let entry = gathered
            .entry(item[order_column].to_owned())
            .or_insert_with(|| Gathered { time: time.to_owned(), lines: BTreeMap::new() });
        if time < entry.time.as_str() {
            entry.time = time.to_owned();
        }
        let line = entry.lines.entry(sku).or_insert_with(|| (0, item[seller_column].to_owned()));
        line.0 += 1;
    }

    let mut draws = Draws::new(seed);
    let mut orders = Vec::with_capacity(gathered.len());
    let mut demand_by_seller: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut demand_by_sku: HashMap<String, u64> = HashMap::new();
    let (mut synthetic, mut unplaced) = (0usize, 0usize);
    for (id, order) in gathered {
        let own = linked.get(&id).and_then(|customer| customer_zip.get(customer)).and_then(|zip| points.get(zip));
        let point = match own {
            Some(&point) => Some((point, false)),
            None => {
                let zip = customer_pool[draws.below(customer_pool.len() as u64) as usize];
                points.get(zip).map(|&point| (point, true))
            }
        };
        let Some(((lat, lon), drawn)) = point else {
            unplaced += 1;
            continue;
        };
        synthetic += usize::from(drawn);
        for (sku, (units, seller)) in &order.lines {
            *demand_by_seller.entry((seller.clone(), sku.clone())).or_default() += units;
            *demand_by_sku.entry(sku.clone()).or_default() += units;
        }
        let time_secs = local_secs(&order.time)
            .ok_or_else(|| format!("order {id}: shipping_limit_date {:?} is not YYYY-MM-DD HH:MM:SS", order.time))?;
        orders.push(Order {
            id,
            time: order.time,
            time_secs,
            lat,
            lon,
            lines: order.lines.into_iter().map(|(sku, (units, _))| (sku, units)).collect(),
            synthetic_customer: drawn,
        });
    }
    orders.sort_by(|a, b| (a.time_secs, &a.id).cmp(&(b.time_secs, &b.id)));

    // The network: every seller with a point, and the three centres.
    let mut sites = Vec::new();
    for (code, municipality) in OLIST_CENTRES {
        let &(lat, lon) = seats.get(municipality).ok_or_else(|| format!("municipality {municipality} is missing"))?;
        sites.push(Site { code: code.to_owned(), kind: 0, lat, lon, methods: 1 });
    }
    let sellers: BTreeSet<&String> = demand_by_seller.keys().map(|(seller, _)| seller).collect();
    let mut located = BTreeSet::new();
    for seller in sellers {
        if let Some(&(lat, lon)) = seller_zip.get(seller).and_then(|zip| points.get(zip)) {
            sites.push(Site { code: seller_code(seller), kind: 3, lat, lon, methods: 8 });
            located.insert(seller.clone());
        }
    }

    // The stock: the extract's rule (see scripts/olist_demo_extract.py), with a 64-bit
    // FNV-1a hash choosing the short pairs.
    let mut ranked: Vec<(&String, &u64)> = demand_by_sku.iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut centre_products: BTreeSet<String> =
        ranked.iter().take(CENTRE_PRODUCTS).map(|(sku, _)| (*sku).clone()).collect();
    let mut stock = Vec::new();
    for ((seller, sku), units) in &demand_by_seller {
        if !located.contains(seller) {
            continue;
        }
        let short = fnv1a(format!("{seller}{sku}").as_bytes()).is_multiple_of(SHORT_ONE_IN);
        if short {
            centre_products.insert(sku.clone());
        }
        stock.push(Stock { sku: sku.clone(), location: seller_code(seller), on_hand: units - u64::from(short) });
    }
    for (code, _) in OLIST_CENTRES {
        for sku in &centre_products {
            let on_hand = (demand_by_sku[sku] as f64 * CENTRE_SHARE).ceil() as u64;
            stock.push(Stock { sku: sku.clone(), location: code.to_owned(), on_hand });
        }
    }

    Ok(Dataset {
        title: format!(
            "{} Olist marketplace orders ({} items, {} to {}) from the full order-item table",
            grouped(orders.len() as u64),
            grouped(items.rows.len() as u64),
            orders.first().map_or("", |order| order.time.as_str()),
            orders.last().map_or("", |order| order.time.as_str()),
        ),
        utc_offset_minutes: BRAZIL_UTC_OFFSET_MINUTES,
        notes: vec![
            format!(
                "SYNTHETIC PAIRING: {} of {} orders have no customer link in the data; each got a customer \
                 drawn at random from the real customer table (seed {seed})",
                grouped(synthetic as u64),
                grouped(orders.len() as u64)
            ),
            "order time: the first item's shipping limit, a few days after the purchase".to_owned(),
            format!("left out: {} orders whose customer has no coordinates", grouped(unplaced as u64)),
            format!(
                "network: {} sellers as drop-ship vendors and {} fulfilment centres; stock by the extract's rule",
                grouped(located.len() as u64),
                OLIST_CENTRES.len()
            ),
        ],
        sites,
        stock,
        orders,
    })
}

/// Reads the UCI Online Retail invoices: each invoice is an order to its country's
/// capital from one warehouse (London assumed). Cancellations and lines without units
/// are left out.
fn online_retail(data: &Path) -> Result<Dataset, String> {
    let invoices_table = Table::read(&data_subfolder(data, "online_retail")?.join("online_retail.csv.gz"))?;
    let [invoice_column, code_column, quantity_column, date_column, country_column] =
        invoices_table.columns(["InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "Country"])?;
    let countries: HashMap<&str, (f64, f64)> =
        COUNTRY_POINTS.iter().map(|&(name, lat, lon)| (name, (lat, lon))).collect();

    // Invoice number -> (invoice time, destination, units per SKU).
    type Invoice = (String, (f64, f64), BTreeMap<String, u64>);
    let mut invoices: BTreeMap<String, Invoice> = BTreeMap::new();
    let (mut cancellations, mut no_units, mut unplaced) = (0usize, 0usize, 0usize);
    for (index, row) in invoices_table.rows.iter().enumerate() {
        let invoice = &row[invoice_column];
        if invoice.starts_with('C') {
            cancellations += 1;
            continue;
        }
        let quantity = &row[quantity_column];
        let quantity: i64 = quantity.parse().map_err(|_| {
            format!("{} line {}: Quantity {quantity:?} is not a number", invoices_table.file.display(), index + 2)
        })?;
        if quantity <= 0 {
            no_units += 1;
            continue;
        }
        let Some(&point) = countries.get(&row[country_column]) else {
            unplaced += 1;
            continue;
        };
        let entry =
            invoices.entry(invoice.to_owned()).or_insert_with(|| (row[date_column].to_owned(), point, BTreeMap::new()));
        *entry.2.entry(row[code_column].to_uppercase()).or_default() += quantity as u64;
    }

    let mut demand: BTreeMap<String, u64> = BTreeMap::new();
    let mut orders = Vec::with_capacity(invoices.len());
    for (id, (time, (lat, lon), lines)) in invoices {
        for (sku, units) in &lines {
            *demand.entry(sku.clone()).or_default() += units;
        }
        let time_secs = local_secs(&time)
            .ok_or_else(|| format!("invoice {id}: InvoiceDate {time:?} is not YYYY-MM-DD HH:MM:SS"))?;
        orders.push(Order {
            id,
            time,
            time_secs,
            lat,
            lon,
            lines: lines.into_iter().collect(),
            synthetic_customer: false,
        });
    }
    orders.sort_by(|a, b| (a.time_secs, &a.id).cmp(&(b.time_secs, &b.id)));
    let (code, lat, lon) = RETAIL_WAREHOUSE;
    let stock = demand
        .iter()
        .map(|(sku, units)| Stock {
            sku: sku.clone(),
            location: code.to_owned(),
            on_hand: (*units as f64 * RETAIL_STOCK_SHARE).floor() as u64,
        })
        .collect();

    Ok(Dataset {
        title: format!(
            "{} UCI Online Retail invoices ({} lines, {} to {})",
            grouped(orders.len() as u64),
            grouped(invoices_table.rows.len() as u64),
            orders.first().map_or("", |order| order.time.as_str()),
            orders.last().map_or("", |order| order.time.as_str()),
        ),
        utc_offset_minutes: 0,
        notes: vec![
            format!(
                "left out: {} cancellation lines, {} lines without units, {} lines of country Unspecified",
                grouped(cancellations as u64),
                grouped(no_units as u64),
                grouped(unplaced as u64),
            ),
            "destination: the capital of the customer's country (the data has only the country)".to_owned(),
            format!(
                "network: one warehouse, {code}, at London (ASSUMED: the data names no location); each SKU stocked \
                 at {:.0}% of its demand",
                RETAIL_STOCK_SHARE * 100.0
            ),
        ],
        sites: vec![Site { code: code.to_owned(), kind: 0, lat, lon, methods: 1 }],
        stock,
        orders,
    })
}

/// Returns `data/name`, or an error that names what `--data` takes.
fn data_subfolder(data: &Path, name: &str) -> Result<PathBuf, String> {
    let folder = data.join(name);
    if folder.is_dir() {
        return Ok(folder);
    }
    Err(format!(
        "{} has no folder {name}/: --data takes the data folder that holds olist/ and online_retail/",
        data.display()
    ))
}

/// Returns the location code of an Olist seller: `S-` and the first 12 hex digits of
/// its id.
fn seller_code(seller: &str) -> String {
    format!("S-{}", seller.get(..12).unwrap_or(seller))
}

/// 64-bit FNV-1a.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

/// Seconds since 1970-01-01 00:00 of a `YYYY-MM-DD HH:MM[:SS]` time, read as is (no
/// time zone).
pub fn local_secs(text: &str) -> Option<i64> {
    let (date, clock) = text.trim().split_once(' ')?;
    let mut date = date.split('-').map(|part| part.parse::<i64>().ok());
    let (year, month, day) = (date.next()??, date.next()??, date.next()??);
    let mut clock = clock.split(':').map(|part| part.parse::<i64>().ok());
    let (hour, minute) = (clock.next()??, clock.next()??);
    let second = clock.next().flatten().unwrap_or(0);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }

    // Days from the civil date (proleptic Gregorian), counting years from March.
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Some(days * 86_400 + hour * 3_600 + minute * 60 + second)
}

fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    let file = std::fs::File::open(path).map_err(|error| format!("failed to open {}: {error}", path.display()))?;
    let mut reader: Box<dyn Read> = if path.extension().is_some_and(|extension| extension == "gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    reader.read_to_end(&mut bytes).map_err(|error| format!("failed to read {}: {error}", path.display()))?;
    Ok(bytes)
}

/// Reads the rows of one of an extract's files, after checking its header.
fn records(bytes: &[u8], name: &str) -> Result<Vec<csv::StringRecord>, String> {
    let expected = match name {
        "orders.csv" => "order_id,purchase_time,lat,lon,lines",
        "locations.csv" => "code,kind,lat,lon,methods",
        _ => "sku,location,on_hand",
    };
    let mut reader = csv::Reader::from_reader(bytes);
    let header = reader.headers().map_err(|error| format!("{name}: {error}"))?.iter().collect::<Vec<_>>().join(",");
    if header != expected {
        return Err(format!("{name}: the header is {header:?}; it must be {expected:?}"));
    }
    reader.records().collect::<Result<_, _>>().map_err(|error| format!("{name}: {error}"))
}

fn columns<'a, const N: usize>(row: &'a csv::StringRecord, name: &str, line: usize) -> Result<[&'a str; N], String> {
    if row.len() != N {
        return Err(format!("{name} line {line}: {} columns; it must have {N}", row.len()));
    }
    Ok(std::array::from_fn(|index| &row[index]))
}

fn number(text: &str, column: &str, name: &str, line: usize) -> Result<f64, String> {
    text.parse().map_err(|_| format!("{name} line {line}: {column} {text:?} is not a number"))
}

/// A CSV file read whole (gzip when its name ends in `.gz`), with its header.
struct Table {
    file: PathBuf,
    header: csv::StringRecord,
    rows: Vec<csv::StringRecord>,
}

impl Table {
    fn read(path: &Path) -> Result<Table, String> {
        let bytes = read_file(path)?;
        let mut reader = csv::Reader::from_reader(bytes.as_slice());
        let header = reader.headers().map_err(|error| format!("{}: {error}", path.display()))?.clone();
        let rows =
            reader.records().collect::<Result<_, _>>().map_err(|error| format!("{}: {error}", path.display()))?;
        Ok(Table { file: path.to_owned(), header, rows })
    }

    fn column(&self, name: &str) -> Result<usize, String> {
        self.header
            .iter()
            .position(|column| column == name)
            .ok_or_else(|| format!("{}: column {name} is missing", self.file.display()))
    }

    fn columns<const N: usize>(&self, names: [&str; N]) -> Result<[usize; N], String> {
        let mut indexes = [0; N];
        for (index, name) in indexes.iter_mut().zip(names) {
            *index = self.column(name)?;
        }
        Ok(indexes)
    }

    /// Maps each row's `key` to its `value`.
    fn pairs(&self, key: &str, value: &str) -> Result<HashMap<String, String>, String> {
        let [key, value] = self.columns([key, value])?;
        Ok(self.rows.iter().map(|row| (row[key].to_owned(), row[value].to_owned())).collect())
    }

    /// Maps each row's `key` to its latitude and longitude.
    fn points(&self, key: &str, lat: &str, lon: &str) -> Result<HashMap<String, (f64, f64)>, String> {
        let [key, lat, lon] = self.columns([key, lat, lon])?;
        let mut points = HashMap::with_capacity(self.rows.len());
        for (index, row) in self.rows.iter().enumerate() {
            let line = index + 2;
            let name = self.file.display().to_string();
            let point = (number(&row[lat], "lat", &name, line)?, number(&row[lon], "lon", &name, line)?);
            points.insert(row[key].to_owned(), point);
        }
        Ok(points)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_secs_counts_from_1970() {
        assert_eq!(local_secs("1970-01-01 00:00"), Some(0));
        assert_eq!(local_secs("2016-09-04 21:15"), Some(1_473_023_700));
        assert_eq!(local_secs("2011-12-09 12:50:00"), Some(1_323_435_000));
        assert_eq!(local_secs("2000-02-29 00:00:01"), Some(951_782_401));
        assert_eq!(local_secs("2016-13-01 00:00"), None);
        assert_eq!(local_secs("yesterday"), None);
    }

    #[test]
    fn bundled_extract_loads_in_time_order() {
        let dataset = Dataset::load(&Source::Bundled, 1).unwrap();
        assert_eq!((dataset.orders.len(), dataset.sites.len()), (9_894, 1_638));
        assert_eq!(dataset.stock.len(), 11_671);
        assert!(dataset.orders.windows(2).all(|pair| pair[0].time_secs <= pair[1].time_secs));
        assert!(dataset.orders.iter().all(|order| !order.lines.is_empty() && !order.synthetic_customer));
        assert!(
            dataset
                .title
                .starts_with("9,894 real Olist marketplace orders from the bundled extract (2016-09-04 21:15 to "),
            "{}",
            dataset.title
        );
    }
}
