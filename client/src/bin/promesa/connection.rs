//! Connection settings from flags, environment variables and a local server's data
//! folder, and the calls that connect to the server and send one request.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use promesa_client::{ADMIN_TOKEN_FILE, Client, ClientConfig, DEV_CERT_FILE};
use promesa_protocol::{Request, Response};

use crate::args::ConnectionArguments;
use crate::errors::Failure;

/// Server address used when neither `--addr` nor `PROMESA_ADDR` is set.
const ADDR_DEFAULT: &str = "127.0.0.1:7400";
/// Environment variable for the server address.
const ADDR_VARIABLE: &str = "PROMESA_ADDR";
/// Environment variable for the PEM file of the certificate to trust.
const CA_VARIABLE: &str = "PROMESA_CA";
/// Environment variable for the token.
const TOKEN_VARIABLE: &str = "PROMESA_TOKEN";

pub(crate) fn client_config(arguments: &ConnectionArguments) -> Result<ClientConfig, Failure> {
    let (addr_text, addr_source) = match (&arguments.addr, environment(ADDR_VARIABLE)) {
        (Some(addr), _) => (addr.clone(), "--addr"),
        (None, Some(addr)) => (addr, ADDR_VARIABLE),
        (None, None) => (ADDR_DEFAULT.to_owned(), "the default address"),
    };
    let addr = resolve(&addr_text).map_err(|reason| {
        Failure::usage(format!("invalid server address {addr_text:?} from {addr_source}: {reason}"))
    })?;
    let server_name = match &arguments.server_name {
        Some(name) => name.clone(),
        None => host_of(&addr_text).to_owned(),
    };

    let data_dir = arguments.server_data_dir.as_deref();
    let ca = match (&arguments.ca, data_dir, environment(CA_VARIABLE)) {
        (Some(ca), _, _) => ca.clone(),
        (None, Some(dir), _) => dir.join(DEV_CERT_FILE),
        (None, None, Some(ca)) => PathBuf::from(ca),
        (None, None, None) => {
            return Err(Failure::usage(format!(
                "no certificate to trust: pass --ca FILE or set {CA_VARIABLE}, \
                 or pass --server-data-dir DIR for a local server"
            )));
        }
    };
    let token = match (&arguments.token, data_dir, environment(TOKEN_VARIABLE)) {
        (Some(token), _, _) => token.trim().to_owned(),
        (None, Some(dir), _) => read_token(dir)?,
        (None, None, Some(token)) => token.trim().to_owned(),
        (None, None, None) => {
            return Err(Failure::usage(format!(
                "no token: pass --token TOKEN or set {TOKEN_VARIABLE}, or pass --server-data-dir DIR for a local server"
            )));
        }
    };
    if token.is_empty() {
        return Err(Failure::usage(format!("the token is empty: pass --token TOKEN or set {TOKEN_VARIABLE}")));
    }

    Ok(ClientConfig { addr, server_name, ca, token, streams: 1, timeout_ms: arguments.timeout_ms })
}

/// Returns the variable's value, or `None` when it is unset or empty.
fn environment(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.trim().is_empty())
}

fn read_token(data_dir: &Path) -> Result<String, Failure> {
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    let token = std::fs::read_to_string(&path).map_err(|error| {
        Failure::new("setup", format!("failed to read the admin token {}: {error}", path.display()))
    })?;
    Ok(token.trim().to_owned())
}

/// Resolves `HOST:PORT` to the first address the system returns.
fn resolve(addr: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = addr.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let mut found = addr.to_socket_addrs().map_err(|error| format!("{error}; expected HOST:PORT"))?;
    found.next().ok_or_else(|| "the host has no address".to_owned())
}

/// Returns the host part of `HOST:PORT`, without the brackets of an IPv6 address.
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _port)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

pub(crate) async fn connect(config: &ClientConfig) -> Result<Client, Failure> {
    // The library bounds each call by the timeout but not the handshake, which
    // otherwise waits for QUIC's idle timeout when no server responds.
    let timeout = Duration::from_millis(config.timeout_ms);
    match tokio::time::timeout(timeout, Client::connect(config)).await {
        Ok(connected) => connected.map_err(|error| Failure::client(error, config.addr)),
        Err(_) => Err(Failure::new(
            "timeout",
            format!(
                "no connection to {} within {} ms; check that the server runs there, or raise --timeout-ms",
                config.addr, config.timeout_ms
            ),
        )),
    }
}

/// Sends one request and returns its response, turning an error response into a failure.
pub(crate) async fn call(client: &Client, addr: SocketAddr, request: Request) -> Result<Response, Failure> {
    match client.call_one(request).await {
        Ok(Response::Error { code, message }) => Err(Failure::server(code, &message)),
        Ok(response) => Ok(response),
        Err(error) => Err(Failure::client(error, addr)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lose_port_and_brackets() {
        assert_eq!(host_of("127.0.0.1:7400"), "127.0.0.1");
        assert_eq!(host_of("[::1]:7400"), "::1");
        assert_eq!(host_of("promesa.internal:7400"), "promesa.internal");
    }
}
