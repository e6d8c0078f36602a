//! What a query says, as the parser reads it.
use std::time::Duration;

/// A whole query: a spanset expression, then aggregate filters (`| count() > 2`).
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    pub spansets: Spanset,
    pub pipeline: Vec<Aggregate>,
}

/// An expression whose value, per trace, is a set of its spans.
#[derive(Clone, Debug, PartialEq)]
pub enum Spanset {
    /// `{ ... }`: the spans the filter holds for; `{}` is every span.
    Selector(Option<Filter>),
    /// Both sides match: the spans of both; else none.
    And(Box<Spanset>, Box<Spanset>),
    /// The spans of either side.
    Or(Box<Spanset>, Box<Spanset>),
    /// The right side's spans related to a span of the left side.
    Structural(Relation, Box<Spanset>, Box<Spanset>),
}

/// How the right side's spans relate to the left side's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relation {
    /// `>`: its parent is on the left.
    Child,
    /// `>>`: one of its ancestors is on the left.
    Descendant,
    /// `~`: another span of the left has its parent.
    Sibling,
}

/// A condition on one span.
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    Compare(Field, Op, Literal),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
}

/// What a comparison reads of a span.
#[derive(Clone, Debug, PartialEq)]
pub enum Field {
    Name,
    Status,
    Kind,
    Duration,
    /// `resource.service.name`
    ServiceName,
    /// `span.<key>`
    Span(String),
    /// `resource.<key>`
    Resource(String),
    /// `.<key>`: the span's attribute, else the resource's.
    Any(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Match,
    NotMatch,
}

#[derive(Clone, Debug)]
pub enum Literal {
    String(String),
    /// A string with `=~`/`!~`, compiled once; it must match the whole value.
    Regex(regex::Regex),
    Int(i64),
    Float(f64),
    Bool(bool),
    Duration(Duration),
    Status(Status),
    Kind(spoor_model::SpanKind),
    /// `nil`: `!= nil` is "present", `= nil` "absent".
    Nil,
}

impl PartialEq for Literal {
    fn eq(&self, other: &Self) -> bool {
        use Literal::*;
        match (self, other) {
            (String(a), String(b)) => a == b,
            (Regex(a), Regex(b)) => a.as_str() == b.as_str(),
            (Int(a), Int(b)) => a == b,
            (Float(a), Float(b)) => a == b,
            (Bool(a), Bool(b)) => a == b,
            (Duration(a), Duration(b)) => a == b,
            (Status(a), Status(b)) => a == b,
            (Kind(a), Kind(b)) => a == b,
            (Nil, Nil) => true,
            _ => false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Error,
    Ok,
    Unset,
}

/// `| count() > 2`, `| avg(duration) >= 1s`, `| max(duration) < 10ms`.
#[derive(Clone, Debug, PartialEq)]
pub struct Aggregate {
    pub function: AggregateFn,
    pub op: Op,
    pub value: Literal,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggregateFn {
    Count,
    AvgDuration,
    MaxDuration,
    MinDuration,
}

/// The query written back as text the parser reads to the same AST, with
/// parentheses only where the operators' binding needs them.
impl std::fmt::Display for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.spansets)?;
        for a in &self.pipeline {
            let function = match a.function {
                AggregateFn::Count => "count()",
                AggregateFn::AvgDuration => "avg(duration)",
                AggregateFn::MaxDuration => "max(duration)",
                AggregateFn::MinDuration => "min(duration)",
            };
            write!(f, " | {function} {} {}", a.op, a.value)?;
        }
        Ok(())
    }
}

/// Binding strength of a spanset operator: `||` < `&&` < `> >> ~`.
fn spanset_rank(s: &Spanset) -> u8 {
    match s {
        Spanset::Or(..) => 0,
        Spanset::And(..) => 1,
        Spanset::Structural(..) => 2,
        Spanset::Selector(_) => 3,
    }
}

/// `inner` as an operand of an operator of `rank`: in parentheses when it
/// binds looser, or as loose on the right (the operators read left to right).
fn operand<T: std::fmt::Display>(
    f: &mut std::fmt::Formatter<'_>,
    inner: &T,
    inner_rank: u8,
    rank: u8,
    right: bool,
) -> std::fmt::Result {
    if inner_rank < rank || (right && inner_rank == rank) {
        write!(f, "({inner})")
    } else {
        write!(f, "{inner}")
    }
}

impl std::fmt::Display for Spanset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (a, op, b) = match self {
            Spanset::Selector(None) => return write!(f, "{{ }}"),
            Spanset::Selector(Some(filter)) => return write!(f, "{{ {filter} }}"),
            Spanset::And(a, b) => (a, "&&", b),
            Spanset::Or(a, b) => (a, "||", b),
            Spanset::Structural(Relation::Child, a, b) => (a, ">", b),
            Spanset::Structural(Relation::Descendant, a, b) => (a, ">>", b),
            Spanset::Structural(Relation::Sibling, a, b) => (a, "~", b),
        };
        let rank = spanset_rank(self);
        operand(f, a.as_ref(), spanset_rank(a), rank, false)?;
        write!(f, " {op} ")?;
        operand(f, b.as_ref(), spanset_rank(b), rank, true)
    }
}

