//! An app's backup policy: when its scheduled backup runs and how many runs retention keeps.
//! Parsed and checked here, once: the store keeps only policies that passed [`BackupPolicy::validate`],
//! and `backups::plan` turns one into a schedule slot and a retention.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The most runs a policy may keep per kind: far beyond what a small box holds, low enough
/// that a typo (`70000`) is refused rather than filling the disk.
pub const MAX_KEEP: u32 = 1000;

/// When an app's scheduled backup runs (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Schedule {
    /// No scheduled backup and no weekly verification (manual runs, runs before a deploy and
    /// retention after manual runs still happen).
    Off,
    /// Daily at a minute spread by the app's name, so fifty apps do not dump at once.
    #[default]
    Daily,
    /// Daily at this minute of the day (0..1440).
    At(u16),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error(
        "'{0}' is no backup schedule: use off, daily (at a minute minicloud picks for the app) or a time of day in UTC as HH:MM, such as 03:30"
    )]
    Schedule(String),
    #[error("{field} must be a whole number from 0 to {MAX_KEEP}; got {value}")]
    OutOfRange { field: &'static str, value: i64 },
    #[error("keep_last must be at least 1, so the newest good backup is never deleted; got {0}")]
    NoneKept(i64),
}

impl FromStr for Schedule {
    type Err = PolicyError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let s = raw.trim();
        match s.to_ascii_lowercase().as_str() {
            "off" => return Ok(Self::Off),
            "daily" => return Ok(Self::Daily),
            _ => {}
        }
        let bad = || PolicyError::Schedule(raw.to_owned());
        let (h, m) = s.split_once(':').ok_or_else(bad)?;
        let digits = |t: &str, max_len| {
            !t.is_empty() && t.len() <= max_len && t.bytes().all(|b| b.is_ascii_digit())
        };
        if !digits(h, 2) || !digits(m, 2) || m.len() != 2 {
            return Err(bad());
        }
        let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if h > 23 || m > 59 {
            return Err(bad());
        }
        Ok(Self::At(h * 60 + m))
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Off => f.write_str("off"),
            Self::Daily => f.write_str("daily"),
            Self::At(minute) => write!(f, "{:02}:{:02}", minute / 60, minute % 60),
        }
    }
}

impl TryFrom<String> for Schedule {
    type Error = PolicyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Schedule> for String {
    fn from(s: Schedule) -> Self {
        s.to_string()
    }
}

/// An app's schedule and retention (keep the newest `keep_last` good runs, and the newest of
/// each of the last `keep_daily` days, `keep_weekly` weeks and `keep_monthly` months).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupPolicy {
    pub schedule: Schedule,
    pub keep_last: u32,
    pub keep_daily: u32,
    pub keep_weekly: u32,
    pub keep_monthly: u32,
}

impl Default for BackupPolicy {
    fn default() -> Self {
        Self {
            schedule: Schedule::Daily,
            keep_last: 7,
            keep_daily: 7,
            keep_weekly: 4,
            keep_monthly: 6,
        }
    }
}

/// A change to a policy: what is given replaces, what is absent stays. Counts are signed so
/// that `-1` gets a sentence, not a parser's complaint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyChange {
    #[serde(default)]
    pub schedule: Option<String>,
    #[serde(default)]
    pub keep_last: Option<i64>,
    #[serde(default)]
    pub keep_daily: Option<i64>,
    #[serde(default)]
    pub keep_weekly: Option<i64>,
    #[serde(default)]
    pub keep_monthly: Option<i64>,
}

