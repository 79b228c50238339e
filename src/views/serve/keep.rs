//! History: each collection's snapshot written into a directory (`--keep-snapshots DIR`),
//! named by the time it was taken, so `diff` across days works on files. The directory is
//! private, each file is written atomically and private, and only the newest `--keep` of
//! fleetscope's own files stay: nothing else in the directory is touched.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, Utc};

/// `fleetscope-20261101T120000.000Z.json`: names sort as times do.
const PREFIX: &str = "fleetscope-";
const SUFFIX: &str = ".json";
const TIME: &str = "%Y%m%dT%H%M%S%.3fZ";

#[derive(Debug, Clone)]
pub struct Keep {
    dir: PathBuf,
    count: usize,
}

impl Keep {
    /// Makes the directory (0700) when it is missing.
    pub fn new(dir: &Path, count: usize) -> Result<Keep, String> {
        crate::files::create_private_dir(dir).map_err(|e| {
            format!(
                "{}: cannot create the snapshot directory: {e}",
                dir.display()
            )
        })?;
        if !dir.is_dir() {
            return Err(format!("{}: not a directory", dir.display()));
        }
        Ok(Keep {
            dir: dir.to_owned(),
            count: count.max(1),
        })
    }

    /// Writes `bytes` as the snapshot taken at `at`, then removes the oldest beyond the count.
    pub fn save(&self, bytes: &[u8], at: DateTime<Utc>) -> Result<PathBuf, String> {
        let path = self
            .dir
            .join(format!("{PREFIX}{}{SUFFIX}", at.format(TIME)));
        crate::files::write_atomic(&path, |w| w.write_all(bytes))
            .map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
        self.prune()?;
        Ok(path)
    }

    /// The kept snapshots, oldest first.
    pub fn kept(&self) -> Result<Vec<PathBuf>, String> {
        let entries = std::fs::read_dir(&self.dir)
            .map_err(|e| format!("{}: cannot list: {e}", self.dir.display()))?;
        let mut names: Vec<String> = entries
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| is_kept_name(name))
            .collect();
        names.sort();
        Ok(names.into_iter().map(|n| self.dir.join(n)).collect())
    }

    fn prune(&self) -> Result<(), String> {
        let kept = self.kept()?;
        let extra = kept.len().saturating_sub(self.count);
        for path in &kept[..extra] {
            std::fs::remove_file(path)
                .map_err(|e| format!("{}: cannot remove: {e}", path.display()))?;
        }
        Ok(())
    }
}

/// Whether `name` is one of the files `save` writes.
fn is_kept_name(name: &str) -> bool {
    name.strip_prefix(PREFIX)
        .and_then(|rest| rest.strip_suffix(SUFFIX))
        .is_some_and(|time| NaiveDateTime::parse_from_str(time, TIME).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_stay_and_other_files_are_left_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let kept_dir = dir.path().join("kept");
        let keep = Keep::new(&kept_dir, 2).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&kept_dir), 0o700);
        std::fs::write(kept_dir.join("notes.json"), "mine").unwrap();
        std::fs::write(kept_dir.join("fleetscope-latest.json"), "mine too").unwrap();
        let base: DateTime<Utc> = "2026-11-01T00:00:00Z".parse().unwrap();
        for minutes in [0, 15, 30] {
            let at = base + chrono::Duration::minutes(minutes);
            let path = keep.save(format!("{minutes}").as_bytes(), at).unwrap();
            assert_eq!(mode(&path), 0o600);
        }
        let names: Vec<String> = keep
            .kept()
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "fleetscope-20261101T001500.000Z.json",
                "fleetscope-20261101T003000.000Z.json"
            ]
        );
        assert!(kept_dir.join("notes.json").exists());
        assert!(kept_dir.join("fleetscope-latest.json").exists());
    }
}
