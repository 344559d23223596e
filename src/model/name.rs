//! `AppName`: the validated name of an app, made once where a name enters the system.
//!
//! The name ends up in container names (`mc-<app>-<runner>-<N>`), host names (`<app>.<domain>`),
//! SQL identifiers (`app_<name>`) and RabbitMQ vhosts, so it is a DNS label kept short and
//! boring. This module owns the rule; it does not own the derived forms (SQL-safe identifiers,
//! container names), which live with the code that uses them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest accepted name. 40 leaves room for `mc-<app>-<runner>-<N>` container names and
/// `app_<name>` database names (MariaDB identifiers stop at 64 characters).
pub const MAX_LEN: usize = 40;

/// Names that would collide with minicloud's own host names or identifiers.
pub const RESERVED: &[&str] = &["admin", "api", "www", "minicloud"];

/// Why a string is not an app name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppNameError {
    #[error("app name is empty")]
    Empty,
    #[error("app name '{name}' is {len} characters long (at most {MAX_LEN})")]
    TooLong { name: String, len: usize },
    #[error("app name '{name}' must start with a lowercase letter")]
    BadStart { name: String },
    #[error("app name '{name}' must not end with '-'")]
    TrailingHyphen { name: String },
    #[error("app name '{name}' must not contain '--'")]
    DoubleHyphen { name: String },
    #[error(
        "app name '{name}' contains {ch:?}: only lowercase letters a-z, digits 0-9 and '-' are allowed"
    )]
    BadChar { name: String, ch: char },
    #[error("app name '{name}' is reserved (reserved: {})", RESERVED.join(", "))]
    Reserved { name: String },
}

/// A validated app name: a lowercase DNS label, `[a-z][a-z0-9-]*`, 1..=40 characters, no
/// trailing `-`, no `--`, not reserved.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AppName(String);

impl AppName {
    /// Validates `name` as given: no trimming and no lower-casing, so what is stored is what
    /// the person typed (a UI can normalise before calling this if it wants to).
    pub fn try_new(name: impl Into<String>) -> Result<Self, AppNameError> {
        let name = name.into();
        validate(&name)?;
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// The subject of the platform's own backup runs, in the places that key runs by app:
    /// `minicloud`, a reserved name, so no app can have it (see [`RESERVED`]).
    pub fn platform() -> Self {
        Self(PLATFORM.to_owned())
    }

    pub fn is_platform(&self) -> bool {
        self.0 == PLATFORM
    }

    /// An app's name, or [`AppName::platform`]: what a backup record is of.
    pub fn backup_subject(name: String) -> Result<Self, AppNameError> {
        if name == PLATFORM {
            Ok(Self::platform())
        } else {
            Self::try_new(name)
        }
    }
}

/// The name the platform's backup runs are kept under (reserved for apps).
pub const PLATFORM: &str = "minicloud";

/// Deserializes a backup record's subject: an app's name or the platform's.
pub fn deserialize_backup_subject<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<AppName, D::Error> {
    let name = String::deserialize(d)?;
    AppName::backup_subject(name).map_err(serde::de::Error::custom)
}

fn validate(name: &str) -> Result<(), AppNameError> {
    let owned = || name.to_owned();
    let first = name.chars().next().ok_or(AppNameError::Empty)?;
    // Characters first: a message about a bad character is more useful than one about length
    // when someone pastes "My App".
    if let Some(ch) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(AppNameError::BadChar { name: owned(), ch });
    }
    if name.len() > MAX_LEN {
        return Err(AppNameError::TooLong {
            name: owned(),
            len: name.len(),
        });
    }
    if !first.is_ascii_lowercase() {
        return Err(AppNameError::BadStart { name: owned() });
    }
    if name.ends_with('-') {
        return Err(AppNameError::TrailingHyphen { name: owned() });
    }
    if name.contains("--") {
        return Err(AppNameError::DoubleHyphen { name: owned() });
    }
    if RESERVED.contains(&name) {
        return Err(AppNameError::Reserved { name: owned() });
    }
    Ok(())
}

impl FromStr for AppName {
    type Err = AppNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::try_new(s)
    }
}

impl TryFrom<String> for AppName {
    type Error = AppNameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::try_new(s)
    }
}

impl TryFrom<&str> for AppName {
    type Error = AppNameError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::try_new(s)
    }
}

impl From<AppName> for String {
    fn from(n: AppName) -> String {
        n.0
    }
}

impl AsRef<str> for AppName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AppName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_names() {
        for ok in ["a", "myapp", "my-app", "app2", "a1-b2-c3", &"a".repeat(40)] {
            let n: AppName = ok.parse().unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(n.as_str(), ok);
            assert_eq!(n.to_string(), ok);
        }
    }

    #[test]
    fn rejects_invalid_names() {
        use AppNameError as E;
        type Check = fn(&AppNameError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("", |e| matches!(e, E::Empty)),
            (&"a".repeat(41), |e| matches!(e, E::TooLong { len: 41, .. })),
            ("1app", |e| matches!(e, E::BadStart { .. })),
            ("-app", |e| matches!(e, E::BadStart { .. })),
            ("app-", |e| matches!(e, E::TrailingHyphen { .. })),
            ("my--app", |e| matches!(e, E::DoubleHyphen { .. })),
            ("MyApp", |e| matches!(e, E::BadChar { ch: 'M', .. })),
            ("my_app", |e| matches!(e, E::BadChar { ch: '_', .. })),
            ("my app", |e| matches!(e, E::BadChar { ch: ' ', .. })),
            ("my.app", |e| matches!(e, E::BadChar { ch: '.', .. })),
            ("appé", |e| matches!(e, E::BadChar { ch: 'é', .. })),
            ("admin", |e| matches!(e, E::Reserved { .. })),
            ("api", |e| matches!(e, E::Reserved { .. })),
            ("www", |e| matches!(e, E::Reserved { .. })),
            ("minicloud", |e| matches!(e, E::Reserved { .. })),
        ];
        for (input, check) in cases {
            let err = AppName::try_new(*input).expect_err(input);
            assert!(check(&err), "{input:?} gave {err:?}");
        }
    }

    #[test]
    fn messages_name_the_input_and_the_rule() {
        let e = AppName::try_new("My App").unwrap_err().to_string();
        assert!(e.contains("'My App'") && e.contains("a-z"), "{e}");
        let e = AppName::try_new("admin").unwrap_err().to_string();
        assert!(e.contains("reserved") && e.contains("minicloud"), "{e}");
    }

    #[test]
    fn serde_validates_on_deserialize() {
        let n: AppName = serde_json::from_str("\"blog\"").unwrap();
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"blog\"");
        let err = serde_json::from_str::<AppName>("\"Blog\"").unwrap_err();
        assert!(err.to_string().contains("'Blog'"), "{err}");
    }

    #[test]
    fn try_from_string_and_as_ref() {
        let n = AppName::try_from(String::from("shop")).unwrap();
        let s: &str = n.as_ref();
        assert_eq!(s, "shop");
        assert_eq!(String::from(n), "shop");
    }
}