impl PolicyChange {
    /// `policy` with this change, checked whole; the first problem found is the error.
    pub fn apply_to(&self, policy: BackupPolicy) -> Result<BackupPolicy, PolicyError> {
        let count = |field: &'static str, given: Option<i64>, old: u32| match given {
            None => Ok(old),
            Some(v) => u32::try_from(v)
                .ok()
                .filter(|n| *n <= MAX_KEEP)
                .ok_or(PolicyError::OutOfRange { field, value: v }),
        };
        if let Some(v) = self.keep_last.filter(|v| *v == 0) {
            return Err(PolicyError::NoneKept(v));
        }
        let next = BackupPolicy {
            schedule: match &self.schedule {
                Some(s) => s.parse()?,
                None => policy.schedule,
            },
            keep_last: count("keep_last", self.keep_last, policy.keep_last)?,
            keep_daily: count("keep_daily", self.keep_daily, policy.keep_daily)?,
            keep_weekly: count("keep_weekly", self.keep_weekly, policy.keep_weekly)?,
            keep_monthly: count("keep_monthly", self.keep_monthly, policy.keep_monthly)?,
        };
        next.validate()?;
        Ok(next)
    }

    /// Nothing to change.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl BackupPolicy {
    /// Each count within 0..=[`MAX_KEEP`], and at least one run kept.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let counts = [
            ("keep_last", self.keep_last),
            ("keep_daily", self.keep_daily),
            ("keep_weekly", self.keep_weekly),
            ("keep_monthly", self.keep_monthly),
        ];
        for (field, value) in counts {
            if value > MAX_KEEP {
                return Err(PolicyError::OutOfRange {
                    field,
                    value: i64::from(value),
                });
            }
        }
        if self.keep_last == 0 {
            return Err(PolicyError::NoneKept(0));
        }
        if let Schedule::At(minute) = self.schedule {
            if minute >= 1440 {
                return Err(PolicyError::Schedule(self.schedule.to_string()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_parse_and_print_back() {
        assert_eq!("off".parse::<Schedule>(), Ok(Schedule::Off));
        assert_eq!(" Daily ".parse::<Schedule>(), Ok(Schedule::Daily));
        assert_eq!("03:30".parse::<Schedule>(), Ok(Schedule::At(210)));
        assert_eq!("3:05".parse::<Schedule>(), Ok(Schedule::At(185)));
        assert_eq!("00:00".parse::<Schedule>(), Ok(Schedule::At(0)));
        assert_eq!("23:59".parse::<Schedule>(), Ok(Schedule::At(1439)));
        assert_eq!(Schedule::At(185).to_string(), "03:05");
        for s in [Schedule::Off, Schedule::Daily, Schedule::At(1439)] {
            assert_eq!(s.to_string().parse::<Schedule>(), Ok(s));
        }
        for bad in [
            "",
            "24:00",
            "12:60",
            "12:5",
            "123:00",
            "-1:00",
            "12:00:00",
            "noon",
            "12h30",
            "+1:00",
            "１２:00",
        ] {
            let err = bad.parse::<Schedule>().unwrap_err();
            assert!(err.to_string().contains("HH:MM"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_change_keeps_what_it_does_not_name_and_refuses_bad_counts() {
        let old = BackupPolicy::default();
        let change = PolicyChange {
            keep_weekly: Some(0),
            schedule: Some("04:15".into()),
            ..PolicyChange::default()
        };
        let new = change.apply_to(old).unwrap();
        assert_eq!(
            new,
            BackupPolicy {
                schedule: Schedule::At(255),
                keep_weekly: 0,
                ..old
            }
        );
        assert!(PolicyChange::default().is_empty());
        assert_eq!(PolicyChange::default().apply_to(new), Ok(new));

        let refused = |change: PolicyChange| change.apply_to(old).unwrap_err().to_string();
        let e = refused(PolicyChange {
            keep_last: Some(0),
            ..Default::default()
        });
        assert!(e.contains("at least 1"), "{e}");
        let e = refused(PolicyChange {
            keep_daily: Some(-1),
            ..Default::default()
        });
        assert!(e.contains("keep_daily") && e.contains("-1"), "{e}");
        let e = refused(PolicyChange {
            keep_monthly: Some(1001),
            ..Default::default()
        });
        assert!(e.contains("keep_monthly") && e.contains("1000"), "{e}");
        assert!(PolicyChange {
            keep_monthly: Some(1000),
            keep_last: Some(1),
            ..Default::default()
        }
        .apply_to(old)
        .is_ok());
    }

    #[test]
    fn a_policy_reads_back_from_its_json() {
        let p = BackupPolicy {
            schedule: Schedule::At(90),
            ..BackupPolicy::default()
        };
        let json = serde_json::to_value(p).unwrap();
        assert_eq!(json["schedule"], "01:30");
        assert_eq!(serde_json::from_value::<BackupPolicy>(json).unwrap(), p);
        let bad = serde_json::json!({"schedule": "25:00", "keep_last": 1, "keep_daily": 0,
            "keep_weekly": 0, "keep_monthly": 0});
        assert!(serde_json::from_value::<BackupPolicy>(bad).is_err());
    }
}
