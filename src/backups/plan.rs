//! Pure planning: when an app's daily backup is due (by its policy's schedule), and which good
//! runs retention keeps. No clock, no I/O: the caller passes `now` and the runs.

use crate::model::{BackupPolicy, Schedule};

/// How many good runs to keep: the newest `last`, and the newest of each of the last `daily`
/// days, `weekly` weeks and `monthly` months that have one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Retention {
    pub last: usize,
    pub daily: usize,
    pub weekly: usize,
    pub monthly: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            last: 7,
            daily: 7,
            weekly: 4,
            monthly: 6,
        }
    }
}

impl From<&BackupPolicy> for Retention {
    fn from(p: &BackupPolicy) -> Self {
        Self {
            last: p.keep_last as usize,
            daily: p.keep_daily as usize,
            weekly: p.keep_weekly as usize,
            monthly: p.keep_monthly as usize,
        }
    }
}

/// A run as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub id: String,
    /// Unix seconds.
    pub at: i64,
    /// Only good runs count; failed ones are never kept for a slot, nor deleted here.
    pub good: bool,
    /// Its local copy is whole but S3 did not confirm it: it never takes a slot of good
    /// runs, and goes once a good run is newer (see [`plan_retention`]).
    pub partial: bool,
}

const DAY: i64 = 86_400;

/// Which calendar slot (day, week, month) a time falls in.
type Bucket = fn(i64) -> i64;

/// The ids of the runs retention drops. Failed runs are not its business (their snapshots
/// are forgotten when they fail); the newest good run is always kept. Partial runs count for
/// nothing: a partial run newer than the newest good run is kept (it is the newest data,
/// only here), at most `last` of them; older ones are superseded and dropped, so an S3
/// destination down for weeks does not fill the local disk.
pub fn plan_retention(runs: &[Run], policy: Retention) -> Vec<String> {
    let mut dropped = plan_good(runs, policy);
    let newest_good = runs.iter().filter(|r| r.good).map(|r| r.at).max();
    let mut partial: Vec<&Run> = runs.iter().filter(|r| r.partial && !r.good).collect();
    partial.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| b.id.cmp(&a.id)));
    for (i, run) in partial.into_iter().enumerate() {
        let superseded = newest_good.is_some_and(|good| good >= run.at);
        if superseded || i >= policy.last.max(1) {
            dropped.push(run.id.clone());
        }
    }
    dropped
}

/// The good runs `policy` drops.
fn plan_good(runs: &[Run], policy: Retention) -> Vec<String> {
    let mut good: Vec<&Run> = runs.iter().filter(|r| r.good).collect();
    good.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| b.id.cmp(&a.id)));
    let mut keep = vec![false; good.len()];
    for k in keep.iter_mut().take(policy.last.max(1)) {
        *k = true;
    }
    let buckets: [(usize, Bucket); 3] = [
        (policy.daily, |at| at.div_euclid(DAY)),
        // Weeks from Monday: 1970-01-01 was a Thursday.
        (policy.weekly, |at| (at.div_euclid(DAY) + 3).div_euclid(7)),
        (policy.monthly, |at| {
            let (y, m) = year_month(at.div_euclid(DAY));
            y * 12 + m
        }),
    ];
    for (count, bucket) in buckets {
        let mut seen: Vec<i64> = Vec::new();
        for (i, run) in good.iter().enumerate() {
            if seen.len() >= count {
                break;
            }
            let b = bucket(run.at);
            if !seen.contains(&b) {
                seen.push(b);
                keep[i] = true;
            }
        }
    }
    good.iter()
        .zip(keep)
        .filter(|(_, k)| !k)
        .map(|(r, _)| r.id.clone())
        .collect()
}

/// A snapshot in the S3 repository as retention sees it: its id, and the run its `run:` tag
/// names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    pub snapshot: String,
    pub run: Option<String>,
}

/// The S3 snapshots to forget: those of a run not in `kept` (the succeeded runs retention
/// kept, and runs still running). So S3 holds the good runs the local repository keeps, and
/// neither a dropped run, nor what a partial run's failed copy left, nor a run whose record
/// is gone. A snapshot without a run tag is not minicloud's: it stays.
pub fn plan_offsite_forget(kept: &[&str], there: &[Copied]) -> Vec<String> {
    there
        .iter()
        .filter(|c| c.run.as_deref().is_some_and(|run| !kept.contains(&run)))
        .map(|c| c.snapshot.clone())
        .collect()
}

