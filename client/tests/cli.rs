//! The `promesa` binary against a real server on loopback: the commands of an
//! operator's session, stock imports with bad rows, routing and postal codes, inbound
//! supply and backorders, and usage errors.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use promesa_server::{Server, ServerConfig};
use serde_json::Value;
use tokio::sync::watch;

struct Running {
    addr: SocketAddr,
    data_dir: PathBuf,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), String>>,
}

async fn start(data_dir: &Path) -> Running {
    let mut config = ServerConfig::new(data_dir.to_owned());
    config.listen = "127.0.0.1:0".parse().unwrap();
    let server = Server::start(config).expect("the server starts");
    let addr = server.local_addr();
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(server.run(stopped));
    Running { addr, data_dir: data_dir.to_owned(), stop, task }
}

impl Running {
    /// Runs the binary with this server's address and data folder, then `args`.
    async fn promesa(&self, args: &[&str]) -> Output {
        let mut command = promesa_command();
        command.arg("--addr").arg(self.addr.to_string()).arg("--server-data-dir").arg(&self.data_dir).args(args);
        tokio::task::spawn_blocking(move || command.output().expect("the promesa binary runs")).await.unwrap()
    }

    /// Runs the binary with `args` and returns its JSON output, failing the test unless it succeeds.
    async fn promesa_json(&self, args: &[&str]) -> Value {
        let output = self.promesa(args).await;
        assert_success(&output, args);
        serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|error| panic!("{args:?}: the output is not JSON ({error}): {}", stdout(&output)))
    }

    async fn shut_down(self) {
        self.stop.send(true).unwrap();
        self.task.await.unwrap().expect("a clean shutdown");
    }
}

/// Builds a command for the binary that takes no connection settings from the environment.
fn promesa_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_promesa"));
    for variable in ["PROMESA_ADDR", "PROMESA_CA", "PROMESA_TOKEN"] {
        command.env_remove(variable);
    }
    command.args(["--timeout-ms", "20000"]);
    command
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_success(output: &Output, args: &[&str]) {
    assert!(output.status.success(), "{args:?} failed with {}: {}", output.status, stderr(output));
}

/// Checks the exit code and that stderr is the one error line with this code name.
fn assert_failure(output: &Output, exit: i32, code_name: &str) {
    let stderr = stderr(output);
    assert_eq!(output.status.code(), Some(exit), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with(&format!("promesa: {code_name}: ")), "{stderr}");
}

