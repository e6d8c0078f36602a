//! What a store's own search can do for a query: the service, operation,
//! tags and duration bounds one span of every matching trace must have.
//! The store's answer is a superset; each candidate is then evaluated.
use std::time::Duration;

use crate::ast::*;

/// Conditions one span of every match meets, in the store's terms.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Candidates {
    pub service: String,
    pub operation: Option<String>,
    /// Exact tag values, as the stores compare them (rendered as text).
    pub tags: Vec<(String, String)>,
    pub duration_min: Option<Duration>,
    pub duration_max: Option<Duration>,
}

/// Why a query cannot be run on a store's search.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the query must name the service of a span every match has: add resource.service.name = \"...\" \
     to a selector (a search without a service is not supported yet)"
)]
pub struct NoService;

pub fn plan(query: &Query) -> Result<Candidates, NoService> {
    required(&query.spansets).ok_or(NoService)
}

fn required(spanset: &Spanset) -> Option<Candidates> {
    match spanset {
        Spanset::Selector(None) => None,
        Spanset::Selector(Some(filter)) => selector(filter),
        Spanset::And(a, b) | Spanset::Structural(_, a, b) => required(a).or_else(|| required(b)),
        Spanset::Or(a, b) => {
            let (a, b) = (required(a)?, required(b)?);
            (a.service == b.service).then(|| Candidates {
                service: a.service,
                ..Candidates::default()
            })
        }
    }
}

fn selector(filter: &Filter) -> Option<Candidates> {
    let mut conjuncts = Vec::new();
    flatten(filter, &mut conjuncts);
    let mut c = Candidates::default();
    for conjunct in conjuncts {
        let Filter::Compare(field, op, literal) = conjunct else {
            continue;
        };
        match (field, op, literal) {
            (Field::ServiceName, Op::Eq, Literal::String(s)) => c.service = s.clone(),
            (Field::Name, Op::Eq, Literal::String(s)) => c.operation = Some(s.clone()),
            (Field::Span(k) | Field::Resource(k) | Field::Any(k), Op::Eq, value) => {
                if let Some(text) = rendered(value) {
                    c.tags.push((k.clone(), text));
                }
            }
            (Field::Duration, Op::Gt | Op::Ge, Literal::Duration(d)) => {
                c.duration_min = c.duration_min.max(Some(*d));
            }
            (Field::Duration, Op::Lt | Op::Le, Literal::Duration(d)) => {
                c.duration_max = Some(c.duration_max.map_or(*d, |m| m.min(*d)));
            }
            _ => {}
        }
    }
    (!c.service.is_empty()).then_some(c)
}

fn flatten<'a>(filter: &'a Filter, out: &mut Vec<&'a Filter>) {
    match filter {
        Filter::And(a, b) => {
            flatten(a, out);
            flatten(b, out);
        }
        f => out.push(f),
    }
}

/// A value as every store matches a tag: strings, integers and booleans.
fn rendered(literal: &Literal) -> Option<String> {
    match literal {
        Literal::String(s) => Some(s.clone()),
        Literal::Int(i) => Some(i.to_string()),
        Literal::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
