//! A shutdown signal that many tasks can wait on: tokio-util's
//! `CancellationToken`, cancelled by the trigger or when the trigger is
//! dropped.
use tokio_util::sync::{CancellationToken, DropGuard};

/// Cloneable; every clone sees the trigger.
#[derive(Clone)]
pub struct Shutdown {
    token: CancellationToken,
}

/// Triggers shutdown for every [`Shutdown`] made from it; dropping it
/// triggers too (nothing is left to say stop).
pub struct ShutdownTrigger {
    _on_drop: DropGuard,
    token: CancellationToken,
}

impl ShutdownTrigger {
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let token = CancellationToken::new();
        let trigger = ShutdownTrigger {
            _on_drop: token.clone().drop_guard(),
            token: token.clone(),
        };
        (trigger, Shutdown { token })
    }

    pub fn trigger(&self) {
        self.token.cancel();
    }
}

impl Shutdown {
    /// Whether shutdown has been triggered.
    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves once shutdown is triggered (at once if it already was).
    pub async fn wait(self) {
        self.token.cancelled_owned().await;
    }
}

/// Resolves on ctrl-c or SIGTERM.
pub async fn os_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_clone_sees_the_trigger_and_a_dropped_trigger_stops_too() {
        let (trigger, shutdown) = ShutdownTrigger::new();
        let waiter = tokio::spawn(shutdown.clone().wait());
        assert!(!shutdown.is_triggered());
        trigger.trigger();
        waiter.await.unwrap();
        assert!(shutdown.clone().is_triggered());
        shutdown.wait().await; // at once once triggered

        let (trigger, shutdown) = ShutdownTrigger::new();
        drop(trigger);
        assert!(shutdown.is_triggered());
        shutdown.wait().await;
    }
}
