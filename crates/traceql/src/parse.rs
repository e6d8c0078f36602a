//! A recursive-descent parser over the tokens of [`crate::lex`].
//!
//! ```text
//! query      = spanset { "|" aggregate }
//! spanset    = and { "||" and }
//! and        = relation { "&&" relation }
//! relation   = primary { (">" | ">>" | "~") primary }
//! primary    = "{" [ filter ] "}" | "(" spanset ")"
//! filter     = conj { "||" conj }
//! conj       = unary { "&&" unary }
//! unary      = "!" unary | "(" filter ")" | field op literal
//! aggregate  = ("count" "(" ")" | ("avg"|"max"|"min") "(" "duration" ")") op literal
//! ```
use crate::ParseError;
use spoor_model::SpanKind;

use crate::ast::*;
use crate::lex::{Spanned, Token, tokens};

/// Deepest nesting of braces, parentheses and `!` a query may have.
pub const MAX_DEPTH: usize = 64;

pub fn parse(input: &str) -> Result<Query, ParseError> {
    let tokens = tokens(input)?;
    let end = input.chars().count() + 1;
    let mut p = Parser {
        tokens,
        at: 0,
        end,
        depth: 0,
    };
    let spansets = p.spanset()?;
    let mut pipeline = Vec::new();
    while p.eat(&Token::Pipe) {
        pipeline.push(p.aggregate()?);
    }
    if let Some(t) = p.peek() {
        return Err(ParseError::new(
            t.column,
            format!("unexpected {}", describe(&t.token)),
        ));
    }
    Ok(Query { spansets, pipeline })
}

struct Parser {
    tokens: Vec<Spanned>,
    at: usize,
    /// The column just past the input, where "expected ..." at the end points.
    end: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Spanned> {
        self.tokens.get(self.at)
    }

    fn column(&self) -> usize {
        self.peek().map_or(self.end, |t| t.column)
    }

