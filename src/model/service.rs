//! `ServiceKind`: which shared service a provisioner, or a stored credential, is for.

use serde::{Deserialize, Serialize};

use super::manifest::Need;

/// Which service a provisioner (or a stored credential) is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKind {
    Mariadb,
    Rabbitmq,
    Storage,
}

impl ServiceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mariadb => "mariadb",
            Self::Rabbitmq => "rabbitmq",
            Self::Storage => "storage",
        }
    }
}

impl From<Need> for ServiceKind {
    fn from(need: Need) -> Self {
        match need {
            Need::Database => Self::Mariadb,
            Need::Messagebus => Self::Rabbitmq,
            Need::Storage => Self::Storage,
        }
    }
}

impl std::fmt::Display for ServiceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
