//! Times as wire formats carry them, checked: a value that cannot be a span's
//! time is kept as far as it can be and the span says what was changed (a
//! warning, as Jaeger's adjusters leave), never silently clamped.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// A time from seconds and nanoseconds since the epoch (protobuf's
/// Timestamp). Nanoseconds out of [0, 10⁹) carry into the seconds; a time
/// before the epoch becomes the epoch. `what` names the field in warnings.
pub fn time_from_parts(seconds: i64, nanos: i32, what: &str) -> (SystemTime, Option<String>) {
    let total = i128::from(seconds) * i128::from(NANOS_PER_SECOND) + i128::from(nanos);
    let mut warning = (!(0..NANOS_PER_SECOND).contains(&i64::from(nanos))).then(|| {
        format!("invalid {what}: nanos {nanos} out of range [0, 1e9), carried into the seconds")
    });
    if total < 0 {
        warning = Some(format!(
            "invalid {what}: {seconds}s {nanos}ns is before the Unix epoch; set to the epoch"
        ));
        return (UNIX_EPOCH, warning);
    }
    let total = u64::try_from(total).unwrap_or(u64::MAX);
    (UNIX_EPOCH + Duration::from_nanos(total), warning)
}

/// Nanoseconds since the epoch: 0 before it, `u64::MAX` past 2554.
pub fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Microseconds since the epoch: 0 before it.
pub fn unix_micros(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Microseconds since the epoch as the signed integers Thrift and CQL carry.
pub fn unix_micros_i64(t: SystemTime) -> i64 {
    i64::try_from(unix_micros(t)).unwrap_or(i64::MAX)
}

pub fn from_unix_nanos(ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns)
}

pub fn from_unix_micros(us: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(us)
}

/// A signed microsecond count (Thrift, CQL); before the epoch is the epoch.
pub fn from_unix_micros_i64(us: i64) -> SystemTime {
    from_unix_micros(u64::try_from(us).unwrap_or(0))
}

/// A duration from seconds and nanoseconds; a negative one becomes zero.
pub fn duration_from_parts(seconds: i64, nanos: i32) -> (Duration, Option<String>) {
    let total = i128::from(seconds) * i128::from(NANOS_PER_SECOND) + i128::from(nanos);
    if total < 0 {
        let warning = format!("invalid duration: {seconds}s {nanos}ns is negative; set to 0");
        return (Duration::ZERO, Some(warning));
    }
    let warning = (!(0..NANOS_PER_SECOND).contains(&i64::from(nanos))).then(|| {
        format!("invalid duration: nanos {nanos} out of range [0, 1e9), carried into the seconds")
    });
    let total = u64::try_from(total).unwrap_or(u64::MAX);
    (Duration::from_nanos(total), warning)
}

/// A time in microseconds since the epoch (Jaeger Thrift, Zipkin).
pub fn time_from_micros(us: i64, what: &str) -> (SystemTime, Option<String>) {
    if us < 0 {
        let warning = format!("invalid {what}: {us}µs is before the Unix epoch; set to the epoch");
        return (UNIX_EPOCH, Some(warning));
    }
    (UNIX_EPOCH + Duration::from_micros(us as u64), None)
}

/// A duration in microseconds (Jaeger Thrift, Zipkin).
pub fn duration_from_micros(us: i64) -> (Duration, Option<String>) {
    if us < 0 {
        let warning = format!("invalid duration: {us}µs is negative; set to 0");
        return (Duration::ZERO, Some(warning));
    }
    (Duration::from_micros(us as u64), None)
}

/// A span's duration from its start and end in nanoseconds (OTLP).
pub fn duration_between_nanos(start: u64, end: u64) -> (Duration, Option<String>) {
    match end.checked_sub(start) {
        Some(d) => (Duration::from_nanos(d), None),
        None => {
            let warning = format!(
                "invalid end time: {end}ns is {}ns before the start time {start}ns; duration set to 0",
                start - end
            );
            (Duration::ZERO, Some(warning))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_can_be_kept_is_kept_and_what_changed_is_said() {
        let (t, w) = time_from_parts(10, 1_500_000_000, "start time");
        assert_eq!(t, UNIX_EPOCH + Duration::from_millis(11_500));
        assert!(w.unwrap().contains("nanos 1500000000 out of range"));
        let (t, w) = time_from_parts(-5, 0, "start time");
        assert_eq!(t, UNIX_EPOCH);
        assert!(w.unwrap().contains("before the Unix epoch"));
        assert_eq!(
            time_from_parts(10, 5, "x"),
            (UNIX_EPOCH + Duration::new(10, 5), None)
        );
        let (d, w) = duration_from_parts(-1, 0);
        assert_eq!(d, Duration::ZERO);
        assert!(w.unwrap().contains("negative"));
        let (d, w) = duration_between_nanos(2_000, 500);
        assert_eq!(d, Duration::ZERO);
        assert!(w.unwrap().contains("1500ns before the start time"));
        assert_eq!(
            duration_between_nanos(5, 7),
            (Duration::from_nanos(2), None)
        );
        assert!(time_from_micros(-1, "start time").1.is_some());
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(unix_nanos(t), 1_700_000_000_123_456_789);
        assert_eq!(unix_micros(t), 1_700_000_000_123_456);
        assert_eq!(unix_micros_i64(t), 1_700_000_000_123_456);
        assert_eq!(from_unix_nanos(unix_nanos(t)), t);
        let before = UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!((unix_nanos(before), unix_micros(before)), (0, 0));
        assert!(duration_from_micros(-1).1.is_some());
    }
}
