//! The names an app's services go by, and the one place they are quoted.
//!
//! An app's MariaDB database and user and its RabbitMQ vhost and user are all `app_<name>`,
//! made by [`ServiceName::for_app`] and nowhere else. The app name is already validated
//! (`[a-z][a-z0-9-]*`), but this module checks the derived form again on its own terms, so a
//! name that reaches SQL is safe here whatever the rules upstream become: anything outside
//! `[a-z][a-z0-9_]*`, up to 64 characters (MariaDB's identifier limit), is refused before a
//! statement is built.

use std::fmt;

use crate::model::name::AppName;

use super::ServiceError;

/// MariaDB identifiers (database names) stop at 64 characters; user names at 80.
pub const MAX_LEN: usize = 64;

/// `app_<name>` with `-` made `_`: a database, a MariaDB user, a vhost and a RabbitMQ user.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceName(String);

impl ServiceName {
    /// The one derivation from an app name.
    pub fn for_app(app: &AppName) -> Result<Self, ServiceError> {
        Self::derive(app.as_str())
    }

    /// Derives and checks; public so the rule can be tested with names `AppName` refuses.
    pub fn derive(app: &str) -> Result<Self, ServiceError> {
        let name = format!("app_{}", app.replace('-', "_"));
        let bad = |why: &str| ServiceError::BadName {
            name: app.escape_debug().to_string(),
            why: why.to_owned(),
        };
        if app.is_empty() {
            return Err(bad("it is empty"));
        }
        if name.len() > MAX_LEN {
            return Err(bad("it is too long for a MariaDB identifier"));
        }
        if !app.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(bad("it must start with a lowercase letter"));
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
        {
            return Err(bad(&format!(
                "{c:?} cannot be part of a database or vhost name"
            )));
        }
        Ok(Self(name))
    }

    /// A scratch database's name, for a restore check: `verify_<8 hex digits>`, never an
    /// app's (those start `app_`).
    pub fn scratch() -> Self {
        Self(format!("verify_{:08x}", rand::random::<u32>()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A MariaDB identifier in backticks, backticks inside doubled. The only identifier quoting.
pub fn quote_ident(name: &ServiceName) -> String {
    format!("`{}`", name.as_str().replace('`', "``"))
}

/// A database name as a database-level `GRANT`/`REVOKE` names it: in backticks, with `_` and
/// `%` escaped. In `GRANT ... ON db.*` MariaDB reads the database name as a LIKE pattern even
/// inside backticks, so the unescaped `app_bl_g` also matches `app_blog`: app `bl-g` would own
/// app `blog`'s database. Only for grants: in `CREATE`/`DROP DATABASE` a backslash is a
/// literal character, so those use [`quote_ident`].
pub fn quote_grant_db(name: &ServiceName) -> String {
    let mut escaped = String::with_capacity(name.as_str().len() + 8);
    for c in name.as_str().chars() {
        match c {
            '_' | '%' | '\\' => {
                escaped.push('\\');
                escaped.push(c);
            }
            '`' => escaped.push_str("``"),
            c => escaped.push(c),
        }
    }
    format!("`{escaped}`")
}

/// A MariaDB string literal in single quotes, quotes inside doubled. The only literal quoting.
///
/// MariaDB takes no placeholder in `IDENTIFIED BY` (checked against 10.11: a syntax error), so
/// passwords and user names go in as literals. A backslash means different things with and
/// without `NO_BACKSLASH_ESCAPES`, and NUL or control characters have no business in a
/// credential: those are refused rather than escaped. Generated passwords are alphanumeric.
pub fn quote_str(value: &str) -> Result<String, ServiceError> {
    if value.chars().any(|c| c == '\\' || c.is_control()) {
        return Err(ServiceError::BadName {
            name: "<a string literal>".into(),
            why: "backslashes and control characters are not accepted in SQL literals".into(),
        });
    }
    Ok(format!("'{}'", value.replace('\'', "''")))
}

/// `'user'@'%'`: an app's MariaDB account, reachable from any host (apps run in containers
/// whose addresses change at every deploy).
pub fn sql_account(user: &ServiceName) -> Result<String, ServiceError> {
    Ok(format!("{}@'%'", quote_str(user.as_str())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_derive_from_app_names() {
        let app = AppName::try_new("my-app-2").unwrap();
        assert_eq!(ServiceName::for_app(&app).unwrap().as_str(), "app_my_app_2");
        let longest = AppName::try_new("a".repeat(crate::model::name::MAX_LEN)).unwrap();
        assert!(ServiceName::for_app(&longest).is_ok());
    }

    #[test]
    fn dangerous_names_are_refused() {
        for bad in [
            "",
            "x`; DROP DATABASE mysql; --",
            "x'@'%",
            "a b",
            "a;b",
            "Upper",
            "1abc",
            "_x",
            "a\\b",
            "caf\u{e9}",
            "a\u{0}b",
            "a.b",
            "a/b",
            &"a".repeat(61),
        ] {
            assert!(ServiceName::derive(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn quoting_doubles_the_quote_character() {
        assert_eq!(
            quote_ident(&ServiceName("we`ird".into())),
            "`we``ird`",
            "ServiceName never holds a backtick, but the quoting must not rely on it"
        );
        assert_eq!(quote_str("it's").unwrap(), "'it''s'");
        assert!(quote_str("a\\'b").is_err());
        assert!(quote_str("a\nb").is_err());
        let user = ServiceName::derive("shop").unwrap();
        assert_eq!(
            quote_grant_db(&ServiceName::derive("bl-g").unwrap()),
            "`app\\_bl\\_g`",
            "a grant's `_` is a wildcard unless escaped"
        );
        assert_eq!(quote_grant_db(&ServiceName("a%b`c".into())), "`a\\%b``c`");
        assert_eq!(sql_account(&user).unwrap(), "'app_shop'@'%'");
    }
}
