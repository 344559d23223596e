//! The control plane's background tasks, in one list with one owner: started in one place
//! (`serve`), each handed the shutdown signal, and awaited (then aborted, past a grace
//! period) when the process stops.

use std::future::Future;
use std::time::Duration;

use minicloud_proxy::ShutdownWatch;
use tokio::task::JoinSet;

/// The running tasks. Dropping it aborts them; [`Tasks::stop`] lets them finish first.
pub struct Tasks {
    shutdown: ShutdownWatch,
    running: JoinSet<()>,
    names: Vec<&'static str>,
}

impl Tasks {
    pub fn new(shutdown: ShutdownWatch) -> Self {
        Self {
            shutdown,
            running: JoinSet::new(),
            names: Vec::new(),
        }
    }

    /// Starts `task`, handing it the shutdown signal it must stop on.
    pub fn spawn<F, Fut>(&mut self, name: &'static str, task: F)
    where
        F: FnOnce(ShutdownWatch) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let run = task(self.shutdown.clone());
        self.names.push(name);
        self.running.spawn(async move {
            run.await;
            tracing::debug!(task = name, "background task ended");
        });
        tracing::debug!(task = name, "background task started");
    }

    /// The names of the tasks started, in order.
    pub fn names(&self) -> &[&'static str] {
        &self.names
    }

    /// Waits up to `grace` for every task to end (they were told by the shutdown signal),
    /// then aborts what is left.
    pub async fn stop(mut self, grace: Duration) {
        let all = async { while self.running.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!(
                left = self.running.len(),
                "background tasks did not stop in time; aborting them"
            );
            self.running.abort_all();
            while self.running.join_next().await.is_some() {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn tasks_stop_on_the_signal_and_stragglers_are_aborted() {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let mut tasks = Tasks::new(rx);
        let polite = Arc::new(AtomicBool::new(false));
        let seen = polite.clone();
        tasks.spawn("polite", |mut shutdown| async move {
            let _ = shutdown.changed().await;
            seen.store(true, Ordering::SeqCst);
        });
        tasks.spawn("stubborn", |_| std::future::pending());
        assert_eq!(tasks.names(), ["polite", "stubborn"]);
        tx.send(true).unwrap();
        tasks.stop(Duration::from_millis(200)).await;
        assert!(polite.load(Ordering::SeqCst));
    }
}
