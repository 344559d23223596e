//! The box itself: memory, the data dir's disk and the load, as the dashboard and
//! `/metrics` show them. Read from `/proc` and `statvfs`; a figure that cannot be read is
//! left out, never made up.

use std::path::Path;

use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Machine {
    pub memory_total_bytes: Option<u64>,
    /// What new work can still get without swapping (the kernel's `MemAvailable`).
    pub memory_available_bytes: Option<u64>,
    pub disk_total_bytes: Option<u64>,
    pub disk_free_bytes: Option<u64>,
    /// Load averages over 1, 5 and 15 minutes.
    pub load: Option<[f64; 3]>,
    pub cpus: usize,
}

/// Reads the box's figures now, with `data_dir`'s disk.
pub fn read(data_dir: &Path) -> Machine {
    let (memory_total_bytes, memory_available_bytes) = std::fs::read_to_string("/proc/meminfo")
        .map(|text| parse_meminfo(&text))
        .unwrap_or_default();
    let disk = nix::sys::statvfs::statvfs(data_dir).ok();
    // statvfs' field types differ between platforms; on Linux both are u64 already.
    #[allow(clippy::unnecessary_cast)]
    let block = disk.as_ref().map(|d| d.fragment_size() as u64);
    #[allow(clippy::unnecessary_cast)]
    let (disk_total_bytes, disk_free_bytes) = match (&disk, block) {
        (Some(d), Some(block)) => (
            Some((d.blocks() as u64).saturating_mul(block)),
            Some((d.blocks_available() as u64).saturating_mul(block)),
        ),
        _ => (None, None),
    };
    Machine {
        memory_total_bytes,
        memory_available_bytes,
        disk_total_bytes,
        disk_free_bytes,
        load: std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|text| parse_loadavg(&text)),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

/// `MemTotal` and `MemAvailable` of `/proc/meminfo`, in bytes.
fn parse_meminfo(text: &str) -> (Option<u64>, Option<u64>) {
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|rest| rest.trim().strip_suffix("kB"))
            .and_then(|kb| kb.trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    (field("MemTotal"), field("MemAvailable"))
}

/// The three load averages of `/proc/loadavg`.
fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut fields = text.split_whitespace().map(str::parse::<f64>);
    Some([
        fields.next()?.ok()?,
        fields.next()?.ok()?,
        fields.next()?.ok()?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_gives_total_and_available_in_bytes() {
        let text = "MemTotal:        2000 kB\nMemFree:  10 kB\nMemAvailable:    1500 kB\n";
        assert_eq!(parse_meminfo(text), (Some(2_048_000), Some(1_536_000)));
        assert_eq!(parse_meminfo("nonsense"), (None, None));
    }

    #[test]
    fn loadavg_gives_three_averages() {
        assert_eq!(
            parse_loadavg("0.52 0.58 0.59 1/467 12345\n"),
            Some([0.52, 0.58, 0.59])
        );
        assert_eq!(parse_loadavg("0.52"), None);
    }

    #[test]
    fn this_box_has_memory_and_a_disk() {
        let m = read(Path::new("/"));
        assert!(m.memory_total_bytes.is_some_and(|t| t > 0));
        assert!(m.disk_total_bytes.is_some_and(|t| t > 0));
        assert!(m.cpus >= 1);
    }
}
