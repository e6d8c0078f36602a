//! Jaeger's `host:port` syntax, where an empty host (":14250") means every interface.
use std::net::{SocketAddr, ToSocketAddrs};

/// A `host:port` that names no address.
#[derive(Debug, thiserror::Error)]
pub enum HostPortError {
    #[error("invalid host:port {0:?}")]
    Invalid(String, #[source] std::io::Error),
    #[error("host:port {0:?} resolves to no address")]
    NoAddress(String),
}

/// Resolves `host:port`; `:port` binds all interfaces, as in Jaeger.
pub fn parse_host_port(s: &str) -> Result<SocketAddr, HostPortError> {
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    };
    full.to_socket_addrs()
        .map_err(|e| HostPortError::Invalid(s.to_string(), e))?
        .next()
        .ok_or_else(|| HostPortError::NoAddress(s.to_string()))
}

/// Binds a TCP listener, naming the address and what it is for on failure.
pub async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<tokio::net::TcpListener> {
    use anyhow::Context;
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("while binding the {what} port {addr}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_host_means_all_interfaces() {
        assert_eq!(
            parse_host_port(":14250").unwrap(),
            "0.0.0.0:14250".parse().unwrap()
        );
        assert_eq!(
            parse_host_port("127.0.0.1:4317").unwrap(),
            "127.0.0.1:4317".parse().unwrap()
        );
        assert!(parse_host_port("nope").is_err());
        assert!(parse_host_port(":99999").is_err());
    }
}