fn write_file(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

const LOCATIONS_CSV: &str = "\
code,kind,lat,lon,methods,daily_capacity,active
MX-01,warehouse,19.43,-99.13,ship|pickup,0,true
MX-02,1,25.67,-100.31,,,
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_session_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let running = start(&data_dir).await;

    let ping = running.promesa(&["ping"]).await;
    assert_success(&ping, &["ping"]);
    assert!(stdout(&ping).contains("admin"), "{}", stdout(&ping));

    let locations = write_file(dir.path(), "locations.csv", LOCATIONS_CSV);
    let imported = running.promesa_json(&["location", "import", &locations, "--json"]).await;
    assert_eq!(imported["rows"], 2);
    assert_eq!(imported["created"], 2);
    assert_eq!(imported["replaced"], 0);

    let stock =
        write_file(dir.path(), "stock.csv", "sku,location,on_hand,safety_stock\nSKU-1,MX-01,10,\nSKU-1,MX-02,4,1\n");
    let output = running.promesa(&["stock", "import", &stock, "--json"]).await;
    assert_success(&output, &["stock", "import"]);
    assert!(stderr(&output).contains("staged lines 2 to 3"), "{}", stderr(&output));
    let imported: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(imported["rows"], 2);
    assert_eq!(imported["positions_created"], 2);

    let all = running.promesa_json(&["atp", "SKU-1", "--json"]).await;
    let locations = all["locations"].as_array().expect("a list of locations");
    assert_eq!(locations.len(), 2, "{all}");
    let sum: i64 = locations.iter().map(|entry| entry["atp"].as_i64().unwrap().max(0)).sum();
    assert_eq!(all["total_atp"].as_i64(), Some(sum), "{all}");
    let single = running.promesa_json(&["atp", "SKU-1", "--location", "MX-01", "--json"]).await;
    assert_eq!(single["locations"][0]["location"], "MX-01");
    assert_eq!(single["locations"][0]["on_hand"], 10);
    assert_eq!(single["locations"][0]["atp"], 10);

    let reserved = running
        .promesa_json(&["reserve", "--id", "order-1", "--line", "SKU-1@MX-01=3", "--ttl", "10m", "--json"])
        .await;
    assert_eq!(reserved["replayed"], false);
    assert_eq!(reserved["lines"][0]["status"], "held");
    assert_eq!(reserved["lines"][0]["held"], 3);

    let confirmed = running.promesa_json(&["confirm", "order-1", "--line", "0=2", "--json"]).await;
    assert_eq!(confirmed["moved"], serde_json::json!([2]));
    let released = running.promesa_json(&["release", "order-1", "--from", "held", "--json"]).await;
    assert_eq!(released["moved"], serde_json::json!([1]));

    let view = running.promesa_json(&["get", "order-1", "--json"]).await;
    assert_eq!(view["reservation_id"], "order-1");
    let line = &view["lines"][0];
    assert_eq!((&line["requested"], &line["held"]), (&Value::from(3), &Value::from(0)), "{view}");
    assert_eq!((&line["allocated"], &line["released"]), (&Value::from(2), &Value::from(1)), "{view}");

    let after = running.promesa_json(&["atp", "SKU-1", "--location", "MX-01", "--json"]).await;
    assert_eq!(after["locations"][0]["allocated"], 2);
    assert_eq!(after["locations"][0]["atp"], 8);

    // On hand below the allocated units puts the position in shortage.
    let set = running.promesa_json(&["stock", "set", "SKU-1@MX-01", "1", "--json"]).await;
    assert_eq!(set["in_shortage"], true);
    let stats = running.promesa_json(&["stats", "--json"]).await;
    assert_eq!(stats["positions_in_shortage"], 1, "{stats}");
    assert!(stats["oversold"].is_u64(), "{stats}");

    let text = running.promesa(&["get", "order-1"]).await;
    assert_success(&text, &["get"]);
    assert!(stdout(&text).lines().any(|line| line.starts_with("reservation") && line.ends_with("order-1")));

    let unknown = running.promesa(&["get", "order-404"]).await;
    assert_failure(&unknown, 1, "not_found");

    running.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_import_with_bad_rows_applies_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let running = start(&data_dir).await;
    let locations = write_file(dir.path(), "locations.csv", LOCATIONS_CSV);
    assert_success(&running.promesa(&["location", "import", &locations]).await, &["location", "import"]);

    // The server rejects the unknown location at commit and names its line, which
    // the empty line before it moves to 4.
    let unknown_location =
        write_file(dir.path(), "unknown.csv", "sku,location,on_hand\nSKU-2,MX-01,5\n\nSKU-3,NOWHERE,5\n");
    let output = running.promesa(&["stock", "import", &unknown_location]).await;
    let error_line = stderr(&output).lines().last().unwrap_or_default().to_owned();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(error_line.starts_with("promesa: invalid_argument: "), "{error_line}");
    assert!(error_line.contains("line 4: "), "{error_line}");

    // The client rejects a row it cannot parse before it sends anything.
    let unparsable =
        write_file(dir.path(), "unparsable.csv", "sku,location,on_hand\r\nSKU-4,MX-01,5\r\n\r\nSKU-4,MX-02,many\r\n");
    let output = running.promesa(&["stock", "import", &unparsable]).await;
    assert_failure(&output, 1, "invalid_csv");
    assert!(stderr(&output).contains("line 4: "), "{}", stderr(&output));

    let short_row = write_file(dir.path(), "short.csv", "sku,location,on_hand\nSKU-5,MX-01\n");
    let output = running.promesa(&["stock", "import", &short_row]).await;
    assert_failure(&output, 1, "invalid_csv");
    assert!(stderr(&output).contains("line 2: "), "{}", stderr(&output));

    for sku in ["SKU-2", "SKU-4", "SKU-5"] {
        let read = running.promesa(&["atp", sku, "--location", "MX-01"]).await;
        assert_failure(&read, 1, "not_found");
    }
    let stats = running.promesa_json(&["stats", "--json"]).await;
    assert_eq!(stats["positions"], 0, "{stats}");

    running.shut_down().await;
}

