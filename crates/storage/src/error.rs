#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The request itself is wrong; retrying will not help.
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// The store refused or failed the operation; it may succeed later.
    #[error("storage backend error: {0}")]
    Backend(String),
}
