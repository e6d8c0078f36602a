use std::error::Error;
use std::fmt;

/// Any error a backend's failure came from.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// What a store operation failed with. Clients are told the kind (see
/// [`StorageError::kind`]); the context and the chain of sources (a driver's
/// error, a server's answer), which may name hosts and indices, are for logs
/// ([`Chain`]).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The request itself is wrong; retrying will not help. Its text is
    /// meant for the client.
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// The store refused or failed the operation; it may succeed later.
    #[error("storage backend error: {context}")]
    Backend {
        context: String,
        #[source]
        source: Option<BoxError>,
    },
    /// The backend could not answer now (timeout, overload, connection);
    /// the same call may succeed later, and the decorators retry it.
    #[error("storage backend unavailable: {context}")]
    Unavailable {
        context: String,
        #[source]
        source: Option<BoxError>,
    },
    /// The rest of the batch was stored; these spans were not and will not
    /// be on a retry (a bound of the store), so the client must be told.
    #[error("{count} span(s) not stored: {reason}")]
    SpansRefused { count: usize, reason: String },
}

impl StorageError {
    /// A failure of `context` caused by `source`.
    pub fn backend(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        StorageError::Backend {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    /// A failure the store describes itself (no underlying error).
    pub fn backend_msg(context: impl Into<String>) -> Self {
        StorageError::Backend {
            context: context.into(),
            source: None,
        }
    }

    /// `context` could not be done now, because of `source`; worth retrying.
    pub fn unavailable(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        StorageError::Unavailable {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    /// Unavailable, as the store describes it (no underlying error).
    pub fn unavailable_msg(context: impl Into<String>) -> Self {
        StorageError::Unavailable {
            context: context.into(),
            source: None,
        }
    }

    /// The stable name of the kind, what a client may be told.
    pub fn kind(&self) -> &'static str {
        match self {
            StorageError::InvalidQuery(_) => "invalid query",
            StorageError::Backend { .. } => "storage error",
            StorageError::Unavailable { .. } => "storage unavailable",
            StorageError::SpansRefused { .. } => "spans refused",
        }
    }
}

/// An error with its sources, `outer: inner: innermost`, for logs.
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_is_stable_and_the_chain_is_for_logs() {
        let io = std::io::Error::other("connection refused by es-3.internal:9200");
        let e = StorageError::unavailable("bulk write", io);
        assert_eq!(e.kind(), "storage unavailable");
        assert_eq!(e.to_string(), "storage backend unavailable: bulk write");
        assert_eq!(
            Chain(&e).to_string(),
            "storage backend unavailable: bulk write: connection refused by es-3.internal:9200"
        );
        assert!(
            Chain(&StorageError::backend_msg("no answer"))
                .to_string()
                .ends_with("no answer")
        );
    }
}
