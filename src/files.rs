//! The files fleetscope is given or keeps. Every read is bounded, and only a regular file is
//! read, so `/dev/zero` or a FIFO with no writer is an error rather than a process that fills
//! memory or waits forever. What it writes is private: the data directory holds an inventory of
//! the estate, so directories it makes are 0700 and files it creates 0600 (less the umask).

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

/// Makes `dir` and any missing parents, each private to the user. A directory that exists
/// keeps the mode its owner gave it.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Options that create a file private to the user; set the access wanted on them.
pub fn private_file() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Why a file was not read.
#[derive(Debug)]
pub enum ReadError {
    /// It could not be opened or read, or is not a regular file.
    Io(io::Error),
    /// It holds more than the cap.
    TooBig { cap: u64 },
}

impl ReadError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io(e) if e.kind() == io::ErrorKind::NotFound)
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(e) => e.fmt(f),
            ReadError::TooBig { cap } => write!(f, "larger than {}", size(*cap)),
        }
    }
}

impl From<io::Error> for ReadError {
    fn from(error: io::Error) -> ReadError {
        ReadError::Io(error)
    }
}

/// A byte count as people write limits: `1 MiB`, `2 GiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    UNITS
        .iter()
        .find(|(unit, _)| bytes >= *unit && bytes.is_multiple_of(*unit))
        .map_or_else(
            || format!("{bytes} bytes"),
            |(unit, name)| format!("{} {name}", bytes / unit),
        )
}

/// Opens `path` for reading if it is a regular file. The type is checked before opening, since
/// opening a FIFO waits for a writer, and again on what was opened.
pub fn open_regular(path: &Path) -> io::Result<File> {
    not_regular(&std::fs::metadata(path)?)?;
    let file = File::open(path)?;
    not_regular(&file.metadata()?)?;
    Ok(file)
}

fn not_regular(meta: &std::fs::Metadata) -> io::Result<()> {
    if meta.is_file() {
        return Ok(());
    }
    let kind = meta.file_type();
    #[cfg(unix)]
    let what = {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            "a named pipe"
        } else if kind.is_char_device() {
            "a character device"
        } else if kind.is_block_device() {
            "a block device"
        } else if kind.is_socket() {
            "a socket"
        } else if kind.is_dir() {
            "a directory"
        } else {
            "not a file"
        }
    };
    #[cfg(not(unix))]
    let what = if kind.is_dir() {
        "a directory"
    } else {
        "not a file"
    };
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("not a regular file ({what})"),
    ))
}

/// The whole of a regular file, if it holds at most `cap` bytes.
pub fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, ReadError> {
    let file = open_regular(path)?;
    let len = file.metadata()?.len();
    if len > cap {
        return Err(ReadError::TooBig { cap });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    // The file may grow after the size was read: read one byte past the cap to tell.
    file.take(cap.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(ReadError::TooBig { cap });
    }
    Ok(bytes)
}

/// Writes to a temporary file beside `path`, syncs it, then renames over: readers see the old
/// file or the new one, never half of one. A device or a pipe (`/dev/null`, `/dev/stdout`, a
/// FIFO) is written in place, since renaming over it would replace it; a symlink is followed,
/// so the link keeps pointing at the file it names. The new file has the mode of the one it
/// replaces (a user who chose 0640 keeps it), or is private (0600 less the umask).
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let replaced = match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() && !meta.is_dir() => {
            let mut writer =
                std::io::BufWriter::new(std::fs::OpenOptions::new().write(true).open(path)?);
            write(&mut writer)?;
            return writer.flush();
        }
        Ok(_) if path.is_symlink() => {
            return write_atomic(&std::fs::canonicalize(path)?, write);
        }
        Ok(meta) => Some(meta.permissions()),
        Err(_) => None,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path"))?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        // A temporary left by a crash goes first: only a file made now gets the private mode.
        let _ = std::fs::remove_file(&tmp);
        let file = private_file().write(true).create_new(true).open(&tmp)?;
        if let Some(permissions) = replaced {
            file.set_permissions(permissions)?;
        }
        let mut writer = std::io::BufWriter::new(file);
        write(&mut writer)?;
        let file = writer.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename itself is durable once the directory is synced.
        if let Ok(dir) = std::fs::File::open(dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_limits_are_written() {
        assert_eq!(size(1 << 20), "1 MiB");
        assert_eq!(size(2 << 30), "2 GiB");
        assert_eq!(size(1536), "1536 bytes");
        assert_eq!(size(3 << 10), "3 KiB");
        assert_eq!(size(100), "100 bytes");
    }

    #[test]
    fn a_file_at_the_cap_is_read_and_one_past_it_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"12345").unwrap();
        assert_eq!(read_capped(&path, 5).unwrap(), b"12345");
        assert!(matches!(
            read_capped(&path, 4),
            Err(ReadError::TooBig { cap: 4 })
        ));
        assert!(
            read_capped(&dir.path().join("missing"), 5)
                .unwrap_err()
                .is_not_found()
        );
    }

    #[cfg(unix)]
    #[test]
    fn devices_directories_and_pipes_are_refused_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        for (path, what) in [
            (Path::new("/dev/zero"), "a character device"),
            (dir.path(), "a directory"),
            (fifo.as_path(), "a named pipe"),
        ] {
            let error = read_capped(path, 1 << 20).unwrap_err().to_string();
            assert_eq!(error, format!("not a regular file ({what})"));
        }
    }
}
