//! The machine a comparison ran on and the versions of what it ran, so
//! numbers are never read without their context.

use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

/// The machine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub memory_total_bytes: u64,
    /// The file system the systems' data lived on (fsync costs depend on it).
    pub data_file_system: String,
    /// `/proc/loadavg`'s 1, 5 and 15 minute averages before the run and
    /// after it: anything else keeping the machine busy shows here.
    pub load_average_before: String,
    pub load_average_after: String,
}

/// Returns the 1, 5 and 15 minute load averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".to_owned(),
        |text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        },
    )
}

/// The versions of the systems compared.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Versions {
    pub polis: String,
    /// `git describe`-like: the commit the polis binary was run from, `+dirty` if changed.
    pub polis_commit: String,
    /// `release` or `debug`.
    pub polis_build: String,
    pub redis: String,
    pub etcd: String,
}

fn first_line_of(program: &Path, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.lines().next().map(|line| line.trim().to_owned()))
        .filter(|line| !line.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Returns the mount whose point is the longest prefix of `path`, as
/// "device (type) on point", from `/proc/mounts`.
pub fn file_system_of(mounts: &str, path: &Path) -> Option<String> {
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let device = fields.next()?;
            let point = fields.next()?;
            let kind = fields.next()?;
            path.starts_with(point)
                .then(|| (point.len(), format!("{device} ({kind}) on {point}")))
        })
        .max_by_key(|(length, _)| *length)
        .map(|(_, description)| description)
}

impl Machine {
    /// Describes this machine; `data_dir` is where the systems keep data.
    pub fn describe(data_dir: &Path) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|line| {
                let (key, value) = line.split_once(':')?;
                (key.trim() == "model name").then(|| value.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_total_bytes = meminfo
            .lines()
            .find(|line| line.starts_with("MemTotal:"))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|kib| kib.parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024);
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let absolute = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
        Self {
            cpus: std::thread::available_parallelism().map_or(0, usize::from),
            cpu_model,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_or_else(|_| "unknown".to_owned(), |text| text.trim().to_owned()),
            memory_total_bytes,
            data_file_system: file_system_of(&mounts, &absolute)
                .unwrap_or_else(|| "unknown".to_owned()),
            load_average_before: load_average(),
            load_average_after: String::new(),
        }
    }
}

impl Versions {
    /// Asks each binary for its version; the commit is that of the git
    /// repository the running binary lies in.
    pub fn describe(redis_server: &Path, etcd: &Path) -> Self {
        // The repository the running binary was built in (target/*/polis
        // lies inside it), else the working directory's.
        let repo = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| ".".into());
        let repo = repo.display().to_string();
        let git = Path::new("git");
        let commit = first_line_of(git, &["-C", &repo, "rev-parse", "--short=12", "HEAD"]);
        let dirty = Command::new(git)
            .args(["-C", &repo, "status", "--porcelain", "--untracked-files=no"])
            .output()
            .is_ok_and(|output| output.status.success() && !output.stdout.is_empty());
        Self {
            polis: env!("CARGO_PKG_VERSION").to_owned(),
            polis_commit: if dirty {
                format!("{commit}+dirty")
            } else {
                commit
            },
            polis_build: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            }
            .to_owned(),
            redis: first_line_of(redis_server, &["--version"]),
            etcd: first_line_of(etcd, &["--version"]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_mount_point_wins() {
        let mounts = "/dev/vda / ext4 rw 0 0\ntmpfs /tmp tmpfs rw 0 0\nproc /proc proc rw 0 0\n";
        assert_eq!(
            file_system_of(mounts, Path::new("/tmp/bench/1-polis")).as_deref(),
            Some("tmpfs (tmpfs) on /tmp")
        );
        assert_eq!(
            file_system_of(mounts, Path::new("/work/bench")).as_deref(),
            Some("/dev/vda (ext4) on /")
        );
        // A prefix by characters is not a prefix by path.
        assert_eq!(
            file_system_of(mounts, Path::new("/tmpx")).as_deref(),
            Some("/dev/vda (ext4) on /")
        );
    }
}
