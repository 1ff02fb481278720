//! The file operations the log needs, behind a trait so tests can inject faults and
//! simulate a machine that loses unsynced writes.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// One open log file.
pub trait StorageFile: Send {
    /// Reads the whole file.
    fn read_all(&mut self) -> io::Result<Vec<u8>>;
    /// Writes `bytes` at `offset`.
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()>;
    /// Makes written data durable (fdatasync).
    fn sync_data(&mut self) -> io::Result<()>;
    /// Sets the file's length, extending with zeros or cutting.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
    /// Allocates disk blocks for the first `len` bytes, so that later writes inside them
    /// change no file size.
    ///
    /// On ext4, `posix_fallocate` leaves the blocks marked unwritten, so a sync that
    /// covers their first write also commits the journal. The writer of a durable log
    /// therefore writes zeros ahead of its records, a chunk at a time.
    fn preallocate(&mut self, len: u64) -> io::Result<()>;
}

/// A folder of log files.
pub trait Storage: Send + Sync {
    /// Names of the files in the folder, in no particular order.
    fn list(&self) -> io::Result<Vec<String>>;
    /// Opens an existing file for reading and writing.
    fn open(&self, name: &str) -> io::Result<Box<dyn StorageFile>>;
    /// Creates a new, empty file; fails if it exists.
    fn create(&self, name: &str) -> io::Result<Box<dyn StorageFile>>;
    /// Removes a file.
    fn remove(&self, name: &str) -> io::Result<()>;
    /// Renames a file, replacing any file with the new name.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Makes creations, renames and removals in the folder durable (fsync of the folder).
    fn sync_dir(&self) -> io::Result<()>;
}

/// Log files in a folder of the real file system.
pub struct FsStorage {
    dir: PathBuf,
}

impl FsStorage {
    /// Uses `dir` for the log, creating it if needed.
    pub fn new(dir: impl AsRef<Path>) -> io::Result<Self> {
        std::fs::create_dir_all(dir.as_ref())?;
        Ok(FsStorage { dir: dir.as_ref().to_owned() })
    }
}

struct FsFile(File);

impl StorageFile for FsFile {
    fn read_all(&mut self) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.0.seek(SeekFrom::Start(0))?;
        self.0.read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.0.seek(SeekFrom::Start(offset))?;
        self.0.write_all(bytes)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn preallocate(&mut self, len: u64) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let len = libc::off_t::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: the descriptor belongs to this open file for the whole call.
        let status = unsafe { libc::posix_fallocate(self.0.as_raw_fd(), 0, len) };
        if status == 0 { Ok(()) } else { Err(io::Error::from_raw_os_error(status)) }
    }
}

impl Storage for FsStorage {
    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            if let Some(name) = entry?.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }

    fn open(&self, name: &str) -> io::Result<Box<dyn StorageFile>> {
        let file = OpenOptions::new().read(true).write(true).open(self.dir.join(name))?;
        Ok(Box::new(FsFile(file)))
    }

    fn create(&self, name: &str) -> io::Result<Box<dyn StorageFile>> {
        let file = OpenOptions::new().read(true).write(true).create_new(true).open(self.dir.join(name))?;
        Ok(Box::new(FsFile(file)))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        std::fs::remove_file(self.dir.join(name))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        std::fs::rename(self.dir.join(from), self.dir.join(to))
    }

    fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }
}
