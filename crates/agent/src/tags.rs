//! `--agent.tags` in Jaeger's syntax: `k=v,k2=${ENV_VAR},k3=${ENV_VAR:default}`.
use spoor_model::KeyValue;

/// Parses the tag list, resolving `${VAR}` and `${VAR:default}` with `env`.
/// An agent tag that is not `key=value`.
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("agent tag {0:?} is not key=value")]
pub struct AgentTagError(pub String);

pub fn parse_agent_tags(
    spec: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Vec<KeyValue>, AgentTagError> {
    let mut tags = Vec::new();
    for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| AgentTagError(pair.to_string()))?;
        let value = value.trim();
        let value = match value.strip_prefix("${").and_then(|v| v.strip_suffix('}')) {
            Some(inner) => {
                let (var, default) = match inner.split_once(':') {
                    Some((var, default)) => (var, Some(default)),
                    None => (inner, None),
                };
                env(var).or(default.map(str::to_string)).unwrap_or_default()
            }
            None => value.to_string(),
        };
        tags.push(KeyValue::string(key.trim(), value));
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_jaegers_syntax() {
        let env = |v: &str| (v == "POD").then(|| "pod-7".to_string());
        let tags = parse_agent_tags(
            "zone=eu-1, pod=${POD}, node=${NODE:unknown}, empty=${NONE}",
            env,
        )
        .unwrap();
        let pairs: Vec<(String, String)> = tags
            .iter()
            .map(|t| (t.key.to_string(), t.value.as_string().into_owned()))
            .collect();
        let want = [
            ("zone", "eu-1"),
            ("pod", "pod-7"),
            ("node", "unknown"),
            ("empty", ""),
        ];
        assert_eq!(pairs, want.map(|(k, v)| (k.to_string(), v.to_string())));
        assert!(parse_agent_tags("novalue", env).is_err());
        assert_eq!(parse_agent_tags("", env).unwrap(), vec![]);
    }
}
