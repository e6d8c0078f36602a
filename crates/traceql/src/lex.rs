//! Tokens of a query, each with the column it starts at.
use crate::ParseError;
use crate::ast::Op;

#[derive(Clone, Debug, PartialEq)]
pub enum Token {
    LBrace,
    RBrace,
    LParen,
    RParen,
    Pipe,
    AndAnd,
    OrOr,
    Not,
    /// A comparison; `>` is also the child operator between selectors.
    Op(Op),
    Descendant,
    Tilde,
    /// A name: an intrinsic, a scoped attribute (`span.http.method`), a
    /// keyword (`true`, `nil`, `error`) or a function (`count`).
    Ident(String),
    /// `.http.method`: an attribute of either scope.
    Attribute(String),
    String(String),
    Int(i64),
    Float(f64),
    Duration(std::time::Duration),
}

/// A token and its column, 1-based, in characters.
#[derive(Clone, Debug, PartialEq)]
pub struct Spanned {
    pub token: Token,
    pub column: usize,
}

/// Most tokens a query may have.
pub const MAX_TOKENS: usize = 10_000;

pub fn tokens(input: &str) -> Result<Vec<Spanned>, ParseError> {
    let chars: Vec<(usize, char)> = input.chars().enumerate().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (column, c) = (chars[i].0 + 1, chars[i].1);
        let next = chars.get(i + 1).map(|(_, c)| *c);
        let two = |t: Token| (t, 2);
        let (token, width) = match (c, next) {
            (c, _) if c.is_whitespace() => {
                i += 1;
                continue;
            }
            ('{', _) => (Token::LBrace, 1),
            ('}', _) => (Token::RBrace, 1),
            ('(', _) => (Token::LParen, 1),
            (')', _) => (Token::RParen, 1),
            ('&', Some('&')) => two(Token::AndAnd),
            ('|', Some('|')) => two(Token::OrOr),
            ('|', _) => (Token::Pipe, 1),
            ('!', Some('=')) => two(Token::Op(Op::Ne)),
            ('!', Some('~')) => two(Token::Op(Op::NotMatch)),
            ('!', _) => (Token::Not, 1),
            ('=', Some('~')) => two(Token::Op(Op::Match)),
            ('=', _) => (Token::Op(Op::Eq), 1),
            ('>', Some('>')) => two(Token::Descendant),
            ('>', Some('=')) => two(Token::Op(Op::Ge)),
            ('>', _) => (Token::Op(Op::Gt), 1),
            ('<', Some('=')) => two(Token::Op(Op::Le)),
            ('<', _) => (Token::Op(Op::Lt), 1),
            ('~', _) => (Token::Tilde, 1),
            ('"', _) => {
                let (s, width) = string(&chars[i..], column)?;
                (Token::String(s), width)
            }
            ('.', Some(n)) if is_name(n) => {
                let width = 1 + name_len(&chars[i + 1..]);
                let name: String = chars[i + 1..i + width].iter().map(|(_, c)| c).collect();
                (Token::Attribute(name), width)
            }
            (c, _)
                if c.is_ascii_digit() || (c == '-' && next.is_some_and(|n| n.is_ascii_digit())) =>
            {
                number(&chars[i..], column)?
            }
            (c, _) if is_name(c) => {
                let width = name_len(&chars[i..]);
                let name: String = chars[i..i + width].iter().map(|(_, c)| c).collect();
                (Token::Ident(name), width)
            }
            (c, _) => {
                return Err(ParseError::new(
                    column,
                    format!("unexpected character {c:?}"),
                ));
            }
        };
        out.push(Spanned { token, column });
        if out.len() > MAX_TOKENS {
            return Err(ParseError::new(
                column,
                format!("a query has at most {MAX_TOKENS} tokens"),
            ));
        }
        i += width;
    }
    Ok(out)
}

fn is_name(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// A name runs over letters, digits, `_`, `-` and the dots between them
/// (`http.status_code`, `k8s.pod-name`).
fn name_len(chars: &[(usize, char)]) -> usize {
    let mut n = 0;
    while let Some((_, c)) = chars.get(n) {
        let dot_then_name = *c == '.' && chars.get(n + 1).is_some_and(|(_, c)| is_name(*c));
        if is_name(*c) || *c == '-' || dot_then_name {
            n += 1;
        } else {
            break;
        }
    }
    n
}

fn string(chars: &[(usize, char)], column: usize) -> Result<(String, usize), ParseError> {
    let mut s = String::new();
    let mut n = 1;
    loop {
        match chars.get(n).map(|(_, c)| *c) {
            None => return Err(ParseError::new(column, "unterminated string")),
            Some('"') => return Ok((s, n + 1)),
            Some('\\') => {
                let escaped = match chars.get(n + 1).map(|(_, c)| *c) {
                    Some('n') => '\n',
                    Some('t') => '\t',
                    Some(c @ ('"' | '\\')) => c,
                    // a regex escape (`\d`, `\.`) stays as written
                    Some(c) => {
                        s.push('\\');
                        c
                    }
                    None => return Err(ParseError::new(column, "unterminated string")),
                };
                s.push(escaped);
                n += 2;
            }
            Some(c) => {
                s.push(c);
                n += 1;
            }
        }
    }
}

/// An integer, a float, or a duration (`10ms`, `1.5s`, `2h`).
fn number(chars: &[(usize, char)], column: usize) -> Result<(Token, usize), ParseError> {
    let mut n = usize::from(chars[0].1 == '-');
    while chars
        .get(n)
        .is_some_and(|(_, c)| c.is_ascii_digit() || *c == '.')
    {
        n += 1;
    }
    let digits: String = chars[..n].iter().map(|(_, c)| c).collect();
    let mut unit_len = 0;
    while chars
        .get(n + unit_len)
        .is_some_and(|(_, c)| c.is_ascii_alphabetic() || *c == 'µ')
    {
        unit_len += 1;
    }
    let unit: String = chars[n..n + unit_len].iter().map(|(_, c)| c).collect();
    let bad = || {
        ParseError::new(
            column,
            format!("{digits}{unit} is not a number or duration"),
        )
    };
    if unit.is_empty() {
        if let Ok(i) = digits.parse::<i64>() {
            return Ok((Token::Int(i), n));
        }
        let f: f64 = digits.parse().map_err(|_| bad())?;
        return Ok((Token::Float(f), n));
    }
    let nanos_per: f64 = match unit.as_str() {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        _ => {
            return Err(ParseError::new(
                column,
                format!("unknown duration unit {unit:?} (ns, us, ms, s, m, h)"),
            ));
        }
    };
    let value: f64 = digits.parse().map_err(|_| bad())?;
    if value < 0.0 {
        return Err(ParseError::new(column, "a duration cannot be negative"));
    }
    let nanos = value * nanos_per;
    if !nanos.is_finite() || nanos > u64::MAX as f64 {
        return Err(bad());
    }
    Ok((
        Token::Duration(std::time::Duration::from_nanos(nanos as u64)),
        n + unit_len,
    ))
}
