//! TraceQL from any text: a query either fails with a column inside the
//! input (or just past it), or prints back as text that reads to the same
//! query; neither panics, and planning never does.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match spoor_traceql::parse(text) {
        Err(e) => assert!(e.column >= 1 && e.column <= text.chars().count() + 1, "{e}"),
        Ok(query) => {
            let printed = query.to_string();
            assert_eq!(spoor_traceql::parse(&printed).as_ref(), Ok(&query), "{printed}");
            let _ = spoor_traceql::plan(&query);
        }
    }
});
