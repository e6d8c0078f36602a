//! What every Spoor binary shares: layered configuration (flags, environment,
//! config file), logging, the admin port with health and Prometheus metrics,
//! serving HTTP and gRPC with limits, and graceful shutdown. It knows no
//! storage backend: selection lives in `spoor-storage-select`.

pub mod admin;
pub mod auth;
pub mod config;
pub mod http;
pub mod lifecycle;
pub mod net;
pub mod serve;
pub mod shutdown;
pub mod telemetry;

pub use prometheus_client::registry::Registry;
