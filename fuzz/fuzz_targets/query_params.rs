//! The query API's parameters (`/api/traces`, `/api/dependencies`,
//! `/api/operations`) from any query string.
#![no_main]
use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use spoor_query_params::{Params, dependencies_window, span_kind, traces_request};

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let pairs = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (pair.to_string(), String::new()),
        })
        .collect();
    let params = Params(pairs);
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let _ = traces_request(&params, now);
    let _ = dependencies_window(&params, now);
    let _ = span_kind(&params);
});