/// Year and month (1–12) of a day counted from 1970-01-01 (Howard Hinnant's civil_from_days).
fn year_month(days: i64) -> (i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m)
}

/// The minute of the day (UTC) of an app's daily backup: spread by its name, so fifty apps
/// do not all dump at midnight, and stable across restarts.
pub fn daily_minute(app: &str) -> i64 {
    // FNV-1a: stable across Rust versions, unlike the std hasher.
    let hash = app.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % 1440) as i64
}

/// The latest daily slot at `minute` at or before `now`.
pub fn latest_slot(now: i64, minute: i64) -> i64 {
    let today = now - now.rem_euclid(DAY) + minute * 60;
    if today > now {
        today - DAY
    } else {
        today
    }
}

/// Whether the daily backup at `minute` is due at `now`, given when the last scheduled one
/// started: the latest slot at or before `now` has no run yet.
pub fn is_due(now: i64, minute: i64, last_scheduled: Option<i64>) -> bool {
    last_scheduled.is_none_or(|last| last < latest_slot(now, minute))
}

/// The minute of the day (UTC) of `app`'s scheduled backup under `schedule`; `None`: off.
pub fn scheduled_minute(schedule: Schedule, app: &str) -> Option<i64> {
    match schedule {
        Schedule::Off => None,
        Schedule::Daily => Some(daily_minute(app)),
        Schedule::At(minute) => Some(i64::from(minute)),
    }
}

/// What one look of the scheduler does for one app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    /// Nothing now: the schedule is off, or the latest slot has its run.
    Wait,
    /// Back up now, for `slot`; `missed`: the slot is long past (minicloud was down then),
    /// record it as missed first.
    Run { slot: i64, missed: bool },
}

/// The scheduler's choice for an app at `now`. `since` is the latest of: its last
/// scheduled run's start, when the app was made, and when its policy last changed; a slot
/// at or before it needs no run (so a new time, or a schedule turned back on, starts at the
/// first slot after the change and is never recorded as missed).
pub fn plan_tick(now: i64, schedule: Schedule, app: &str, since: i64) -> Tick {
    let Some(minute) = scheduled_minute(schedule, app) else {
        return Tick::Wait;
    };
    if !is_due(now, minute, Some(since)) {
        return Tick::Wait;
    }
    let slot = latest_slot(now, minute);
    Tick::Run {
        slot,
        missed: is_missed(now, slot),
    }
}

/// When the scheduler next backs the app up, given what [`plan_tick`] is given: a time at
/// or before `now` means at its next look (within a minute); `None`: the schedule is off.
pub fn next_scheduled(now: i64, schedule: Schedule, app: &str, since: i64) -> Option<i64> {
    let minute = scheduled_minute(schedule, app)?;
    let slot = latest_slot(now, minute);
    Some(if slot > since { slot } else { slot + DAY })
}

/// How late a due run may start and still be on time. The scheduler looks every minute, so
/// a run later than this means minicloud was not running at its slot: the slot is recorded
/// as missed, and a run catches up.
pub const ON_TIME: i64 = 10 * 60;

/// Whether a run due for `slot` that starts at `now` missed its time.
pub fn is_missed(now: i64, slot: i64) -> bool {
    now - slot > ON_TIME
}

/// How often the newest dump of each app is checked in a scratch database.
pub const VERIFY_EVERY: i64 = 7 * DAY;

