#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The request itself is wrong; retrying will not help.
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// The store refused or failed the operation; it may succeed later.
    #[error("storage backend error: {0}")]
    Backend(String),
    /// The backend could not answer now (timeout, overload, connection);
    /// the same call may succeed later, and the decorators retry it.
    #[error("storage backend unavailable: {0}")]
    Unavailable(String),
    /// The rest of the batch was stored; these spans were not and will not
    /// be on a retry (a bound of the store), so the client must be told.
    #[error("{count} span(s) not stored: {reason}")]
    SpansRefused { count: usize, reason: String },
}
