//! Helpers shared by the HTTP handlers.

/// The one non-empty value of query parameter `name`, or the message a 400
/// carries when it is missing or repeated.
pub fn single_param<'a>(params: &'a [(String, String)], name: &str) -> Result<&'a str, String> {
    let mut values = params
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str());
    match (values.next(), values.next()) {
        (Some(one), None) if !one.is_empty() => Ok(one),
        _ => Err(format!("'{name}' parameter must be provided once")),
    }
}

#[cfg(test)]
mod tests {
    use super::single_param;

    #[test]
    fn single_param_requires_exactly_one_value() {
        let p = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(single_param(&p(&[("service", "a")]), "service"), Ok("a"));
        assert!(single_param(&p(&[]), "service").is_err());
        assert!(single_param(&p(&[("service", "")]), "service").is_err());
        assert!(single_param(&p(&[("service", "a"), ("service", "b")]), "service").is_err());
    }
}
