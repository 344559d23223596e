//! A deploy on its own task, which owns the app's lock: a client that disconnects can neither
//! cancel a deploy halfway nor let a second operation start beside it. What a failed deploy
//! leaves is taken back on that task, still under the lock: an env change it deployed, and
//! everything of an app's first deploy.

use std::collections::BTreeSet;

use super::deploy::{Deployed, Source};
use super::error::{AppError, DeployFailure};
use super::Apps;
use crate::bus::Op;
use crate::locks::AppLock;
use crate::model::{AppName, Need, Trigger};

/// What existed of an app's name before its first deploy, so a failed one removes only what
/// it made itself.
#[derive(Debug, Clone, Copy)]
pub(super) struct BeforeFirstDeploy {
    pub had_accounts: bool,
    pub had_storage: bool,
}

/// What a failed deploy takes back besides an env change.
pub(super) enum Undo {
    Nothing,
    /// An app's first deploy: the app goes again (see [`BeforeFirstDeploy`]).
    FirstDeploy(BeforeFirstDeploy),
    /// A service attached or detached: the added services as they were.
    Services(BTreeSet<Need>),
}

impl Apps {
    /// Runs a deploy on its own task (see the module's doc) and answers with its outcome. A
    /// failed first deploy answers once the app is gone from the store and the engine; the
    /// accounts and directory it made go after the answer, still under the lock, so a service
    /// that does not answer makes the caller wait for its timeout once, not twice.
    pub(super) async fn spawn_deploy(
        &self,
        lock: AppLock,
        op: &Op,
        name: &AppName,
        source: Source,
        trigger: Trigger,
        undo: Undo,
    ) -> Result<Deployed, AppError> {
        let this = self.clone();
        let name = name.clone();
        let op = op.clone();
        let task_name = name.clone();
        let (reply, answer) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let _lock = lock;
            let result = this.run_deploy(&op, &name, source, trigger).await;
            let result = match result {
                Ok(deployed) => Ok(deployed),
                Err(e) => this.take_back(&name, &undo).await.and(Err(e)),
            };
            let failed = result.is_err();
            let _ = reply.send(result);
            if let (true, Undo::FirstDeploy(before)) = (failed, undo) {
                this.remove_first_deploy_data(&name, before).await;
            }
        });
        answer.await.unwrap_or_else(|_| {
            Err(DeployFailure {
                app: task_name,
                revision: None,
                reason: "the deploy task died".into(),
                log_tail: None,
                still_serving: None,
            }
            .into())
        })
    }

    /// What the answer to a failed deploy waits for: an env change and the added services are
    /// put back (the stored ones are the serving ones), and a first deploy's app goes from the
    /// store and the engine.
    async fn take_back(&self, name: &AppName, undo: &Undo) -> Result<(), AppError> {
        if let Some(mut record) = self.ctx.store.app(name)? {
            let mut changed = record.put_back_env();
            if let Undo::Services(added) = undo {
                record.added_services = added.clone();
                changed = true;
            }
            if changed {
                self.ctx.store.put_app(&record)?;
            }
        }
        if let Undo::FirstDeploy(_) = undo {
            // Nothing of a failed first deploy stays: no record, history or container.
            self.remove_all(name).await;
            self.ctx.store.delete_app(name)?;
            self.ctx.publish_routes()?;
        }
        Ok(())
    }

    /// The accounts and directory a failed first deploy made. What an earlier app of the same
    /// name left on purpose (removed without its data) stays.
    async fn remove_first_deploy_data(&self, name: &AppName, before: BeforeFirstDeploy) {
        if !before.had_accounts {
            if let Err(e) = self.services.remove_accounts(name).await {
                tracing::warn!(app = %name, error = %e, "cannot remove the accounts of a failed first deploy");
            }
        }
        if !before.had_storage {
            if let Err(e) = self.services.storage().remove_dir(name).await {
                tracing::warn!(app = %name, error = %e, "cannot remove the storage of a failed first deploy");
            }
        }
    }
}
