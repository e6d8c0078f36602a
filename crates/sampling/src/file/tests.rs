use super::*;

fn testdata(name: &str) -> String {
    let path = format!(
        "{}/../../testdata/sampling/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Reads Jaeger's expected-response JSON (proto field names, enums as
/// numbers, zero values left out) into the response type.
fn expected(name: &str) -> SamplingStrategyResponse {
    let v: serde_json::Value = serde_json::from_str(&testdata(name)).unwrap();
    let f = |v: &serde_json::Value| v.as_f64().unwrap_or(0.0);
    SamplingStrategyResponse {
        strategy_type: v["strategyType"].as_i64().unwrap_or(0) as i32,
        probabilistic_sampling: v.get("probabilisticSampling").map(|p| {
            ProbabilisticSamplingStrategy {
                sampling_rate: f(&p["samplingRate"]),
            }
        }),
        rate_limiting_sampling: v.get("rateLimitingSampling").map(|r| {
            RateLimitingSamplingStrategy {
                max_traces_per_second: r["maxTracesPerSecond"].as_i64().unwrap() as i32,
            }
        }),
        operation_sampling: v
            .get("operationSampling")
            .map(|o| PerOperationSamplingStrategies {
                default_sampling_probability: f(&o["defaultSamplingProbability"]),
                default_lower_bound_traces_per_second: f(&o["defaultLowerBoundTracesPerSecond"]),
                default_upper_bound_traces_per_second: f(&o["defaultUpperBoundTracesPerSecond"]),
                per_operation_strategies: o["perOperationStrategies"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| OperationSamplingStrategy {
                        operation: p["operation"].as_str().unwrap().into(),
                        probabilistic_sampling: Some(ProbabilisticSamplingStrategy {
                            sampling_rate: f(&p["probabilisticSampling"]["samplingRate"]),
                        }),
                    })
                    .collect(),
            }),
    }
}

fn resolved(name: &str, bugfix: bool) -> ResolvedStrategies {
    resolve(&parse_strategies(&testdata(name)).unwrap(), 0.001, bugfix)
}

#[test]
fn services_without_operation_strategies_match_jaegers_responses() {
    for (bugfix, prefix) in [
        (true, "TestServiceNoPerOperationStrategies"),
        (
            false,
            "TestServiceNoPerOperationStrategiesDeprecatedBehavior",
        ),
    ] {
        let r = resolved("service_no_per_operation.json", bugfix);
        for service in ["ServiceA", "ServiceB"] {
            assert_eq!(
                r.services[service],
                expected(&format!("{prefix}_{service}.json")),
                "{prefix} {service}"
            );
        }
    }
}

fn ops(pairs: &[(&str, f64)]) -> Vec<OperationSamplingStrategy> {
    pairs
        .iter()
        .map(|(op, rate)| OperationSamplingStrategy {
            operation: op.to_string(),
            probabilistic_sampling: Some(ProbabilisticSamplingStrategy {
                sampling_rate: *rate,
            }),
        })
        .collect()
}

fn with_ops(
    mut resp: SamplingStrategyResponse,
    default: f64,
    pairs: &[(&str, f64)],
) -> SamplingStrategyResponse {
    resp.operation_sampling = Some(PerOperationSamplingStrategies {
        default_sampling_probability: default,
        per_operation_strategies: ops(pairs),
        ..Default::default()
    });
    resp
}

fn rate_limiting(n: i32) -> SamplingStrategyResponse {
    strategy("ratelimiting", n as f64, 0.001)
}

#[test]
fn service_strategies_and_the_default() {
    let r = resolved("strategies.json", true);
    assert_eq!(r.services["foo"], probabilistic(0.8));
    assert_eq!(r.services["bar"], rate_limiting(5));
    assert_eq!(r.default, probabilistic(0.5));
}

#[test]
fn operation_strategies_merge_with_the_defaults_and_skip_rate_limiting() {
    let r = resolved("operation_strategies.json", true);
    let default_ops = [("op0", 0.2), ("op6", 0.0), ("op7", 1.0)];
    assert_eq!(r.default, with_ops(probabilistic(0.5), 0.5, &default_ops));
    assert_eq!(
        r.services["foo"],
        with_ops(
            probabilistic(0.8),
            0.8,
            &[("op6", 0.5), ("op1", 0.2), ("op0", 0.2), ("op7", 1.0)]
        )
    );
    assert_eq!(
        r.services["bar"],
        with_ops(
            rate_limiting(5),
            DEFAULT_OPERATION_PROBABILITY,
            &[
                ("op3", 0.3),
                ("op5", 0.4),
                ("op0", 0.2),
                ("op6", 0.0),
                ("op7", 1.0)
            ]
        )
    );
}

#[test]
fn services_without_a_type_sample_at_the_default_probability() {
    let r = resolve(
        &parse_strategies(&testdata("missing-service-types.json")).unwrap(),
        0.001,
        true,
    );
    assert_eq!(
        r.services["foo"],
        with_ops(probabilistic(0.001), 0.001, &[("op1", 0.2)])
    );
    assert_eq!(
        r.services["bar"],
        with_ops(probabilistic(0.001), 0.001, &[("op3", 0.3), ("op5", 0.4)])
    );
    assert_eq!(r.default, probabilistic(0.5));
}

#[test]
fn bad_files_are_errors_and_no_file_means_the_default() {
    let err = parse_strategies(&testdata("bad_strategies.json")).unwrap_err();
    assert!(err.to_string().contains("invalid strategies JSON"), "{err}");
    assert!(parse_strategies("{\"default_strategy\": 5}").is_err());
    let none = resolve(&StrategiesFile::default(), 0.25, true);
    assert_eq!(none.default, probabilistic(0.25));
    assert!(none.services.is_empty());
}

#[test]
fn yaml_files_read_like_json() {
    let yaml = "default_strategy:\n  type: probabilistic\n  param: 0.5\nservice_strategies:\n  - service: foo\n    type: probabilistic\n    param: 0.8\n  - service: bar\n    type: ratelimiting\n    param: 5\n";
    assert_eq!(
        parse_strategies(yaml).unwrap(),
        parse_strategies(&testdata("strategies.json")).unwrap()
    );
}
