//! The JSON form of a sampling strategy, as Jaeger agents serve it to clients:
//! proto field names, enum names (`"PROBABILISTIC"`) on `/sampling`, enum
//! numbers on the legacy `/` endpoint that old clients poll.
use serde_json::{Map, Value, json};

use crate::api_v2::{SamplingStrategyResponse, SamplingStrategyType};

/// How enums are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnumStyle {
    Names,
    Numbers,
}

pub fn strategy_to_json(s: &SamplingStrategyResponse, enums: EnumStyle) -> Value {
    let mut out = Map::new();
    let strategy_type = SamplingStrategyType::try_from(s.strategy_type)
        .unwrap_or(SamplingStrategyType::Probabilistic);
    out.insert(
        "strategyType".into(),
        match enums {
            EnumStyle::Names => json!(strategy_type.as_str_name()),
            EnumStyle::Numbers => json!(strategy_type as i32),
        },
    );
    if let Some(p) = &s.probabilistic_sampling {
        out.insert(
            "probabilisticSampling".into(),
            json!({"samplingRate": p.sampling_rate}),
        );
    }
    if let Some(r) = &s.rate_limiting_sampling {
        out.insert(
            "rateLimitingSampling".into(),
            json!({"maxTracesPerSecond": r.max_traces_per_second}),
        );
    }
    if let Some(o) = &s.operation_sampling {
        let per_op: Vec<Value> = o
            .per_operation_strategies
            .iter()
            .map(|p| {
                json!({
                    "operation": p.operation,
                    "probabilisticSampling": {
                        "samplingRate": p.probabilistic_sampling.as_ref().map_or(0.0, |s| s.sampling_rate)
                    },
                })
            })
            .collect();
        let mut op = Map::new();
        op.insert(
            "defaultSamplingProbability".into(),
            json!(o.default_sampling_probability),
        );
        op.insert(
            "defaultLowerBoundTracesPerSecond".into(),
            json!(o.default_lower_bound_traces_per_second),
        );
        op.insert("perOperationStrategies".into(), Value::Array(per_op));
        if o.default_upper_bound_traces_per_second != 0.0 {
            op.insert(
                "defaultUpperBoundTracesPerSecond".into(),
                json!(o.default_upper_bound_traces_per_second),
            );
        }
        out.insert("operationSampling".into(), Value::Object(op));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api_v2::{ProbabilisticSamplingStrategy, RateLimitingSamplingStrategy};

    #[test]
    fn renders_what_jaeger_clients_parse() {
        let p = SamplingStrategyResponse {
            strategy_type: SamplingStrategyType::Probabilistic as i32,
            probabilistic_sampling: Some(ProbabilisticSamplingStrategy {
                sampling_rate: 0.001,
            }),
            ..Default::default()
        };
        assert_eq!(
            strategy_to_json(&p, EnumStyle::Names),
            json!({"strategyType": "PROBABILISTIC", "probabilisticSampling": {"samplingRate": 0.001}})
        );
        let r = SamplingStrategyResponse {
            strategy_type: SamplingStrategyType::RateLimiting as i32,
            rate_limiting_sampling: Some(RateLimitingSamplingStrategy {
                max_traces_per_second: 5,
            }),
            ..Default::default()
        };
        assert_eq!(
            strategy_to_json(&r, EnumStyle::Numbers),
            json!({"strategyType": 1, "rateLimitingSampling": {"maxTracesPerSecond": 5}})
        );
    }
}
