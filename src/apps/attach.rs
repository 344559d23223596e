//! Services the admin gives an app beyond what its manifest asks for: attach a database,
//! message bus or storage, or detach one again, then redeploy the serving revision so its
//! environment (and mount) says so. Detaching keeps the data unless asked.

use std::collections::BTreeSet;

use super::deploy::{Deployed, Source};
use super::spawn::Undo;
use super::{AppError, Apps};
use crate::bus::Op;
use crate::model::{manifest, AppName, Need, Operation, Trigger};
use crate::store::AppRecord;

/// An app's services: what its manifest asks for, and what the admin added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceNeeds {
    pub declared: BTreeSet<Need>,
    pub added: BTreeSet<Need>,
}

impl Apps {
    pub fn service_needs(&self, name: &AppName) -> Result<ServiceNeeds, AppError> {
        let record = self.app_record(name)?;
        Ok(ServiceNeeds {
            declared: self.declared_needs(&record)?,
            added: record.added_services,
        })
    }

    /// What the serving revision's manifest itself asks for (without what was added).
    fn declared_needs(&self, record: &AppRecord) -> Result<BTreeSet<Need>, AppError> {
        let Some(revision) = record.current else {
            return Ok(BTreeSet::new());
        };
        let Some(deploy) = self.ctx.store.deploy(&record.name, revision)? else {
            return Ok(BTreeSet::new());
        };
        Ok(manifest::parse(&deploy.manifest_file, &deploy.manifest_text)?.needs)
    }

    /// Makes the app's services exist (what its serving revision's manifest asks for and
    /// what the admin added: database, message bus, storage) without deploying: a whole-box
    /// restore fills them before the app runs. The caller holds the app's lock.
    pub async fn ensure_services(&self, name: &AppName) -> Result<(), AppError> {
        let record = self.app_record(name)?;
        let mut needs = self.declared_needs(&record)?;
        needs.extend(record.added_services.iter().copied());
        self.services.provision(name, &needs).await?;
        Ok(())
    }

    /// Gives the app `need` and redeploys its serving revision with it (a database adds
    /// `DATABASE_URL`, and so on). A service it has already changes nothing; a redeploy that
    /// fails takes the change back.
    pub async fn attach(
        &self,
        op: &Op,
        name: &AppName,
        need: Need,
    ) -> Result<Option<Deployed>, AppError> {
        let lock = self.lock(name, Operation::ServiceChange).await?;
        let mut record = self.app_record(name)?;
        let before = record.added_services.clone();
        if self.declared_needs(&record)?.contains(&need) || !record.added_services.insert(need) {
            return Ok(None);
        }
        self.ctx.store.put_app(&record)?;
        self.redeploy_for_services(lock, op, &record, before).await
    }

    /// Takes an attached `need` away again and redeploys without it. Its data (database,
    /// vhost, files) stays for a later attach unless `with_data`. A service the manifest asks
    /// for cannot be detached: the app says it needs it.
    pub async fn detach(
        &self,
        op: &Op,
        name: &AppName,
        need: Need,
        with_data: bool,
    ) -> Result<Option<Deployed>, AppError> {
        let lock = self.lock(name, Operation::ServiceChange).await?;
        let mut record = self.app_record(name)?;
        if self.declared_needs(&record)?.contains(&need) {
            return Err(AppError::Invalid(format!(
                "{name}'s manifest asks for {need}, so it cannot be detached"
            )));
        }
        let before = record.added_services.clone();
        if !record.added_services.remove(&need) {
            return Err(AppError::Invalid(format!("{name} has no {need} attached")));
        }
        self.ctx.store.put_app(&record)?;
        let deployed = self
            .redeploy_for_services(lock, op, &record, before)
            .await?;
        // Only once no revision uses it any more.
        if with_data {
            self.services.remove_one(name, need).await?;
        }
        Ok(deployed)
    }

    async fn redeploy_for_services(
        &self,
        lock: crate::locks::AppLock,
        op: &Op,
        record: &AppRecord,
        before: BTreeSet<Need>,
    ) -> Result<Option<Deployed>, AppError> {
        match record.current {
            Some(revision) if !record.stopped => {
                let source = Source::Revision { revision };
                let undo = Undo::Services(before);
                self.spawn_deploy(lock, op, &record.name, source, Trigger::ServiceChange, undo)
                    .await
                    .map(Some)
            }
            // A stopped app gets it when it starts again.
            _ => Ok(None),
        }
    }
}
