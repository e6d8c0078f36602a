//! Sampling strategies that clients fetch through agents and collectors.
//!
//! A strategies file (Jaeger's format, JSON or YAML, from a path or an HTTP
//! URL, optionally reloaded) is turned once into a response per service
//! following Jaeger's rules; a service the file does not name gets the
//! default strategy, and without a file every service gets probabilistic
//! sampling at the default probability (0.001).

pub mod adaptive;
mod file;
mod provider;

pub use file::{StrategiesFile, parse_strategies};
pub use provider::{
    FileProvider, Sampling, SamplingConfigType, SamplingOptions, Strategies, StrategyProvider,
};
