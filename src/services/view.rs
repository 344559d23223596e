//! What a person may see of an app's service accounts: masked unless revealed on purpose.

use serde::Serialize;

use super::names::ServiceName;
use super::{Credentials, Provisioner, ServiceError, Services};
use crate::model::name::AppName;
use crate::model::secret::Secret;
use crate::model::ServiceKind;

/// Shown instead of a password unless it is revealed.
const MASK: &str = "********";

/// One service account of an app.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceView {
    pub kind: ServiceKind,
    pub user: String,
    /// The database or the vhost.
    pub resource: String,
    /// What the app connects to.
    pub host: String,
    /// Masked unless revealed.
    pub password: String,
    /// The variables the app gets, with the password masked unless revealed.
    pub env: std::collections::BTreeMap<String, String>,
    pub created_at: i64,
    pub rotated_at: Option<i64>,
}

impl Services {
    /// The app's service accounts; passwords only when `reveal`.
    pub fn view(&self, app: &AppName, reveal: bool) -> Result<Vec<ServiceView>, ServiceError> {
        let resource = ServiceName::for_app(app)?.as_str().to_owned();
        let mut out = Vec::new();
        for kind in [ServiceKind::Mariadb, ServiceKind::Rabbitmq] {
            let (store, host) = match kind {
                ServiceKind::Mariadb => match &self.mariadb {
                    Some(db) => (&db.store, db.settings.app_host.clone()),
                    None => continue,
                },
                ServiceKind::Rabbitmq => match &self.rabbitmq {
                    Some(mq) => (&mq.store, mq.settings.app_host.clone()),
                    None => continue,
                },
                ServiceKind::Storage => continue,
            };
            let Some(record) = store.service(app, kind)? else {
                continue;
            };
            let password = if reveal {
                record.password.clone()
            } else {
                Secret::new(MASK)
            };
            let grant = Credentials {
                user: record.user.clone(),
                password: password.clone(),
                host: host.clone(),
                resource: resource.clone(),
            };
            let env = match (kind, &self.mariadb, &self.rabbitmq) {
                (ServiceKind::Mariadb, Some(db), _) => db.env(&grant),
                (ServiceKind::Rabbitmq, _, Some(mq)) => mq.env(&grant),
                _ => Default::default(),
            };
            out.push(ServiceView {
                kind,
                user: record.user,
                resource: resource.clone(),
                host,
                password: password.expose().to_owned(),
                env,
                created_at: record.created_at,
                rotated_at: record.rotated_at,
            });
        }
        Ok(out)
    }
}
