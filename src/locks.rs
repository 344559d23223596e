//! One operation per app at a time: each app's lock, and which operation holds it, so a
//! refusal can say what the app is busy with.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OwnedMutexGuard;

use crate::model::{AppName, Operation};

/// How often a person's operation looks again at a lock a reconcile holds.
const RECONCILE_POLL: Duration = Duration::from_millis(50);

/// The locks of every app. Cheap to clone; every clone is the same set.
#[derive(Clone, Default)]
pub struct AppLocks {
    slots: Arc<Mutex<HashMap<AppName, Slot>>>,
}

/// One app's lock, and the operation that last took it.
type Slot = (Arc<tokio::sync::Mutex<()>>, Operation);

/// Held while an operation runs on one app; dropping it frees the app.
pub struct AppLock {
    _guard: OwnedMutexGuard<()>,
}

/// Another operation holds the app.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{app} is busy: {operation} is in progress; try again when it has finished")]
pub struct Busy {
    pub app: AppName,
    pub operation: Operation,
}

impl AppLocks {
    /// Takes the app's lock for `operation`, or says what holds it. Never waits.
    pub fn lock(&self, app: &AppName, operation: Operation) -> Result<AppLock, Busy> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let slot = slots
            .entry(app.clone())
            .or_insert_with(|| (Arc::default(), operation));
        match Arc::clone(&slot.0).try_lock_owned() {
            Ok(guard) => {
                slot.1 = operation;
                Ok(AppLock { _guard: guard })
            }
            Err(_) => Err(Busy {
                app: app.clone(),
                operation: slot.1,
            }),
        }
    }

    /// Takes the app's lock for a person's `operation`. A background reconcile holding it (a
    /// look that moves a route, the drift plan) is waited out for up to `patience`: it is
    /// short, and the person asked for nothing wrong. Another person's operation is refused
    /// at once, naming it, as is a reconcile that outlasts `patience` (a start-up reconcile
    /// that recreates containers).
    pub async fn lock_after_reconcile(
        &self,
        app: &AppName,
        operation: Operation,
        patience: Duration,
    ) -> Result<AppLock, Busy> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            match self.lock(app, operation) {
                Err(busy)
                    if busy.operation == Operation::Reconcile
                        && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(RECONCILE_POLL).await;
                }
                taken => return taken,
            }
        }
    }

    /// Which operation runs on `app`, if any.
    pub fn busy(&self, app: &AppName) -> Option<Operation> {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let (mutex, operation) = slots.get(app)?;
        let held = mutex.try_lock().is_err();
        held.then_some(*operation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_app_refuses_a_second_operation_and_names_the_first() {
        let locks = AppLocks::default();
        let app = AppName::try_new("blog").unwrap();
        let held = locks.lock(&app, Operation::Deploy).unwrap();
        let refused = locks.lock(&app, Operation::Stop).err().unwrap();
        assert_eq!(refused.operation, Operation::Deploy);
        assert_eq!(locks.busy(&app), Some(Operation::Deploy));
        assert!(refused.to_string().contains("a deploy is in progress"));
        drop(held);
        assert_eq!(locks.busy(&app), None);
        assert!(locks.lock(&app, Operation::Stop).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_persons_operation_waits_out_a_short_reconcile_but_not_another_operation() {
        let locks = AppLocks::default();
        let app = AppName::try_new("blog").unwrap();
        let patience = Duration::from_secs(10);

        let reconcile = locks.lock(&app, Operation::Reconcile).unwrap();
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            drop(reconcile);
        });
        let taken = locks
            .lock_after_reconcile(&app, Operation::DomainChange, patience)
            .await;
        assert!(taken.is_ok(), "the reconcile ended within the patience");
        release.await.unwrap();
        drop(taken);

        let deploy = locks.lock(&app, Operation::Deploy).unwrap();
        let refused = locks
            .lock_after_reconcile(&app, Operation::DomainChange, patience)
            .await
            .err()
            .unwrap();
        assert_eq!(refused.operation, Operation::Deploy);
        drop(deploy);

        let _long = locks.lock(&app, Operation::Reconcile).unwrap();
        let refused = locks
            .lock_after_reconcile(&app, Operation::DomainChange, patience)
            .await
            .err()
            .unwrap();
        assert_eq!(refused.operation, Operation::Reconcile);
    }
}
