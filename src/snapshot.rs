//! Saved collections: what `--save-snapshot` writes and `--snapshot` reads back instead of
//! collecting. A JSON report carries the same fields, so it loads as a snapshot too. A
//! snapshot is read from a file or, from `fleetscope serve`, from an HTTP(S) URL.

use std::ffi::OsString;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::core::inventory::Inventory;
use crate::core::lineage::LineageRules;
use crate::core::model::{Group, Image, Instance, SourceStatus};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Serialize)]
pub struct SnapshotOut<'a> {
    pub schema_version: u32,
    pub kind: &'static str,
    pub fleetscope_version: &'static str,
    pub taken_at: DateTime<Utc>,
    pub sources: &'a [SourceStatus],
    pub images: Vec<&'a Image>,
    pub groups: Vec<&'a Group>,
    pub instances: Vec<&'a Instance>,
}

// `expecting` words what serde says it expected: never a type name of ours.
#[derive(Debug, Deserialize)]
#[serde(expecting = "a JSON object with schema_version and kind (a fleetscope snapshot)")]
struct SnapshotHeader {
    schema_version: Option<u32>,
    kind: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "a fleetscope snapshot object")]
pub struct SnapshotIn {
    pub taken_at: DateTime<Utc>,
    pub sources: Vec<SourceStatus>,
    pub images: Vec<Image>,
    #[serde(default)]
    pub groups: Vec<Group>,
    pub instances: Vec<Instance>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SnapshotError(pub String);

/// Sorted the same way every run, so equal fleets give equal files.
pub fn snapshot_of(inventory: &Inventory, taken_at: DateTime<Utc>) -> SnapshotOut<'_> {
    let mut images: Vec<&Image> = inventory
        .images()
        .iter()
        .filter(|e| e.described)
        .map(|e| &e.image)
        .collect();
    images.sort_by(|a, b| a.key.cmp(&b.key));
    let mut groups: Vec<&Group> = inventory
        .groups()
        .iter()
        .filter_map(|g| g.group.as_ref())
        .collect();
    groups.sort_by(|a, b| a.key.cmp(&b.key));
    let mut instances: Vec<&Instance> = inventory.instances().iter().collect();
    instances.sort_by(|a, b| (a.cloud, &a.id).cmp(&(b.cloud, &b.id)));
    SnapshotOut {
        schema_version: SCHEMA_VERSION,
        kind: "snapshot",
        fleetscope_version: env!("CARGO_PKG_VERSION"),
        taken_at,
        sources: inventory.sources(),
        images,
        groups,
        instances,
    }
}

/// The snapshot as its file holds it: pretty JSON and a final newline.
pub fn write_json(out: &mut dyn Write, snapshot: &SnapshotOut<'_>) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, snapshot).map_err(std::io::Error::other)?;
    out.write_all(b"\n")
}

/// The bytes `save` would write for this inventory.
pub fn to_json(inventory: &Inventory, taken_at: DateTime<Utc>) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    write_json(&mut bytes, &snapshot_of(inventory, taken_at))?;
    Ok(bytes)
}

pub fn save(
    path: &Path,
    inventory: &Inventory,
    taken_at: DateTime<Utc>,
) -> Result<(), SnapshotError> {
    let snapshot = snapshot_of(inventory, taken_at);
    crate::files::write_atomic(path, |w| write_json(w, &snapshot))
        .map_err(|e| SnapshotError(format!("{}: cannot write snapshot: {e}", path.display())))
}

/// Where a snapshot is read from: a file, or an `http://` or `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    File(PathBuf),
    Url(String),
}

impl From<OsString> for Location {
    fn from(text: OsString) -> Location {
        match text.to_str() {
            Some(url) if crate::remote::is_url(url) => Location::Url(url.to_owned()),
            _ => Location::File(PathBuf::from(text)),
        }
    }
}

impl From<&Path> for Location {
    fn from(path: &Path) -> Location {
        Location::from(path.as_os_str().to_owned())
    }
}

/// A file by its path, a URL without its credentials.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File(path) => write!(f, "{}", path.display()),
            Location::Url(url) => f.write_str(&crate::remote::display(url)),
        }
    }
}

/// Reads and checks a snapshot from a file or a URL, at most `fetch.cap` bytes. Not for
/// inside an async runtime: a URL is fetched on a runtime of its own.
pub fn load_from(
    location: &Location,
    fetch: &crate::remote::Fetch,
) -> Result<SnapshotIn, SnapshotError> {
    match location {
        Location::File(path) => load_within(path, fetch.cap),
        Location::Url(_) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| SnapshotError(format!("cannot start the async runtime: {e}")))?;
            let bytes = runtime.block_on(download(location, fetch))?;
            parse(&bytes).map_err(|e| SnapshotError(format!("{location}: {e}")))
        }
    }
}

/// The bytes of a snapshot at `location`, unchecked: a file is read on a blocking thread.
pub async fn fetch_bytes(
    location: &Location,
    fetch: &crate::remote::Fetch,
) -> Result<Vec<u8>, SnapshotError> {
    match location {
        Location::File(path) => {
            let (path, cap) = (path.clone(), fetch.cap);
            tokio::task::spawn_blocking(move || read_file(&path, cap))
                .await
                .map_err(|e| SnapshotError(format!("{location}: cannot read snapshot: {e}")))?
        }
        Location::Url(_) => download(location, fetch).await,
    }
}