/// Two locations with routing columns: a store six hours behind UTC with an hour of
/// handling and an 18:00 cut-off, and a warehouse with the default routing.
const ROUTED_LOCATIONS_CSV: &str = "\
code,kind,lat,lon,methods,utc_offset_minutes,pickup_only,handling_minutes,cutoff,shipment_cost_cents,km_cost_cents,\
speed_km_per_day
MX-CDMX-01,store,19.4326,-99.1332,ship|pickup,-360,false,60,18:00,300,2,400
MX-MTY-DC,warehouse,25.6866,-100.3161,ship,,,,,,,
";

const ROUTED_STOCK_CSV: &str = "\
sku,location,on_hand
TV-55,MX-CDMX-01,1
TV-55,MX-MTY-DC,10
LAMP,MX-CDMX-01,2
LAMP,MX-MTY-DC,2
BOOK,MX-CDMX-01,1
BOOK,MX-MTY-DC,1
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_commands_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let running = start(&data_dir).await;

    let locations = write_file(dir.path(), "locations.csv", ROUTED_LOCATIONS_CSV);
    let imported = running.promesa_json(&["location", "import", &locations, "--json"]).await;
    assert_eq!(imported["created"], 2, "{imported}");
    let stock = write_file(dir.path(), "stock.csv", ROUTED_STOCK_CSV);
    assert_success(&running.promesa(&["stock", "import", &stock]).await, &["stock", "import"]);

    // A bad cutoff is named with its line and value, and nothing is sent.
    let bad_cutoff =
        write_file(dir.path(), "bad-cutoff.csv", "code,kind,lat,lon,cutoff\nMX-GDL-01,store,20.66,-103.35,25:00\n");
    let output = running.promesa(&["location", "import", &bad_cutoff]).await;
    assert_failure(&output, 1, "invalid_csv");
    assert!(stderr(&output).contains("line 2: cutoff \"25:00\" is not a local time HH:MM"), "{}", stderr(&output));

    // A postal file with a bad row sends nothing.
    let bad_postal = write_file(
        dir.path(),
        "bad-postal.csv",
        "country,postal_code,lat,lon\nMX,01000,19.35,-99.19\nMEX,01010,19.3,-99.2\nMX,0*1,19.3,-99.2\n",
    );
    let output = running.promesa(&["postal", "import", &bad_postal]).await;
    assert_failure(&output, 1, "invalid_csv");
    assert!(stderr(&output).contains("2 bad rows, nothing sent"), "{}", stderr(&output));
    assert!(stderr(&output).contains("line 3: country \"MEX\""), "{}", stderr(&output));
    assert!(stderr(&output).contains("line 4: postal_code \"0*1\""), "{}", stderr(&output));
    let output = running.promesa(&["quote", "--to-postal", "MX:01000", "--line", "TV-55=1"]).await;
    assert_failure(&output, 1, "unknown_destination");

    let postal = write_file(
        dir.path(),
        "postal.csv",
        "country,postal_code,lat,lon\nMX,06700,19.4195,-99.1627\nMX,06*,19.4326,-99.1332\nMX,64000,25.6714,-100.309\n",
    );
    let output = running.promesa(&["postal", "import", &postal, "--json"]).await;
    assert_success(&output, &["postal", "import"]);
    assert!(stderr(&output).contains("upserted lines 2 to 4 (3 of 3 rows)"), "{}", stderr(&output));
    let imported: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!((&imported["rows"], &imported["rows_in_table"]), (&Value::from(3), &Value::from(3)), "{imported}");

    // A postal code missing from the table falls back to its region's point.
    let quote = running.promesa_json(&["quote", "--to-postal", "MX:06600", "--line", "TV-55=1", "--json"]).await;
    assert_eq!(quote["destination"]["source"], "postal_region", "{quote}");
    assert_eq!(quote["destination"]["region_prefix"], "06", "{quote}");
    assert_eq!(quote["shipments"][0]["location"], "MX-CDMX-01", "{quote}");
    assert_eq!(quote["shipments"][0]["method"], "ship", "{quote}");
    assert_eq!(quote["shipments"][0]["lines"][0]["reservation_line"], Value::Null, "{quote}");
    assert!(quote["explanations"][0].as_str().unwrap().starts_with("MX-CDMX-01: "), "{quote}");

    let text = running.promesa(&["quote", "--to", "25.67,-100.31", "--line", "TV-55=3", "--method", "fastest"]).await;
    assert_success(&text, &["quote", "--to"]);
    let text = stdout(&text);
    assert!(text.lines().any(|line| line.starts_with("location") && line.ends_with("MX-MTY-DC")), "{text}");
    assert!(text.lines().any(|line| line.starts_with("distance") && line.ends_with(" km")), "{text}");
    assert!(text.lines().any(|line| line.starts_with("promise") && line.ends_with('Z')), "{text}");
    assert!(text.contains("explanations\nline 0: MX-MTY-DC: "), "{text}");

    // Four lamps need both locations: the routed reserve holds two shipments.
    let reserve = ["reserve", "--id", "routed-1", "--to", "19.42,-99.16", "--line", "LAMP=4", "--json"];
    let held = running.promesa_json(&reserve).await;
    assert_eq!((&held["held"], &held["replayed"]), (&Value::Bool(true), &Value::Bool(false)), "{held}");
    let shipments = held["plan"]["shipments"].as_array().expect("a list of shipments");
    assert_eq!(shipments.len(), 2, "{held}");
    assert_eq!(shipments[0]["lines"][0]["reservation_line"], 0, "{held}");
    assert_eq!(shipments[1]["lines"][0]["reservation_line"], 1, "{held}");
    let replayed = running.promesa_json(&reserve).await;
    assert_eq!(replayed["replayed"], true, "{replayed}");
    assert_eq!(replayed["plan"]["shipments"], held["plan"]["shipments"]);
    let view = running.promesa_json(&["get", "routed-1", "--json"]).await;
    assert_eq!(view["lines"][0]["held"], 2, "{view}");
    assert_eq!(view["lines"][1]["held"], 2, "{view}");

    // Two books fit only in two shipments: with one allowed, nothing is held.
    let refused = running
        .promesa_json(&[
            "reserve",
            "--id",
            "routed-2",
            "--to-postal",
            "MX:06700",
            "--line",
            "BOOK=2",
            "--max-shipments",
            "1",
            "--json",
        ])
        .await;
    assert_eq!(refused["held"], false, "{refused}");
    assert_eq!(refused["plan"]["unfilled"][0]["reason"], "shipment_limit", "{refused}");
    let output = running.promesa(&["get", "routed-2"]).await;
    assert_failure(&output, 1, "not_found");

    // A channel limited to the warehouse routes there.
    let channel = running.promesa_json(&["channel", "upsert", "web", "--locations", "MX-MTY-DC", "--json"]).await;
    assert_eq!(channel["locations"], serde_json::json!(["MX-MTY-DC"]), "{channel}");
    let quote = running
        .promesa_json(&["quote", "--to", "19.42,-99.16", "--line", "TV-55=1", "--channel", "web", "--json"])
        .await;
    assert_eq!(quote["shipments"][0]["location"], "MX-MTY-DC", "{quote}");
    let output = running.promesa(&["channel", "upsert", "web", "--locations", "MX-NOWHERE"]).await;
    assert_failure(&output, 1, "not_found");

    let output = running.promesa(&["quote", "--to", "19.42,-99.16", "--line", "TV-55=1", "--max-shipments", "9"]).await;
    assert_failure(&output, 2, "usage");
    assert!(stderr(&output).contains("9 is not in 1..=8"), "{}", stderr(&output));

    running.shut_down().await;
}

