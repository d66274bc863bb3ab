//! Frames the kernel dropped on a capture interface before the sensor could read them.
//!
//! Read from the interface's counters in sysfs (`/sys/class/net/<if>/statistics/`):
//! `rx_dropped` (the kernel discarded the frame: no buffer, full socket or backlog queues),
//! `rx_missed_errors` and `rx_fifo_errors` (the NIC ran out of ring space). They cover every
//! reader of the interface, not only this sensor's socket: a rise means traffic the sensor
//! may not have seen. Counted from the start of the capture (a baseline is taken first).

use std::path::{Path, PathBuf};

/// The counters summed as kernel drops.
pub const COUNTERS: [&str; 3] = ["rx_dropped", "rx_missed_errors", "rx_fifo_errors"];

/// Kernel drop counters of one interface, relative to when the capture started.
#[derive(Debug)]
pub struct InterfaceDrops {
    dir: PathBuf,
    /// Raw counter sum the current count starts from.
    baseline: u64,
    /// Drops counted before the counters last reset.
    carried: u64,
    /// Raw sum at the previous poll.
    raw: u64,
    last: u64,
}

impl InterfaceDrops {
    /// Counters of `interface` under `/sys/class/net`; `None` when the system has none
    /// (not Linux, or sysfs not mounted): drops are then unknown, not zero.
    pub fn open(interface: &str) -> Option<InterfaceDrops> {
        InterfaceDrops::open_in(Path::new("/sys/class/net"), interface)
    }

    /// As [`InterfaceDrops::open`], with another sysfs root (tests).
    pub fn open_in(root: &Path, interface: &str) -> Option<InterfaceDrops> {
        let dir = root.join(interface).join("statistics");
        let baseline = read_sum(&dir)?;
        Some(InterfaceDrops { dir, baseline, carried: 0, raw: baseline, last: 0 })
    }

    /// Drops since the capture started, and how many are new since the previous call.
    /// Keeps the previous figure when the counters cannot be read (interface gone).
    pub fn poll(&mut self) -> (u64, u64) {
        let Some(now) = read_sum(&self.dir) else { return (self.last, 0) };
        // Counters reset when a driver reloads: keep what was counted, go on from zero.
        if now < self.raw {
            self.carried = self.last;
            self.baseline = 0;
        }
        self.raw = now;
        let total = self.carried + (now - self.baseline);
        let new = total - self.last;
        self.last = total;
        (total, new)
    }
}

/// The sum of the counters, or `None` unless every one of them was read: a sum over some of
/// them would look like a counter reset.
fn read_sum(dir: &Path) -> Option<u64> {
    COUNTERS.iter().try_fold(0u64, |sum, name| {
        let v = std::fs::read_to_string(dir.join(name)).ok()?.trim().parse::<u64>().ok()?;
        Some(sum.saturating_add(v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, v: u64) {
        std::fs::write(dir.join(name), format!("{v}\n")).unwrap();
    }

    #[test]
    fn drops_count_from_the_start_of_the_capture_across_all_counters() {
        let root = tempfile::tempdir().unwrap();
        let stats = root.path().join("eth9").join("statistics");
        std::fs::create_dir_all(&stats).unwrap();
        write(&stats, "rx_dropped", 100);
        write(&stats, "rx_missed_errors", 5);
        write(&stats, "rx_fifo_errors", 0);
        let mut d = InterfaceDrops::open_in(root.path(), "eth9").unwrap();
        assert_eq!(d.poll(), (0, 0));
        write(&stats, "rx_dropped", 110);
        write(&stats, "rx_fifo_errors", 2);
        assert_eq!(d.poll(), (12, 12));
        assert_eq!(d.poll(), (12, 0));
        // A driver reload resets the counters: later drops still count.
        write(&stats, "rx_dropped", 1);
        write(&stats, "rx_missed_errors", 0);
        write(&stats, "rx_fifo_errors", 0);
        assert_eq!(d.poll(), (13, 1));
        write(&stats, "rx_dropped", 4);
        assert_eq!(d.poll(), (16, 3));
        // A counter that cannot be read (interface going away) keeps the figure: a partial
        // sum would look like a reset.
        std::fs::remove_file(stats.join("rx_dropped")).unwrap();
        assert_eq!(d.poll(), (16, 0));
        write(&stats, "rx_dropped", 6);
        assert_eq!(d.poll(), (18, 2));
    }

    #[test]
    fn an_interface_without_counters_has_unknown_drops() {
        let root = tempfile::tempdir().unwrap();
        assert!(InterfaceDrops::open_in(root.path(), "nope0").is_none());
    }
}