async fn download(
    location: &Location,
    fetch: &crate::remote::Fetch,
) -> Result<Vec<u8>, SnapshotError> {
    let Location::Url(url) = location else {
        return Err(SnapshotError(format!("{location}: not a URL")));
    };
    crate::remote::get(url, fetch).await.map_err(|e| match e {
        crate::remote::FetchError::TooBig { .. } => SnapshotError(format!(
            "{location}: the snapshot is {e} (limits.snapshot_max_mb; raise it in the config or with FLEETSCOPE_LIMITS_SNAPSHOT_MAX_MB)"
        )),
        crate::remote::FetchError::Other(_) => {
            SnapshotError(format!("{location}: cannot fetch snapshot: {e}"))
        }
    })
}

/// Reads and checks a snapshot (or JSON report) file no larger than the default
/// `limits.snapshot_max_mb`.
pub fn load(path: &Path) -> Result<SnapshotIn, SnapshotError> {
    load_within(
        path,
        crate::config::LimitsConfig::default().snapshot_max_bytes(),
    )
}

/// Reads and checks a snapshot (or JSON report) file of at most `cap` bytes.
pub fn load_within(path: &Path, cap: u64) -> Result<SnapshotIn, SnapshotError> {
    let bytes = read_file(path, cap)?;
    parse(&bytes).map_err(|e| SnapshotError(format!("{}: {e}", path.display())))
}

/// The bytes of a snapshot file of at most `cap` bytes.
fn read_file(path: &Path, cap: u64) -> Result<Vec<u8>, SnapshotError> {
    let name = path.display();
    crate::files::read_capped(path, cap).map_err(|e| match e {
        crate::files::ReadError::TooBig { .. } => SnapshotError(format!(
            "{name}: the snapshot is {e} (limits.snapshot_max_mb; raise it in the config or with FLEETSCOPE_LIMITS_SNAPSHOT_MAX_MB)"
        )),
        crate::files::ReadError::Io(e) => {
            SnapshotError(format!("{name}: cannot read snapshot: {e}"))
        }
    })
}

/// Parses snapshot bytes; the error says what is wrong without the file name.
pub fn parse(bytes: &[u8]) -> Result<SnapshotIn, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err("the file is empty, not a fleetscope snapshot".into());
    }
    let describe = |e: serde_json::Error| match e.classify() {
        serde_json::error::Category::Eof => {
            format!(
                "truncated: the JSON ends early (line {}, column {})",
                e.line(),
                e.column()
            )
        }
        serde_json::error::Category::Syntax => format!("not valid JSON: {e}"),
        _ => format!("not a fleetscope snapshot: {e}"),
    };
    // serde would read a struct from an array too; a snapshot is an object.
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        Some(b'[') => return Err("not a fleetscope snapshot: a JSON array, not an object".into()),
        _ => {}
    }
    let header: SnapshotHeader = serde_json::from_slice(bytes).map_err(describe)?;
    match (header.schema_version, header.kind.as_deref()) {
        (None, _) | (_, None) => {
            return Err("not a fleetscope snapshot: no schema_version or kind".into());
        }
        (Some(SCHEMA_VERSION), Some("snapshot" | "report")) => {}
        (Some(SCHEMA_VERSION), Some(other)) => {
            return Err(format!("a {other:?} file, not a snapshot or JSON report"));
        }
        (Some(version), _) => {
            return Err(format!(
                "snapshot schema_version {version} is not supported (this fleetscope reads {SCHEMA_VERSION})"
            ));
        }
    }
    serde_json::from_slice(bytes).map_err(describe)
}

impl SnapshotIn {
    /// Rebuilds the inventory the snapshot was taken from.
    pub fn into_inventory(self, rules: LineageRules) -> Inventory {
        let mut inventory = Inventory::new(rules);
        for image in self.images {
            inventory.upsert_image(image);
        }
        for group in self.groups {
            inventory.upsert_group(group);
        }
        for instance in self.instances {
            inventory.upsert_instance(instance);
        }
        for status in self.sources {
            inventory.restore_source(status);
        }
        inventory
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::unix::fs::FileTypeExt;

    use crate::files::write_atomic;

    fn write_text(path: &std::path::Path, text: &'static str) -> std::io::Result<()> {
        write_atomic(path, |w| w.write_all(text.as_bytes()))
    }

    #[test]
    fn a_file_is_replaced_whole_and_no_temporary_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        std::fs::write(&path, "old, and longer than the new").unwrap();
        write_text(&path, "new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_new_file_is_private_and_a_replaced_one_keeps_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        write_text(&path, "new").unwrap();
        assert_eq!(mode(&path), 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_text(&path, "again").unwrap();
        assert_eq!(mode(&path), 0o640);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "again");
    }

    #[test]
    fn a_symlink_is_followed_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target.json");
        let link = dir.path().join("link.json");
        std::fs::write(&target, "old").unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write_text(&link, "new").unwrap();
        assert!(link.is_symlink());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
    }

    #[test]
    fn a_pipe_is_written_in_place_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || {
                let mut text = String::new();
                std::fs::File::open(fifo)
                    .and_then(|mut f| f.read_to_string(&mut text))
                    .map(|_| text)
            })
        };
        write_text(&fifo, "through the pipe").unwrap();
        assert!(
            std::fs::metadata(&fifo).unwrap().file_type().is_fifo(),
            "the pipe must still be a pipe"
        );
        assert_eq!(reader.join().unwrap().unwrap(), "through the pipe");
    }
}