/// 2099-01-11, 2099-01-31 and 2099-02-10 at 00:00 UTC, in milliseconds since the Unix
/// epoch: 10, 30 and 40 days after 2099-01-01, far enough ahead that the server's clock
/// does not reach them while the tests are in use.
const DAY_10_MS: u64 = 4_071_772_800_000;
const DAY_30_MS: u64 = 4_073_500_800_000;
const DAY_40_MS: u64 = 4_074_364_800_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supply_commands_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let running = start(&data_dir).await;
    let locations = write_file(dir.path(), "locations.csv", LOCATIONS_CSV);
    assert_success(&running.promesa(&["location", "import", &locations]).await, &["location", "import"]);
    assert_success(&running.promesa(&["stock", "set", "SKU-1@MX-01", "10"]).await, &["stock", "set"]);

    let add = [
        "supply",
        "add",
        "--id",
        "po-1",
        "--sku",
        "PRE-1",
        "--location",
        "MX-01",
        "--quantity",
        "500",
        "--arrival",
        "2099-01-31T00:00:00Z",
        "--json",
    ];
    let added = running.promesa_json(&add).await;
    assert_eq!((&added["inbound"], &added["backordered"]), (&Value::from(500), &Value::from(0)), "{added}");
    assert_eq!(added["arrival_ms"], DAY_30_MS, "{added}");
    assert_eq!(added["arrival"], "2099-01-31T00:00:00.000Z", "{added}");
    assert_eq!(added["replayed"], false, "{added}");
    assert_eq!(running.promesa_json(&add).await["replayed"], true);

    let by = |time: &'static str| ["atp", "PRE-1", "--location", "MX-01", "--by", time, "--json"];
    let by_day_10 = running.promesa_json(&by("2099-01-11")).await;
    assert_eq!((&by_day_10["available"], &by_day_10["by_ms"]), (&Value::from(0), &Value::from(DAY_10_MS)));
    let by_day_30 = running.promesa_json(&by("2099-01-31")).await;
    assert_eq!((&by_day_30["available"], &by_day_30["inbound_by"]), (&Value::from(500), &Value::from(500)));
    let earliest = running.promesa_json(&["atp", "PRE-1", "--location", "MX-01", "--quantity", "500", "--json"]).await;
    assert_eq!(earliest["available_at_ms"], DAY_30_MS, "{earliest}");
    assert_eq!(earliest["available_at"], "2099-01-31T00:00:00.000Z", "{earliest}");
    let never = running.promesa_json(&["atp", "PRE-1", "--location", "MX-01", "--quantity", "501", "--json"]).await;
    assert_eq!(never["available_at_ms"], Value::Null, "{never}");
    let text = running.promesa(&["atp", "PRE-1", "--location", "MX-01", "--quantity", "501"]).await;
    assert_success(&text, &["atp", "--quantity", "501"]);
    assert!(stdout(&text).contains("never: ATP now and the open receipts do not reach 501 units"), "{}", stdout(&text));

    // Moving the receipt to day 40 changes both reads.
    let moved = running.promesa_json(&["supply", "move", "po-1", "--arrival", "2099-02-10", "--json"]).await;
    assert_eq!(moved["arrival_ms"], DAY_40_MS, "{moved}");
    assert_eq!(running.promesa_json(&by("2099-01-31")).await["available"], 0);
    assert_eq!(running.promesa_json(&by("2099-02-10T00:00:00Z")).await["available"], 500);

    // A backorder reserve reports each line, and its backordered units lower the
    // availability by day 40.
    let reserve =
        ["reserve", "--id", "pre-1", "--line", "PRE-1@MX-01=120", "--line", "SKU-1@MX-01=2", "--backorder", "--json"];
    let reserved = running.promesa_json(&reserve).await;
    assert_eq!(reserved["lines"][0]["status"], "backordered", "{reserved}");
    assert_eq!(reserved["lines"][1]["status"], "held", "{reserved}");
    let by_day_40 = running.promesa_json(&by("2099-02-10")).await;
    assert_eq!((&by_day_40["available"], &by_day_40["backordered"]), (&Value::from(380), &Value::from(120)));
    let view = running.promesa_json(&["get", "pre-1", "--json"]).await;
    assert_eq!(view["policy"], "backorder", "{view}");
    assert_eq!(view["lines"][0]["status"], "backordered", "{view}");
    let text = running.promesa(&["get", "pre-1"]).await;
    assert!(stdout(&text).lines().any(|line| line.starts_with("policy") && line.ends_with("backorder")));

    // The receipt cannot be cancelled while the backorder needs it; an unknown one is not found.
    let output = running.promesa(&["supply", "cancel", "po-1"]).await;
    assert_failure(&output, 1, "conflict");
    assert!(stderr(&output).contains("release those backorders first"), "{}", stderr(&output));
    let output = running.promesa(&["supply", "cancel", "po-404"]).await;
    assert_failure(&output, 1, "not_found");
    assert!(stderr(&output).contains("receipt po-404 is not known"), "{}", stderr(&output));
    let output = running.promesa(&["supply", "move", "po-404", "--arrival", "+1d"]).await;
    assert_failure(&output, 1, "not_found");

    // A relative arrival counts from the server's clock.
    let relative = running
        .promesa_json(&[
            "supply",
            "add",
            "--id",
            "po-2",
            "--sku",
            "PRE-2",
            "--location",
            "MX-02",
            "--quantity",
            "5",
            "--arrival",
            "+30d",
            "--json",
        ])
        .await;
    let arrival_ms = relative["arrival_ms"].as_u64().expect("an arrival in milliseconds");
    let earliest = running.promesa_json(&["atp", "PRE-2", "--location", "MX-02", "--quantity", "5", "--json"]).await;
    assert_eq!(earliest["available_at_ms"], arrival_ms, "{earliest}");

    // A bad TIME is a usage error that sends nothing.
    let output = running
        .promesa(&[
            "supply",
            "add",
            "--id",
            "po-3",
            "--sku",
            "PRE-3",
            "--location",
            "MX-01",
            "--quantity",
            "5",
            "--arrival",
            "tomorrow",
        ])
        .await;
    assert_failure(&output, 2, "usage");
    assert!(stderr(&output).contains("\"tomorrow\" is not a time"), "{}", stderr(&output));
    let output = running.promesa(&["atp", "PRE-3", "--location", "MX-01", "--by", "2099-01-31"]).await;
    assert_failure(&output, 1, "not_found");

    running.shut_down().await;
}