    fn eat(&mut self, token: &Token) -> bool {
        if self.peek().is_some_and(|t| &t.token == token) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, token: &Token, what: &str) -> Result<(), ParseError> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(self.unexpected(what))
        }
    }

    fn unexpected(&self, expected: &str) -> ParseError {
        let found = self
            .peek()
            .map_or("the end of the query".to_string(), |t| describe(&t.token));
        ParseError::new(self.column(), format!("expected {expected}, found {found}"))
    }

    fn nest(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ParseError::new(
                self.column(),
                format!("nested deeper than {MAX_DEPTH}"),
            ));
        }
        Ok(())
    }

    fn spanset(&mut self) -> Result<Spanset, ParseError> {
        let mut left = self.spanset_and()?;
        while self.eat(&Token::OrOr) {
            left = Spanset::Or(Box::new(left), Box::new(self.spanset_and()?));
        }
        Ok(left)
    }

    fn spanset_and(&mut self) -> Result<Spanset, ParseError> {
        let mut left = self.relation()?;
        while self.eat(&Token::AndAnd) {
            left = Spanset::And(Box::new(left), Box::new(self.relation()?));
        }
        Ok(left)
    }

    fn relation(&mut self) -> Result<Spanset, ParseError> {
        let mut left = self.primary()?;
        loop {
            let relation = match self.peek().map(|t| &t.token) {
                Some(Token::Op(Op::Gt)) => Relation::Child,
                Some(Token::Descendant) => Relation::Descendant,
                Some(Token::Tilde) => Relation::Sibling,
                _ => return Ok(left),
            };
            self.at += 1;
            left = Spanset::Structural(relation, Box::new(left), Box::new(self.primary()?));
        }
    }

    fn primary(&mut self) -> Result<Spanset, ParseError> {
        self.nest()?;
        let spanset = if self.eat(&Token::LBrace) {
            let filter = if self.eat(&Token::RBrace) {
                None
            } else {
                let f = self.filter()?;
                self.expect(&Token::RBrace, "}")?;
                Some(f)
            };
            Spanset::Selector(filter)
        } else if self.eat(&Token::LParen) {
            let s = self.spanset()?;
            self.expect(&Token::RParen, ")")?;
            s
        } else {
            return Err(self.unexpected("a span selector { ... }"));
        };
        self.depth -= 1;
        Ok(spanset)
    }

    fn filter(&mut self) -> Result<Filter, ParseError> {
        let mut left = self.conj()?;
        while self.eat(&Token::OrOr) {
            left = Filter::Or(Box::new(left), Box::new(self.conj()?));
        }
        Ok(left)
    }

    fn conj(&mut self) -> Result<Filter, ParseError> {
        let mut left = self.unary()?;
        while self.eat(&Token::AndAnd) {
            left = Filter::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, ParseError> {
        self.nest()?;
        let filter = if self.eat(&Token::Not) {
            Filter::Not(Box::new(self.unary()?))
        } else if self.eat(&Token::LParen) {
            let f = self.filter()?;
            self.expect(&Token::RParen, ")")?;
            f
        } else {
            self.comparison()?
        };
        self.depth -= 1;
        Ok(filter)
    }

    fn comparison(&mut self) -> Result<Filter, ParseError> {
        let field = self.field()?;
        let op_column = self.column();
        let op = self.op()?;
        let literal_column = self.column();
        let literal = self.literal(op)?;
        check(&field, op, &literal, op_column, literal_column)?;
        Ok(Filter::Compare(field, op, literal))
    }

    fn field(&mut self) -> Result<Field, ParseError> {
        let Some(t) = self.peek() else {
            return Err(self.unexpected("a field"));
        };
        let field = match &t.token {
            Token::Attribute(key) => Field::Any(key.clone()),
            Token::Ident(name) => match name.as_str() {
                "name" => Field::Name,
                "status" => Field::Status,
                "kind" => Field::Kind,
                "duration" => Field::Duration,
                "resource.service.name" => Field::ServiceName,
                n => {
                    if let Some(key) = n.strip_prefix("span.") {
                        Field::Span(key.to_string())
                    } else if let Some(key) = n.strip_prefix("resource.") {
                        Field::Resource(key.to_string())
                    } else {
                        return Err(ParseError::new(
                            t.column,
                            format!(
                                "unknown field {n:?}: name, status, kind, duration, span.<attribute>, \
                                 resource.<attribute> or .<attribute>"
                            ),
                        ));
                    }
                }
            },
            _ => return Err(self.unexpected("a field")),
        };
        self.at += 1;
        Ok(field)
    }

    fn op(&mut self) -> Result<Op, ParseError> {
        let Some(Token::Op(op)) = self.peek().map(|t| &t.token) else {
            return Err(self.unexpected("a comparison (= != > >= < <= =~ !~)"));
        };
        let op = *op;
        self.at += 1;
        Ok(op)
    }

    fn literal(&mut self, op: Op) -> Result<Literal, ParseError> {
        let Some(t) = self.peek().cloned() else {
            return Err(self.unexpected("a value"));
        };
        let literal = match t.token {
            Token::String(s) if matches!(op, Op::Match | Op::NotMatch) => {
                // anchored: TraceQL's regexes match the whole value
                let re = regex::Regex::new(&format!("^(?:{s})$"))
                    .map_err(|e| ParseError::new(t.column, format!("invalid regex: {e}")))?;
                Literal::Regex(re)
            }
            Token::String(s) => Literal::String(s),
            Token::Int(i) => Literal::Int(i),
            Token::Float(f) => Literal::Float(f),
            Token::Duration(d) => Literal::Duration(d),
            Token::Ident(name) => match name.as_str() {
                "true" => Literal::Bool(true),
                "false" => Literal::Bool(false),
                "nil" => Literal::Nil,
                "error" => Literal::Status(Status::Error),
                "ok" => Literal::Status(Status::Ok),
                "unset" => Literal::Status(Status::Unset),
                "unspecified" => Literal::Kind(SpanKind::Unspecified),
                k @ ("internal" | "server" | "client" | "producer" | "consumer") => {
                    Literal::Kind(SpanKind::parse(k))
                }
                _ => {
                    return Err(ParseError::new(
                        t.column,
                        format!("unknown value {name:?} (strings are quoted)"),
                    ));
                }
            },
            _ => return Err(self.unexpected("a value")),
        };
        self.at += 1;
        Ok(literal)
    }

    fn aggregate(&mut self) -> Result<Aggregate, ParseError> {
        let column = self.column();
        let name = match self.peek().map(|t| &t.token) {
            Some(Token::Ident(n)) => n.clone(),
            _ => {
                return Err(self.unexpected(
                    "an aggregate: count(), avg(duration), max(duration) or min(duration)",
                ));
            }
        };
        self.at += 1;
        self.expect(&Token::LParen, "(")?;
        let function = match name.as_str() {
            "count" => AggregateFn::Count,
            "avg" | "max" | "min" => {
                if !matches!(self.peek().map(|t| &t.token), Some(Token::Ident(d)) if d == "duration")
                {
                    return Err(self.unexpected("duration"));
                }
                self.at += 1;
                match name.as_str() {
                    "avg" => AggregateFn::AvgDuration,
                    "max" => AggregateFn::MaxDuration,
                    _ => AggregateFn::MinDuration,
                }
            }
            _ => {
                return Err(ParseError::new(
                    column,
                    format!("unknown aggregate {name:?}: count, avg, max or min"),
                ));
            }
        };
        self.expect(&Token::RParen, ")")?;
        let op_column = self.column();
        let op = self.op()?;
        if matches!(op, Op::Match | Op::NotMatch) {
            return Err(ParseError::new(
                op_column,
                "an aggregate is compared with = != > >= < <=",
            ));
        }
        let value_column = self.column();
        let value = self.literal(op)?;
        let fits = match function {
            AggregateFn::Count => matches!(value, Literal::Int(_)),
            _ => matches!(value, Literal::Duration(_)),
        };
        if !fits {
            let want = if function == AggregateFn::Count {
                "a whole number"
            } else {
                "a duration (10ms)"
            };
            return Err(ParseError::new(
                value_column,
                format!("{name}() is compared with {want}"),
            ));
        }
        Ok(Aggregate {
            function,
            op,
            value,
        })
    }
}

/// The comparisons a field's type allows, checked as the query is read.
fn check(
    field: &Field,
    op: Op,
    literal: &Literal,
    op_column: usize,
    literal_column: usize,
) -> Result<(), ParseError> {
    let ordered = matches!(op, Op::Gt | Op::Ge | Op::Lt | Op::Le);
    let equality = matches!(op, Op::Eq | Op::Ne);
    let regex = matches!(op, Op::Match | Op::NotMatch);
    let fail = |column, m: String| Err(ParseError::new(column, m));
    match field {
        Field::Status | Field::Kind => {
            let fits = matches!(
                (field, literal),
                (Field::Status, Literal::Status(_)) | (Field::Kind, Literal::Kind(_))
            );
            if !equality {
                return fail(
                    op_column,
                    "status and kind are compared with = or !=".into(),
                );
            }
            if !fits {
                let want = if *field == Field::Status {
                    "error, ok or unset"
                } else {
                    "server, client, producer, consumer, internal or unspecified"
                };
                return fail(literal_column, format!("expected {want}"));
            }
        }
        Field::Duration => {
            if regex || !matches!(literal, Literal::Duration(_)) {
                return fail(
                    literal_column,
                    "duration is compared with a duration (10ms, 1.5s)".into(),
                );
            }
        }
        Field::Name | Field::ServiceName => {
            if !matches!(literal, Literal::String(_) | Literal::Regex(_)) {
                return fail(literal_column, "expected a quoted string".into());
            }
        }
        Field::Span(_) | Field::Resource(_) | Field::Any(_) => {
            if matches!(literal, Literal::Status(_) | Literal::Kind(_)) {
                return fail(literal_column, "strings are quoted".into());
            }
            if matches!(literal, Literal::Nil) && !equality {
                return fail(op_column, "nil is compared with = or !=".into());
            }
        }
    }
    if regex && !matches!(literal, Literal::Regex(_)) {
        return fail(
            literal_column,
            "=~ and !~ take a quoted regular expression".into(),
        );
    }
    if ordered && matches!(literal, Literal::Bool(_)) {
        return fail(op_column, "booleans are compared with = or !=".into());
    }
    Ok(())
}

fn describe(token: &Token) -> String {
    match token {
        Token::LBrace => "{".into(),
        Token::RBrace => "}".into(),
        Token::LParen => "(".into(),
        Token::RParen => ")".into(),
        Token::Pipe => "|".into(),
        Token::AndAnd => "&&".into(),
        Token::OrOr => "||".into(),
        Token::Not => "!".into(),
        Token::Op(op) => op.to_string(),
        Token::Descendant => ">>".into(),
        Token::Tilde => "~".into(),
        Token::Ident(n) => format!("{n:?}"),
        Token::Attribute(n) => format!(".{n}"),
        Token::String(s) => format!("string {s:?}"),
        Token::Int(i) => i.to_string(),
        Token::Float(f) => f.to_string(),
        Token::Duration(d) => format!("{d:?}"),
    }
}
