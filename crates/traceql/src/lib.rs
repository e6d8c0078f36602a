//! A documented subset of TraceQL (docs/query-language.md): span selectors
//! over intrinsics and attributes, `&& || !` inside them, structural `> >> ~`
//! and `&& ||` between them, and `count()`/`avg|max|min(duration)` filters.
//!
//! [`parse`] reads a query into an [`ast::Query`], with errors that name the
//! column; [`ast::Query::matches`] evaluates it on a trace; [`plan`] says
//! what a store's own search can narrow the candidates to.
pub mod ast;
mod eval;
mod lex;
mod parse;
mod plan;

pub use ast::Query;
pub use parse::{MAX_DEPTH, parse};
pub use plan::{Candidates, NoService, plan};

/// A query that cannot be read, and the column (1-based, in characters)
/// where reading stopped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct ParseError {
    pub column: usize,
    pub message: String,
}

impl ParseError {
    fn new(column: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            column,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests;