/// Whether a dump last verified at `last` (never: `None`) is due again at `now`.
pub fn verification_due(now: i64, last: Option<i64>) -> bool {
    last.is_none_or(|at| now - at >= VERIFY_EVERY)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: &str, at: i64, good: bool) -> Run {
        Run {
            id: id.into(),
            at,
            good,
            partial: false,
        }
    }

    fn partial(id: &str, at: i64) -> Run {
        Run {
            partial: true,
            ..run(id, at, false)
        }
    }

    #[test]
    fn s3_keeps_exactly_the_kept_good_runs_and_what_is_running() {
        let copied = |snapshot: &str, run: Option<&str>| Copied {
            snapshot: snapshot.into(),
            run: run.map(Into::into),
        };
        let there = [
            copied("s-kept", Some("good")),
            copied("s-running", Some("now")),
            copied("s-partial-leftover", Some("partial")),
            copied("s-dropped", Some("old")),
            copied("s-not-ours", None),
        ];
        assert_eq!(
            plan_offsite_forget(&["good", "now"], &there),
            ["s-partial-leftover", "s-dropped"]
        );
    }

    #[test]
    fn partial_runs_take_no_slot_and_go_once_a_good_run_is_newer() {
        let policy = Retention {
            last: 2,
            daily: 0,
            weekly: 0,
            monthly: 0,
        };
        // Two good runs and partial ones around them: the partial runs do not push the good
        // ones out of the last two; the one before the newest good run is superseded.
        let runs = vec![
            run("good-1", 0, true),
            partial("p-1", DAY),
            run("good-2", 2 * DAY, true),
            partial("p-2", 3 * DAY),
            partial("p-3", 4 * DAY),
            partial("p-4", 5 * DAY),
        ];
        let mut dropped = plan_retention(&runs, policy);
        dropped.sort();
        // Kept: good-1, good-2 (the last two good), p-4 and p-3 (the newest two partial).
        assert_eq!(dropped, ["p-1", "p-2"]);
        // Only partial runs: the newest `last` of them stay.
        let runs = vec![partial("a", 0), partial("b", DAY)];
        assert!(plan_retention(&runs, policy).is_empty());
    }

    #[test]
    fn keep_last_and_daily_keep_one_per_day() {
        // Two runs a day for ten days, newest day 9.
        let runs: Vec<Run> = (0..10)
            .flat_map(|d| {
                [
                    run(&format!("d{d}-am"), d * DAY + 3600, true),
                    run(&format!("d{d}-pm"), d * DAY + 50_000, true),
                ]
            })
            .collect();
        let policy = Retention {
            last: 3,
            daily: 5,
            weekly: 0,
            monthly: 0,
        };
        let mut dropped = plan_retention(&runs, policy);
        dropped.sort();
        // Kept: the last three (d9-pm, d9-am, d8-pm) and the newest of days 9..5.
        let kept: Vec<_> = runs
            .iter()
            .map(|r| r.id.clone())
            .filter(|id| !dropped.contains(id))
            .collect();
        assert_eq!(kept, ["d5-pm", "d6-pm", "d7-pm", "d8-pm", "d9-am", "d9-pm"]);
    }

    #[test]
    fn failed_runs_never_count_and_the_newest_good_run_stays() {
        let runs = vec![
            run("good-old", 0, true),
            run("failed-1", DAY, false),
            run("failed-2", 2 * DAY, false),
        ];
        let nothing = Retention {
            last: 0,
            daily: 0,
            weekly: 0,
            monthly: 0,
        };
        assert!(plan_retention(&runs, nothing).is_empty());
        // Failed runs take no daily slot: the good run of day 0 keeps its own.
        let runs = vec![run("a", 0, true), run("b", 10, true), run("f", DAY, false)];
        let one_day = Retention {
            last: 1,
            daily: 1,
            ..nothing
        };
        assert_eq!(plan_retention(&runs, one_day), ["a"]);
    }

    #[test]
    fn weekly_and_monthly_buckets_follow_the_calendar() {
        assert_eq!(year_month(0), (1970, 1));
        assert_eq!(year_month(31), (1970, 2));
        assert_eq!(year_month(20_454), (2026, 1)); // 2026-01-01
                                                   // A run every day for 120 days, keep 4 weekly and 3 monthly only.
        let runs: Vec<Run> = (0..120)
            .map(|d| run(&format!("{d:03}"), d * DAY, true))
            .collect();
        let policy = Retention {
            last: 1,
            daily: 0,
            weekly: 4,
            monthly: 3,
        };
        let dropped = plan_retention(&runs, policy);
        let mut kept: Vec<_> = runs
            .iter()
            .map(|r| r.id.as_str())
            .filter(|id| !dropped.iter().any(|d| d == id))
            .collect();
        kept.sort();
        // Day 119 is 1970-04-30 (a Thursday): weekly keeps 119 and the Sundays 115, 108,
        // 101; monthly keeps 119 (April), 89 (March 31), 58 (February 28).
        assert_eq!(kept, ["058", "089", "101", "108", "115", "119"]);
    }

    #[test]
    fn the_daily_slot_is_spread_stable_and_due_once_a_day() {
        assert_eq!(daily_minute("shop"), daily_minute("shop"));
        assert!((0..1440).contains(&daily_minute("shop")));
        let spread: std::collections::BTreeSet<_> =
            (0..50).map(|i| daily_minute(&format!("app{i}"))).collect();
        assert!(spread.len() > 40, "{spread:?}");
        let minute = 90; // 01:30
        let day = 10 * DAY;
        assert!(!is_due(day + 60 * 60, minute, Some(day - DAY + 5400)));
        assert!(is_due(day + 91 * 60, minute, Some(day - DAY + 5400)));
        assert!(!is_due(day + 91 * 60, minute, Some(day + 5400)));
        assert!(is_due(day, minute, None));
    }

    #[test]
    fn the_tick_follows_the_policy_schedule() {
        let day = 10 * DAY;
        let spread = daily_minute("shop");
        // Off: never, however long since the last run.
        assert_eq!(plan_tick(day, Schedule::Off, "shop", 0), Tick::Wait);
        assert_eq!(next_scheduled(day, Schedule::Off, "shop", 0), None);
        // Daily: the spread minute, as before policies.
        let slot = day + spread * 60;
        assert_eq!(
            plan_tick(slot + 30, Schedule::Daily, "shop", slot - DAY),
            Tick::Run {
                slot,
                missed: false
            }
        );
        assert_eq!(
            plan_tick(slot + 30, Schedule::Daily, "shop", slot),
            Tick::Wait
        );
        // An explicit time: that minute, whatever the name.
        let at = Schedule::At(3 * 60 + 30);
        let slot = day + 210 * 60;
        assert_eq!(plan_tick(slot - 60, at, "shop", slot - DAY), Tick::Wait);
        assert_eq!(
            plan_tick(slot, at, "shop", slot - DAY),
            Tick::Run {
                slot,
                missed: false
            }
        );
        assert_eq!(
            next_scheduled(slot - 60, at, "shop", slot - DAY),
            Some(slot)
        );
        assert_eq!(
            next_scheduled(slot + 60, at, "shop", slot),
            Some(slot + DAY)
        );
        // Down for hours over the slot: a run that catches up, the slot recorded as missed.
        assert_eq!(
            plan_tick(slot + 5 * 3600, at, "shop", slot - DAY),
            Tick::Run { slot, missed: true }
        );
        // The time changed to 03:30 at 05:00, after that day's run at another minute: the
        // passed 03:30 slot is neither run nor missed; the next is tomorrow's.
        let changed = slot + 90 * 60;
        assert_eq!(plan_tick(changed + 60, at, "shop", changed), Tick::Wait);
        assert_eq!(
            next_scheduled(changed, at, "shop", changed),
            Some(slot + DAY)
        );
        assert_eq!(
            plan_tick(slot + DAY, at, "shop", changed),
            Tick::Run {
                slot: slot + DAY,
                missed: false
            }
        );
    }

    #[test]
    fn retention_comes_from_the_policy() {
        let policy = BackupPolicy {
            keep_last: 1,
            keep_daily: 0,
            keep_weekly: 2,
            keep_monthly: 3,
            ..BackupPolicy::default()
        };
        assert_eq!(
            Retention::from(&policy),
            Retention {
                last: 1,
                daily: 0,
                weekly: 2,
                monthly: 3
            }
        );
        assert_eq!(
            Retention::from(&BackupPolicy::default()),
            Retention::default()
        );
        // keep_last 1 and nothing else: of two good runs, the older goes.
        let runs = vec![run("old", 0, true), run("new", 10, true)];
        let policy = BackupPolicy {
            keep_daily: 0,
            keep_weekly: 0,
            keep_monthly: 0,
            ..policy
        };
        assert_eq!(plan_retention(&runs, Retention::from(&policy)), ["old"]);
    }

    #[test]
    fn dumps_are_verified_weekly() {
        assert!(verification_due(DAY, None));
        assert!(!verification_due(8 * DAY - 1, Some(DAY)));
        assert!(verification_due(8 * DAY, Some(DAY)));
    }

    #[test]
    fn a_run_long_after_its_slot_missed_it() {
        let minute = 90;
        let day = 10 * DAY;
        let slot = day + 90 * 60;
        assert_eq!(latest_slot(slot + 5, minute), slot);
        assert_eq!(latest_slot(slot - 5, minute), slot - DAY);
        // The scheduler's minute tick is on time; a start hours later (down at 01:30) is not.
        assert!(!is_missed(slot + 60, slot));
        assert!(!is_missed(slot + ON_TIME, slot));
        assert!(is_missed(slot + ON_TIME + 1, slot));
        assert!(is_missed(slot + 6 * 3600, slot));
    }
}
