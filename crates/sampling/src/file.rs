//! Jaeger's strategies file and its rules: per-operation strategies are
//! probabilistic only (rate-limiting ones are skipped with a warning); a
//! service's operations are merged with the default's; a service without
//! operation strategies inherits the default's (Jaeger's fix for its issue
//! 5270, on unless `bugfix_5270` is off); an unknown strategy type falls back
//! to probabilistic at the default probability.
use std::collections::HashMap;

use serde::Deserialize;
use spoor_proto::api_v2::{
    OperationSamplingStrategy, PerOperationSamplingStrategies, ProbabilisticSamplingStrategy,
    RateLimitingSamplingStrategy, SamplingStrategyResponse, SamplingStrategyType,
};

/// The per-operation default Jaeger uses when a service's own strategy is
/// not probabilistic.
pub const DEFAULT_OPERATION_PROBABILITY: f64 = 0.001;

#[derive(Debug, Deserialize, Default, Clone, PartialEq)]
pub struct StrategiesFile {
    #[serde(default)]
    pub default_strategy: Option<ServiceStrategy>,
    #[serde(default)]
    pub service_strategies: Vec<ServiceStrategy>,
}

#[derive(Debug, Deserialize, Default, Clone, PartialEq)]
pub struct ServiceStrategy {
    #[serde(default)]
    pub service: String,
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub param: f64,
    #[serde(default)]
    pub operation_strategies: Vec<OperationStrategy>,
}

#[derive(Debug, Deserialize, Default, Clone, PartialEq)]
pub struct OperationStrategy {
    #[serde(default)]
    pub operation: String,
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub param: f64,
}

/// Reads a strategies file: JSON, or YAML when it is not JSON.
pub fn parse_strategies(text: &str) -> anyhow::Result<StrategiesFile> {
    match serde_json::from_str::<StrategiesFile>(text) {
        Ok(f) => Ok(f),
        Err(json_err) if text.trim_start().starts_with(['{', '[', '"']) => {
            Err(anyhow::anyhow!("invalid strategies JSON: {json_err}"))
        }
        Err(_) => {
            let yaml = config::Config::builder()
                .add_source(config::File::from_str(text, config::FileFormat::Yaml))
                .build()
                .map_err(|e| anyhow::anyhow!("invalid strategies YAML: {e}"))?;
            yaml.try_deserialize()
                .map_err(|e| anyhow::anyhow!("invalid strategies YAML: {e}"))
        }
    }
}

pub fn probabilistic(rate: f64) -> SamplingStrategyResponse {
    SamplingStrategyResponse {
        strategy_type: SamplingStrategyType::Probabilistic as i32,
        probabilistic_sampling: Some(ProbabilisticSamplingStrategy {
            sampling_rate: rate,
        }),
        ..Default::default()
    }
}

fn strategy(kind: &str, param: f64, default_probability: f64) -> SamplingStrategyResponse {
    match kind {
        "probabilistic" => probabilistic(param),
        "ratelimiting" => SamplingStrategyResponse {
            strategy_type: SamplingStrategyType::RateLimiting as i32,
            rate_limiting_sampling: Some(RateLimitingSamplingStrategy {
                max_traces_per_second: param as i32,
            }),
            ..Default::default()
        },
        other => {
            tracing::warn!(
                strategy_type = other,
                "unknown sampling strategy type; using the default probability"
            );
            probabilistic(default_probability)
        }
    }
}

fn service_strategy(s: &ServiceStrategy, default_probability: f64) -> SamplingStrategyResponse {
    let mut resp = strategy(&s.kind, s.param, default_probability);
    if s.operation_strategies.is_empty() {
        return resp;
    }
    let default_sampling_probability = match &resp.probabilistic_sampling {
        Some(p) if resp.strategy_type == SamplingStrategyType::Probabilistic as i32 => {
            p.sampling_rate
        }
        _ => DEFAULT_OPERATION_PROBABILITY,
    };
    let per_operation_strategies = s
        .operation_strategies
        .iter()
        .filter_map(|op| match strategy(&op.kind, op.param, default_probability) {
            r if r.strategy_type == SamplingStrategyType::Probabilistic as i32 => Some(OperationSamplingStrategy {
                operation: op.operation.clone(),
                probabilistic_sampling: r.probabilistic_sampling,
            }),
            _ => {
                tracing::warn!(operation = %op.operation, "operation strategies are probabilistic only; skipped");
                None
            }
        })
        .collect();
    resp.operation_sampling = Some(PerOperationSamplingStrategies {
        default_sampling_probability,
        per_operation_strategies,
        ..Default::default()
    });
    resp
}

/// The answer for every service a file names, and for all others.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedStrategies {
    pub default: SamplingStrategyResponse,
    pub services: HashMap<String, SamplingStrategyResponse>,
}

/// Applies Jaeger's rules to a parsed file.
pub fn resolve(
    file: &StrategiesFile,
    default_probability: f64,
    bugfix_5270: bool,
) -> ResolvedStrategies {
    let default = match &file.default_strategy {
        Some(d) => service_strategy(d, default_probability),
        None => probabilistic(default_probability),
    };
    let default_ops = default.operation_sampling.clone();
    let mut services = HashMap::new();
    for s in &file.service_strategies {
        let mut resp = service_strategy(s, default_probability);
        match (&mut resp.operation_sampling, &default_ops) {
            // the service's operations first, then the default's it lacks
            (Some(own), Some(defaults)) => {
                for op in &defaults.per_operation_strategies {
                    if !own
                        .per_operation_strategies
                        .iter()
                        .any(|o| o.operation == op.operation)
                    {
                        own.per_operation_strategies.push(op.clone());
                    }
                }
            }
            (None, Some(defaults)) => {
                let rate = resp
                    .probabilistic_sampling
                    .as_ref()
                    .map(|p| p.sampling_rate);
                if rate.is_some() || bugfix_5270 {
                    let mut inherited = defaults.clone();
                    if let Some(rate) = rate.filter(|_| {
                        resp.strategy_type == SamplingStrategyType::Probabilistic as i32
                    }) {
                        inherited.default_sampling_probability = rate;
                    }
                    resp.operation_sampling = Some(inherited);
                }
            }
            _ => {}
        }
        services.insert(s.service.clone(), resp);
    }
    ResolvedStrategies { default, services }
}

#[cfg(test)]
#[path = "file/tests.rs"]
mod tests;
