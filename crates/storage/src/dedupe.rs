use spoor_model::Span;

/// Removes exact duplicates (same id and same content), keeping the first of
/// each; spans that share an id but differ are all kept. Order is not kept.
pub fn dedupe_spans(spans: &mut Vec<Span>) {
    if spans.len() < 2 {
        return;
    }
    spans.sort_by_key(|s| s.span_id);
    let mut out: Vec<Span> = Vec::with_capacity(spans.len());
    let mut group_start = 0;
    for span in spans.drain(..) {
        if out.last().is_some_and(|last| last.span_id != span.span_id) {
            group_start = out.len();
        }
        if !out[group_start..].contains(&span) {
            out.push(span);
        }
    }
    *spans = out;
}
