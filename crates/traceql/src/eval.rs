//! A query evaluated on one trace: which of its spans it selects.
use std::collections::HashMap;
use std::time::Duration;

use spoor_model::{Span, Trace, Value};

use crate::ast::*;

/// The tag OTLP's span status is kept in (as the OTLP mapping writes it).
const STATUS_CODE_TAG: &str = "otel.status_code";

impl Query {
    /// The indices (into `trace.spans`) of the spans the query selects, in
    /// order; empty when the trace does not match.
    pub fn matches(&self, trace: &Trace) -> Vec<usize> {
        let tree = Tree::of(&trace.spans);
        let selected = self.spansets.eval(&trace.spans, &tree);
        let chosen: Vec<usize> = (0..selected.len()).filter(|i| selected[*i]).collect();
        if chosen.is_empty() || !self.pipeline.iter().all(|a| a.holds(&trace.spans, &chosen)) {
            return Vec::new();
        }
        chosen
    }
}

/// Each span's parent, by index.
struct Tree {
    parent: Vec<Option<usize>>,
}

impl Tree {
    fn of(spans: &[Span]) -> Tree {
        let index: HashMap<_, _> = spans
            .iter()
            .enumerate()
            .map(|(i, s)| (s.span_id, i))
            .collect();
        let parent = spans
            .iter()
            .map(|s| s.parent_span_id().and_then(|p| index.get(&p).copied()))
            .collect();
        Tree { parent }
    }

    /// True when a span of `left` is an ancestor of span `i` (bounded by the
    /// span count, so a reference cycle ends).
    fn has_ancestor_in(&self, i: usize, left: &[bool]) -> bool {
        let mut at = self.parent[i];
        for _ in 0..self.parent.len() {
            match at {
                Some(p) if left[p] => return true,
                Some(p) => at = self.parent[p],
                None => return false,
            }
        }
        false
    }
}

impl Spanset {
    fn eval(&self, spans: &[Span], tree: &Tree) -> Vec<bool> {
        match self {
            Spanset::Selector(None) => vec![true; spans.len()],
            Spanset::Selector(Some(f)) => spans.iter().map(|s| f.holds(s)).collect(),
            Spanset::Or(a, b) => {
                let (a, b) = (a.eval(spans, tree), b.eval(spans, tree));
                a.iter().zip(&b).map(|(x, y)| *x || *y).collect()
            }
            Spanset::And(a, b) => {
                let (a, b) = (a.eval(spans, tree), b.eval(spans, tree));
                if a.contains(&true) && b.contains(&true) {
                    a.iter().zip(&b).map(|(x, y)| *x || *y).collect()
                } else {
                    vec![false; spans.len()]
                }
            }
            Spanset::Structural(relation, a, b) => {
                let (left, right) = (a.eval(spans, tree), b.eval(spans, tree));
                (0..spans.len())
                    .map(|i| {
                        right[i]
                            && match relation {
                                Relation::Child => tree.parent[i].is_some_and(|p| left[p]),
                                Relation::Descendant => tree.has_ancestor_in(i, &left),
                                Relation::Sibling => tree.parent[i].is_some_and(|p| {
                                    (0..spans.len())
                                        .any(|j| j != i && left[j] && tree.parent[j] == Some(p))
                                }),
                            }
                    })
                    .collect()
            }
        }
    }
}

impl Filter {
    fn holds(&self, span: &Span) -> bool {
        match self {
            Filter::And(a, b) => a.holds(span) && b.holds(span),
            Filter::Or(a, b) => a.holds(span) || b.holds(span),
            Filter::Not(f) => !f.holds(span),
            Filter::Compare(field, op, literal) => compare(span, field, *op, literal),
        }
    }
}

