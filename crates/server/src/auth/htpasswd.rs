//! HTTP basic auth against an htpasswd file of bcrypt hashes (`htpasswd
//! -B`, Apache's and nginx's format), each line optionally followed by
//! `:role[:tenant]`. bcrypt is slow on purpose (tens of milliseconds a
//! check), so a password that passed is remembered, by digest, for as long
//! as the file in force is the same: a script that sends the same
//! credentials with every request pays for one check.
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine;

use super::{AuthError, Identity, Role, digest};

/// Remembered passwords at most; past it the memory starts again.
const MAX_VERIFIED: usize = 10_000;

struct User {
    hash: String,
    role: Role,
    tenant: Option<String>,
}

pub(super) struct Users(HashMap<String, User>);

pub(super) fn parse(path: &Path, text: &str) -> Result<Users, AuthError> {
    let mut users = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |what| AuthError::Line {
            path: path.display().to_string(),
            line: i + 1,
            what,
        };
        let mut fields = line.split(':');
        let (Some(name), Some(hash)) = (fields.next(), fields.next()) else {
            return Err(err("expected `user:bcrypt-hash[:role[:tenant]]`"));
        };
        if !(hash.starts_with("$2y$") || hash.starts_with("$2b$") || hash.starts_with("$2a$")) {
            return Err(err(
                "not a bcrypt hash (make one with `htpasswd -B`; MD5, SHA and crypt hashes are refused)",
            ));
        }
        let role = match fields.next() {
            None | Some("") => Role::Read,
            Some(r) => Role::parse(r).ok_or_else(|| err("role must be ingest, read or admin"))?,
        };
        let tenant = fields.next().filter(|t| !t.is_empty()).map(str::to_string);
        if fields.next().is_some() {
            return Err(err("expected `user:bcrypt-hash[:role[:tenant]]`"));
        }
        let user = User {
            hash: hash.to_string(),
            role,
            tenant,
        };
        if users.insert(name.to_string(), user).is_some() {
            return Err(err("the same user is listed twice"));
        }
    }
    Ok(Users(users))
}

/// The users file a memory of passed passwords is for, and the identities
/// by digest of the credentials.
type Memory = (Option<Arc<Users>>, HashMap<[u8; 32], Identity>);

/// Passwords that passed against one version of the users file.
#[derive(Default)]
pub(super) struct Verified(Mutex<Memory>);

impl Verified {
    /// How many passwords are remembered.
    #[cfg(test)]
    pub(super) fn remembered(&self) -> usize {
        self.0.lock().expect("auth lock poisoned").1.len()
    }

    /// The identity of basic credentials (`base64(user:password)`), if
    /// they match a user of `users`.
    pub(super) async fn check(&self, users: Arc<Users>, credentials: &str) -> Option<Identity> {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credentials)
            .ok()?;
        let key = digest(&decoded);
        {
            let mut memory = self.0.lock().expect("auth lock poisoned");
            let same_file = memory.0.as_ref().is_some_and(|u| Arc::ptr_eq(u, &users));
            if !same_file {
                *memory = (Some(Arc::clone(&users)), HashMap::new());
            }
            if let Some(identity) = memory.1.get(&key) {
                return Some(identity.clone());
            }
        }
        let text = String::from_utf8(decoded).ok()?;
        let (name, password) = text.split_once(':')?;
        let user = users.0.get(name)?;
        let hash = user.hash.clone();
        let password = password.to_string();
        // off the async workers: a check takes tens of milliseconds
        let ok =
            tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
                .await
                .unwrap_or(false);
        if !ok {
            return None;
        }
        let identity = Identity {
            name: name.to_string(),
            role: user.role,
            tenant: user.tenant.clone(),
        };
        let mut memory = self.0.lock().expect("auth lock poisoned");
        if memory.0.as_ref().is_some_and(|u| Arc::ptr_eq(u, &users)) {
            if memory.1.len() >= MAX_VERIFIED {
                memory.1.clear();
            }
            memory.1.insert(key, identity.clone());
        }
        Some(identity)
    }
}
