//! Go's duration syntax ("1.5ms", "2h45m", "100000ns"), which Jaeger's query API
//! and its JSON fixtures use.
use std::time::Duration;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DurationParseError {
    #[error("invalid duration {0:?}: {1}")]
    Invalid(String, &'static str),
}

/// Parses a non-negative Go duration string: a sequence of decimal numbers,
/// each with an optional fraction and a unit (ns, us, µs, ms, s, m, h). "0" alone
/// is accepted, as in Go.
pub fn parse_go_duration(input: &str) -> Result<Duration, DurationParseError> {
    let err = |why| DurationParseError::Invalid(input.to_string(), why);
    let s = input.strip_prefix('+').unwrap_or(input);
    if s.starts_with('-') {
        return Err(err("negative durations are not allowed"));
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(err("empty"));
    }
    let mut rest = s;
    let mut total: f64 = 0.0;
    let mut total_ns: u128 = 0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| err("missing unit"))?;
        if num_len == 0 {
            return Err(err("expected a number"));
        }
        let (num, after) = rest.split_at(num_len);
        if num == "." || num.matches('.').count() > 1 {
            return Err(err("malformed number"));
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(err("unknown unit")),
        };
        let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
        let int: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| err("number out of range"))?
        };
        total_ns = int
            .checked_mul(scale)
            .and_then(|v| total_ns.checked_add(v))
            .ok_or_else(|| err("overflow"))?;
        if !frac_part.is_empty() {
            let frac: f64 = format!("0.{frac_part}")
                .parse()
                .map_err(|_| err("malformed number"))?;
            total += frac * scale as f64;
        }
        rest = next;
    }
    let ns = total_ns + total.round() as u128;
    u64::try_from(ns)
        .map(Duration::from_nanos)
        .map_err(|_| err("overflow"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        let cases = [
            ("0", 0),
            ("100000ns", 100_000),
            ("1.2ms", 1_200_000),
            ("5us", 5_000),
            ("5µs", 5_000),
            ("2h45m", (2 * 3600 + 45 * 60) * 1_000_000_000),
            ("1.5s", 1_500_000_000),
            (".5s", 500_000_000),
            ("+3ms", 3_000_000),
        ];
        for (input, ns) in cases {
            assert_eq!(
                parse_go_duration(input),
                Ok(Duration::from_nanos(ns)),
                "{input}"
            );
        }
    }

    #[test]
    fn rejects_malformed_durations() {
        for input in ["", "10", "ms", "1.2.3s", "-1s", "1d", "1 s", "."] {
            assert!(parse_go_duration(input).is_err(), "{input} should fail");
        }
    }
}