#[test]
fn usage_errors_exit_with_two() {
    let cases: [&[&str]; 16] = [
        &["teleport"],
        &["reserve", "--id", "order-1", "--line", "SKU-1@MX-01=many"],
        &["stock", "set", "SKU-1", "5"],
        &["extend", "order-1"],
        &["reserve", "--id", "order-1", "--line", "SKU-1@MX-01=1", "--line", "SKU-2=1"],
        &["reserve", "--id", "order-1", "--to", "19.4,-99.1", "--line", "SKU-1@MX-01=1"],
        &["reserve", "--id", "order-1", "--line", "SKU-1=1"],
        &["reserve", "--id", "order-1", "--line", "SKU-1@MX-01=1", "--method", "fastest"],
        &["quote", "--line", "SKU-1=1"],
        &["quote", "--to", "91,0", "--line", "SKU-1=1"],
        &["reserve", "--id", "order-1", "--line", "SKU-1@MX-01=1", "--backorder", "--partial"],
        &["atp", "SKU-1", "--by", "2099-01-31"],
        &["atp", "SKU-1", "--location", "MX-01", "--location", "MX-02", "--quantity", "5"],
        &["atp", "SKU-1", "--location", "MX-01", "--by", "2099-01-31", "--quantity", "5"],
        &["atp", "SKU-1", "--location", "MX-01", "--by", "2099-31-01"],
        &["supply", "move", "po-1", "--arrival", "+3w"],
    ];
    for args in cases {
        let output = promesa_command()
            .args(["--addr", "127.0.0.1:9", "--ca", "unused.pem", "--token", "t"])
            .args(args)
            .output()
            .unwrap();
        assert_failure(&output, 2, "usage");
    }

    // Without a token the client names both ways to give one, and connects nowhere.
    let output = promesa_command().args(["--addr", "127.0.0.1:9", "--ca", "unused.pem", "ping"]).output().unwrap();
    assert_failure(&output, 2, "usage");
    assert!(stderr(&output).contains("--token"), "{}", stderr(&output));
    assert!(stderr(&output).contains("PROMESA_TOKEN"), "{}", stderr(&output));
}
