//! `promesa`: the operator's command-line client.
//!
//! Each run connects to a server, sends the requests of one command and prints the
//! result: aligned text by default, one JSON document with `--json`. On failure it
//! prints one line `promesa: <code>: <message>` to stderr and exits with 2 for a usage
//! error and 1 otherwise. The code is the name of the server's error code
//! (docs/protocol.md), or one of the client's own: `usage`, `invalid_csv`, `io`,
//! `setup`, `connection`, `timeout` and `malformed_response`.

mod args;
mod commands;
mod connection;
mod csv_import;
mod errors;
mod output;
mod supply;

use std::process::ExitCode;

use clap::Parser;

use crate::args::Cli;
use crate::commands::{execute, prepare};
use crate::connection::{client_config, connect};
use crate::errors::{Failure, exit_on_parse_error};
use crate::output::print_output;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return exit_on_parse_error(&error),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            Failure::new("setup", format!("failed to start the async runtime: {error}")).print();
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(output) => {
            print_output(&output);
            ExitCode::SUCCESS
        }
        Err(failure) => {
            failure.print();
            ExitCode::from(failure.exit)
        }
    }
}

/// Runs one command and returns its output.
async fn run(cli: Cli) -> Result<String, Failure> {
    let config = client_config(&cli.connection)?;
    // Input files are read and checked before connecting, so a bad file sends nothing.
    let prepared = prepare(cli.command)?;

    let client = connect(&config).await?;
    let result = execute(&client, config.addr, prepared, cli.json).await;
    client.close().await;
    result
}
