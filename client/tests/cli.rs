//! The `promesa` binary against a real server on loopback: the commands of an
//! operator's session, stock imports with bad rows, and usage errors.

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

#[test]
fn usage_errors_exit_with_two() {
    let cases: [&[&str]; 4] = [
        &["teleport"],
        &["reserve", "--id", "order-1", "--line", "SKU-1@MX-01=many"],
        &["stock", "set", "SKU-1", "5"],
        &["extend", "order-1"],
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