fn compare(span: &Span, field: &Field, op: Op, literal: &Literal) -> bool {
    match field {
        Field::Name => text(&span.operation_name, op, literal),
        Field::ServiceName => text(&span.process.service_name, op, literal),
        Field::Duration => match literal {
            Literal::Duration(d) => ordered(span.duration.cmp(d), op),
            _ => false,
        },
        Field::Status => match literal {
            Literal::Status(s) => (status(span) == *s) == (op == Op::Eq),
            _ => false,
        },
        Field::Kind => match literal {
            Literal::Kind(k) => (span.kind() == *k) == (op == Op::Eq),
            _ => false,
        },
        Field::Span(key) => attribute(find(&span.tags, key), op, literal),
        Field::Resource(key) => attribute(find(&span.process.tags, key), op, literal),
        Field::Any(key) => attribute(
            find(&span.tags, key).or_else(|| find(&span.process.tags, key)),
            op,
            literal,
        ),
    }
}

fn find<'a>(tags: &'a [spoor_model::KeyValue], key: &str) -> Option<&'a Value> {
    tags.iter().find(|kv| kv.key == key).map(|kv| &kv.value)
}

fn status(span: &Span) -> Status {
    match find(&span.tags, STATUS_CODE_TAG) {
        Some(Value::String(s)) if s == "ERROR" => Status::Error,
        Some(Value::String(s)) if s == "OK" => Status::Ok,
        _ if span.is_error() => Status::Error,
        _ => Status::Unset,
    }
}

fn ordered(ordering: std::cmp::Ordering, op: Op) -> bool {
    use std::cmp::Ordering::*;
    match op {
        Op::Eq => ordering == Equal,
        Op::Ne => ordering != Equal,
        Op::Gt => ordering == Greater,
        Op::Ge => ordering != Less,
        Op::Lt => ordering == Less,
        Op::Le => ordering != Greater,
        Op::Match | Op::NotMatch => false,
    }
}

fn text(value: &str, op: Op, literal: &Literal) -> bool {
    match literal {
        Literal::Regex(re) => re.is_match(value) == (op == Op::Match),
        Literal::String(s) => ordered(value.cmp(s.as_str()), op),
        _ => false,
    }
}

/// An attribute against a literal. A missing attribute matches only `= nil`;
/// one of another type matches only `!=` (TraceQL: a mismatch of types is
/// no match, and `!=` of different values holds).
fn attribute(value: Option<&Value>, op: Op, literal: &Literal) -> bool {
    let Some(value) = value else {
        return matches!(literal, Literal::Nil) && op == Op::Eq;
    };
    let number = |v: &Value| match v {
        Value::Int64(i) => Some(*i as f64),
        Value::Float64(f) => Some(*f),
        _ => None,
    };
    match (value, literal) {
        (_, Literal::Nil) => op == Op::Ne,
        (Value::String(s), Literal::String(_) | Literal::Regex(_)) => text(s, op, literal),
        (Value::Bool(b), Literal::Bool(l)) => ordered(b.cmp(l), op),
        (Value::Int64(i), Literal::Int(l)) => ordered(i.cmp(l), op),
        (v, Literal::Int(_) | Literal::Float(_)) if number(v).is_some() => {
            let l = match literal {
                Literal::Int(i) => *i as f64,
                Literal::Float(f) => *f,
                _ => unreachable!("matched above"),
            };
            number(v)
                .and_then(|v| v.partial_cmp(&l))
                .is_some_and(|o| ordered(o, op))
        }
        (Value::Int64(i), Literal::Duration(d)) => {
            // a duration attribute in nanoseconds, as OTel's conventions keep them
            u64::try_from(*i).is_ok_and(|n| ordered(Duration::from_nanos(n).cmp(d), op))
        }
        _ => op == Op::Ne,
    }
}

impl Aggregate {
    fn holds(&self, spans: &[Span], chosen: &[usize]) -> bool {
        let durations = chosen.iter().map(|i| spans[*i].duration);
        let value = match self.function {
            AggregateFn::Count => {
                let Literal::Int(want) = self.value else {
                    return false;
                };
                return ordered((chosen.len() as i64).cmp(&want), self.op);
            }
            AggregateFn::AvgDuration => durations.sum::<Duration>() / chosen.len().max(1) as u32,
            AggregateFn::MaxDuration => durations.max().unwrap_or_default(),
            AggregateFn::MinDuration => durations.min().unwrap_or_default(),
        };
        match self.value {
            Literal::Duration(want) => ordered(value.cmp(&want), self.op),
            _ => false,
        }
    }
}