/// Binding strength inside a selector: `||` < `&&` < `!` and comparisons.
fn filter_rank(filter: &Filter) -> u8 {
    match filter {
        Filter::Or(..) => 0,
        Filter::And(..) => 1,
        Filter::Not(_) | Filter::Compare(..) => 2,
    }
}

impl std::fmt::Display for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (a, op, b) = match self {
            Filter::Compare(field, op, literal) => return write!(f, "{field} {op} {literal}"),
            Filter::Not(inner) => {
                f.write_str("!")?;
                // a comparison after `!` is read whole, so it needs no parentheses
                return operand(f, inner.as_ref(), filter_rank(inner), 2, false);
            }
            Filter::And(a, b) => (a, "&&", b),
            Filter::Or(a, b) => (a, "||", b),
        };
        let rank = filter_rank(self);
        operand(f, a.as_ref(), filter_rank(a), rank, false)?;
        write!(f, " {op} ")?;
        operand(f, b.as_ref(), filter_rank(b), rank, true)
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Field::Name => write!(f, "name"),
            Field::Status => write!(f, "status"),
            Field::Kind => write!(f, "kind"),
            Field::Duration => write!(f, "duration"),
            Field::ServiceName => write!(f, "resource.service.name"),
            Field::Span(k) => write!(f, "span.{k}"),
            Field::Resource(k) => write!(f, "resource.{k}"),
            Field::Any(k) => write!(f, ".{k}"),
        }
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Match => "=~",
            Op::NotMatch => "!~",
        })
    }
}

impl std::fmt::Display for Literal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let quoted = |f: &mut std::fmt::Formatter<'_>, s: &str| {
            f.write_str("\"")?;
            for c in s.chars() {
                match c {
                    '\\' => f.write_str("\\\\")?,
                    '"' => f.write_str("\\\"")?,
                    '\n' => f.write_str("\\n")?,
                    '\t' => f.write_str("\\t")?,
                    c => write!(f, "{c}")?,
                }
            }
            f.write_str("\"")
        };
        match self {
            Literal::String(s) => quoted(f, s),
            Literal::Regex(re) => quoted(f, regex_source(re)),
            Literal::Int(i) => write!(f, "{i}"),
            // plain digits with a point: no exponent, which would read as a unit
            Literal::Float(x) if x.fract() == 0.0 => write!(f, "{x}.0"),
            Literal::Float(x) => write!(f, "{x}"),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Duration(d) => write!(f, "{}ns", d.as_nanos()),
            Literal::Status(s) => f.write_str(match s {
                Status::Error => "error",
                Status::Ok => "ok",
                Status::Unset => "unset",
            }),
            Literal::Kind(spoor_model::SpanKind::Unspecified) => f.write_str("unspecified"),
            Literal::Kind(k) => f.write_str(k.as_str()),
            Literal::Nil => f.write_str("nil"),
        }
    }
}

/// The pattern as written: the parser anchors it as `^(?:pattern)$`.
fn regex_source(re: &regex::Regex) -> &str {
    let s = re.as_str();
    s.strip_prefix("^(?:")
        .and_then(|s| s.strip_suffix(")$"))
        .unwrap_or(s)
}
