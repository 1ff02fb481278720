//! Facts about the machine and the process: CPU model, cores, resident memory, CPU
//! time and the current date in UTC. The functions that read `/proc` return `None`
//! where it is missing (on systems other than Linux).

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// Returns the `model name` of the first processor in `/proc/cpuinfo`.
pub fn cpu_model() -> Option<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    parse_cpu_model(&cpuinfo)
}

/// Returns the value of the first `model name` line of a `/proc/cpuinfo` text.
pub fn parse_cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "model name").then(|| value.trim().to_owned())
    })
}

/// Returns the threads the process may run in parallel (`std::thread::available_parallelism`), 1
/// if unknown.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Returns the resident set size of this process in bytes: the second field of
/// `/proc/self/statm` (pages) times the page size from `/proc/self/auxv`.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let resident_pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(resident_pages * page_size()?)
}

/// Returns the machine's memory in bytes (`MemTotal` of `/proc/meminfo`), if readable.
pub fn memory_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|line| line.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Returns the page size in bytes, from the `AT_PAGESZ` entry of `/proc/self/auxv`.
pub fn page_size() -> Option<u64> {
    const AT_PAGESZ: u64 = 6;
    let auxv = std::fs::read("/proc/self/auxv").ok()?;
    parse_auxv(&auxv, AT_PAGESZ)
}

/// Returns the CPU time, user plus system, that all threads of this process have used,
/// in seconds: fields 14 and 15 of `/proc/self/stat`, in clock ticks of `AT_CLKTCK`
/// from `/proc/self/auxv` (usually 1/100 s, which is the resolution).
pub fn process_cpu_secs() -> Option<f64> {
    const AT_CLKTCK: u64 = 17;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let ticks = parse_stat_cpu_ticks(&stat)?;
    let ticks_per_second = parse_auxv(&std::fs::read("/proc/self/auxv").ok()?, AT_CLKTCK)?;
    Some(ticks as f64 / ticks_per_second as f64)
}

/// Returns utime + stime from a `/proc/<pid>/stat` line. The command name in
/// parentheses may contain spaces, so fields are counted after its closing
/// parenthesis, where field 3 (the state) comes first.
fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let (_, after_name) = stat.rsplit_once(')')?;
    let mut fields = after_name.split_whitespace().skip(14 - 3);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

/// Returns the 1-minute load average from `/proc/loadavg`.
pub fn load_average_1m() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

/// Returns the file system that contains `path`, such as `ext4 /dev/vda mounted at /`,
/// from `/proc/self/mounts`.
pub fn file_system_of(path: &Path) -> Option<String> {
    let path = path.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    parse_file_system_of(&mounts, &path)
}

/// Returns the mount of a `/proc/self/mounts` text whose mount point is the longest
/// prefix of `path`, as `<type> <device> mounted at <mount point>`. Of several mounts at
/// one point the last is the visible one.
fn parse_file_system_of(mounts: &str, path: &Path) -> Option<String> {
    let mut best: Option<(usize, String)> = None;
    for line in mounts.lines() {
        let mut fields = line.split_whitespace();
        let (Some(device), Some(mount_point), Some(kind)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        // The kernel writes a space in a mount point as the octal escape \040.
        let mount_point = mount_point.replace("\\040", " ");
        if !path.starts_with(&mount_point) {
            continue;
        }
        let depth = Path::new(&mount_point).components().count();
        if best.as_ref().is_none_or(|(best_depth, _)| depth >= *best_depth) {
            best = Some((depth, format!("{kind} {device} mounted at {mount_point}")));
        }
    }
    best.map(|(_, description)| description)
}

/// Returns the value of `key` in an auxiliary vector of native-endian (key, value)
/// pairs of machine words, as `/proc/self/auxv` holds on a 64-bit system.
fn parse_auxv(auxv: &[u8], key: u64) -> Option<u64> {
    const WORD: usize = size_of::<u64>();
    auxv.chunks_exact(2 * WORD).find_map(|pair| {
        let entry_key = u64::from_ne_bytes(pair[..WORD].try_into().expect("a word is 8 bytes"));
        let value = u64::from_ne_bytes(pair[WORD..].try_into().expect("a word is 8 bytes"));
        (entry_key == key).then_some(value)
    })
}

/// Returns the current UTC time as ISO 8601 with seconds, such as `2026-08-30T14:05:09Z`.
pub fn utc_now_iso8601() -> String {
    let seconds = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs());
    format_utc_iso8601(seconds)
}

/// Formats seconds since the Unix epoch as an ISO 8601 UTC time.
pub fn format_utc_iso8601(unix_seconds: u64) -> String {
    let days = (unix_seconds / 86_400) as i64;
    let second_of_day = unix_seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        second_of_day / 3_600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month, day). The
/// days are shifted to eras of 400 years starting on 0000-03-01, so that each year
/// starts in March and its leap day, if any, is its last day.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_around_leap_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    #[test]
    fn iso8601_formats_utc() {
        assert_eq!(format_utc_iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc_iso8601(951_782_400 + 3_723), "2000-02-29T01:02:03Z");
        assert_eq!(format_utc_iso8601(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn cpu_model_from_cpuinfo_text() {
        let text = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Example CPU @ 2.00GHz\n";
        assert_eq!(parse_cpu_model(text).as_deref(), Some("Example CPU @ 2.00GHz"));
        assert_eq!(parse_cpu_model("processor : 0\n"), None);
    }

    #[test]
    fn auxv_lookup_finds_key() {
        let mut auxv = Vec::new();
        for (key, value) in [(3u64, 99u64), (6, 4_096), (0, 0)] {
            auxv.extend_from_slice(&key.to_ne_bytes());
            auxv.extend_from_slice(&value.to_ne_bytes());
        }
        assert_eq!(parse_auxv(&auxv, 6), Some(4_096));
        assert_eq!(parse_auxv(&auxv, 7), None);
    }

    #[test]
    fn stat_cpu_ticks_skip_command_name() {
        let stat = "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 31 0 0 20 0 3 0 7 0 0";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(281));
        assert_eq!(parse_stat_cpu_ticks("42 (x) S 1"), None);
    }

    #[test]
    fn file_system_of_longest_mount_point() {
        let mounts = concat!(
            "/dev/vda / ext4 rw,relatime 0 0\n",
            "tmpfs /tmp tmpfs rw 0 0\n",
            "/dev/vdb /tmp/my\\040disk xfs rw 0 0\n",
            "proc /proc proc rw 0 0\n",
        );
        let of = |path: &str| parse_file_system_of(mounts, Path::new(path));
        assert_eq!(of("/tmp/log").as_deref(), Some("tmpfs tmpfs mounted at /tmp"));
        assert_eq!(of("/tmpfile").as_deref(), Some("ext4 /dev/vda mounted at /"));
        assert_eq!(of("/tmp/my disk/log").as_deref(), Some("xfs /dev/vdb mounted at /tmp/my disk"));
        assert_eq!(of("/work").as_deref(), Some("ext4 /dev/vda mounted at /"));
        assert_eq!(parse_file_system_of("", Path::new("/")), None);
    }

    #[test]
    fn resident_bytes_reads_proc() {
        if cfg!(target_os = "linux") {
            assert!(resident_bytes().is_some_and(|bytes| bytes > 0));
            assert!(process_cpu_secs().is_some_and(|secs| secs >= 0.0));
            assert!(load_average_1m().is_some());
        }
    }
}
