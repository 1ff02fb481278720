//! Failures and exit codes: the one error line `promesa: <code>: <message>`, and the
//! handling of clap's parse errors, help and version.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::error::ErrorKind;
use promesa_client::ClientError;
use promesa_protocol::{ErrorCode, Response};

/// A failed run: the code name and message of the one error line, and the exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    code: String,
    pub(crate) message: String,
    pub(crate) exit: u8,
}

impl Failure {
    pub(crate) fn new(code: &str, message: impl Into<String>) -> Failure {
        Failure { code: code.to_owned(), message: message.into(), exit: 1 }
    }

    pub(crate) fn usage(message: impl Into<String>) -> Failure {
        Failure { exit: 2, ..Failure::new("usage", message) }
    }

    /// Returns the failure for an error response or a refused hello, named by its error code.
    pub(crate) fn server(code: u16, message: &str) -> Failure {
        let name = match ErrorCode::from_number(code) {
            Some(known) => known.name().to_owned(),
            None => format!("error_{code}"),
        };
        Failure { code: name, message: message.to_owned(), exit: 1 }
    }

    pub(crate) fn client(error: ClientError, addr: SocketAddr) -> Failure {
        match error {
            ClientError::Setup(message) => Failure::new("setup", message),
            ClientError::Connection(message) => {
                Failure::new("connection", format!("connection to {addr} failed: {message}"))
            }
            ClientError::Refused { code, message } => {
                Failure::server(code, &format!("the server refused the connection: {message}"))
            }
            ClientError::Timeout { timeout_ms } => {
                Failure::new("timeout", format!("no response from {addr} within {timeout_ms} ms; see --timeout-ms"))
            }
            ClientError::Malformed(message) => Failure::new("malformed_response", message),
            ClientError::Rejected { code, message } => Failure::server(code, &message),
            other => Failure::new("connection", other.to_string()),
        }
    }

    pub(crate) fn unexpected(expected: &str, response: &Response) -> Failure {
        let mut got = format!("{response:?}");
        got.truncate(200);
        Failure::new("malformed_response", format!("expected a {expected} response, got {got}"))
    }

    /// Prints the one error line, with line breaks in the message replaced by spaces.
    pub(crate) fn print(&self) {
        let message = self.message.replace(['\n', '\r'], " ");
        eprintln!("promesa: {}: {message}", self.code);
    }
}

/// Prints help or the version as clap does, and any other parse error as one line.
pub(crate) fn exit_on_parse_error(error: &clap::Error) -> ExitCode {
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = error.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = error.print();
            ExitCode::from(2)
        }
        _ => {
            Failure::usage(one_line_parse_error(&error.render().to_string())).print();
            ExitCode::from(2)
        }
    }
}

/// Joins the first paragraph of clap's rendered error into one line and, when clap
/// printed a `Usage:` line, points to the help of the subcommand it names.
fn one_line_parse_error(rendered: &str) -> String {
    let paragraph: Vec<&str> = rendered.lines().map(str::trim).take_while(|line| !line.is_empty()).collect();
    let joined = paragraph.join(" ");
    let message = joined.strip_prefix("error: ").unwrap_or(&joined);
    let command_path: Vec<&str> = rendered
        .lines()
        .find_map(|line| line.trim_start().strip_prefix("Usage: "))
        .map(|usage| usage.split_whitespace().take_while(|word| !word.starts_with(['-', '<', '[', '.'])).collect())
        .unwrap_or_default();
    if command_path.is_empty() {
        return message.to_owned();
    }
    format!("{message}; see `{} --help`", command_path.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_fit_one_line() {
        let rendered = "error: unexpected argument '--bogus' found\n\nUsage: promesa reserve [OPTIONS] --id <ID>\n";
        assert_eq!(one_line_parse_error(rendered), "unexpected argument '--bogus' found; see `promesa reserve --help`");
        let rendered = "error: the following required arguments were not provided:\n  --line <SKU@LOC=QTY>\n\n\
                        Usage: promesa reserve --id <ID> --line <SKU@LOC=QTY>\n";
        assert_eq!(
            one_line_parse_error(rendered),
            "the following required arguments were not provided: --line <SKU@LOC=QTY>; see `promesa reserve --help`"
        );
        let rendered = "error: invalid value 'A' for '<POSITION>': expected SKU@LOCATION\n\n\
                        For more information, try '--help'.\n";
        assert_eq!(one_line_parse_error(rendered), "invalid value 'A' for '<POSITION>': expected SKU@LOCATION");
    }
}
