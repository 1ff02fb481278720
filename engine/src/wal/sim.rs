//! A simulated log folder in memory that loses what a crash would lose, for tests.
//!
//! Each file keeps the bytes that reached the disk (as of its last fdatasync) apart
//! from the writes made since. [`SimStorage::crash_image`] builds the folder a machine
//! would find after losing power: synced bytes, plus the first few unsynced writes (the
//! last of them possibly cut short, a torn write), and only the files whose creation a
//! folder sync made durable.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::{Arc, Mutex};

use super::storage::{Storage, StorageFile};

#[derive(Clone, Debug, Default)]
struct SimFile {
    /// Contents as of the last fdatasync.
    synced: Vec<u8>,
    /// Writes since then, in order: offset and bytes.
    pending: Vec<(u64, Vec<u8>)>,
}

impl SimFile {
    fn current(&self) -> Vec<u8> {
        let mut bytes = self.synced.clone();
        for (offset, data) in &self.pending {
            apply_write(&mut bytes, *offset, data);
        }
        bytes
    }
}

fn apply_write(bytes: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let end = offset as usize + data.len();
    if bytes.len() < end {
        bytes.resize(end, 0);
    }
    bytes[offset as usize..end].copy_from_slice(data);
}

#[derive(Debug, Default)]
struct Folder {
    files: BTreeMap<String, SimFile>,
    /// Names whose creation a folder sync made durable.
    durable_names: BTreeSet<String>,
}

/// An in-memory log folder that can be crashed.
#[derive(Clone, Debug, Default)]
pub struct SimStorage {
    folder: Arc<Mutex<Folder>>,
}

impl SimStorage {
    /// Creates an empty folder.
    pub fn new() -> Self {
        SimStorage::default()
    }

    /// Builds the folder a crash at this moment would leave. For each file,
    /// `keep_writes` gets the count of unsynced writes and returns how many survive
    /// whole and how many bytes of the next one survive (a torn write).
    pub fn crash_image(&self, mut keep_writes: impl FnMut(usize) -> (usize, usize)) -> SimStorage {
        let folder = self.folder.lock().expect("sim folder lock");
        let mut image = Folder::default();
        for (name, file) in &folder.files {
            if !folder.durable_names.contains(name) {
                continue;
            }
            let mut bytes = file.synced.clone();
            let (whole, torn_bytes) = keep_writes(file.pending.len());
            for (index, (offset, data)) in file.pending.iter().enumerate() {
                if index < whole {
                    apply_write(&mut bytes, *offset, data);
                } else {
                    apply_write(&mut bytes, *offset, &data[..torn_bytes.min(data.len())]);
                    break;
                }
            }
            image.files.insert(name.clone(), SimFile { synced: bytes, pending: Vec::new() });
            image.durable_names.insert(name.clone());
        }
        SimStorage { folder: Arc::new(Mutex::new(image)) }
    }
}

struct SimHandle {
    folder: Arc<Mutex<Folder>>,
    name: String,
}

impl SimHandle {
    fn with_file<T>(&self, change: impl FnOnce(&mut SimFile) -> T) -> io::Result<T> {
        let mut folder = self.folder.lock().expect("sim folder lock");
        let file = folder.files.get_mut(&self.name).ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        Ok(change(file))
    }
}

impl StorageFile for SimHandle {
    fn read_all(&mut self) -> io::Result<Vec<u8>> {
        self.with_file(|file| file.current())
    }

    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.with_file(|file| file.pending.push((offset, bytes.to_vec())))
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.with_file(|file| {
            for (offset, data) in std::mem::take(&mut file.pending) {
                apply_write(&mut file.synced, offset, &data);
            }
        })
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.with_file(|file| {
            let mut bytes = file.current();
            bytes.resize(len as usize, 0);
            file.synced = bytes;
            file.pending.clear();
        })
    }

    fn preallocate(&mut self, _len: u64) -> io::Result<()> {
        // Preallocation changes no content; the simulated file grows as it is written.
        Ok(())
    }
}

impl Storage for SimStorage {
    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.folder.lock().expect("sim folder lock").files.keys().cloned().collect())
    }

    fn open(&self, name: &str) -> io::Result<Box<dyn StorageFile>> {
        if !self.folder.lock().expect("sim folder lock").files.contains_key(name) {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        Ok(Box::new(SimHandle { folder: Arc::clone(&self.folder), name: name.to_owned() }))
    }

    fn create(&self, name: &str) -> io::Result<Box<dyn StorageFile>> {
        let mut folder = self.folder.lock().expect("sim folder lock");
        if folder.files.contains_key(name) {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        folder.files.insert(name.to_owned(), SimFile::default());
        Ok(Box::new(SimHandle { folder: Arc::clone(&self.folder), name: name.to_owned() }))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        let mut folder = self.folder.lock().expect("sim folder lock");
        folder.files.remove(name).ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        folder.durable_names.remove(name);
        Ok(())
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        // A new name is durable only after a folder sync: until then a crash keeps
        // neither name. A replaced name stays, with the new content.
        let mut folder = self.folder.lock().expect("sim folder lock");
        let file = folder.files.remove(from).ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        folder.files.insert(to.to_owned(), file);
        folder.durable_names.remove(from);
        Ok(())
    }

    fn sync_dir(&self) -> io::Result<()> {
        let mut folder = self.folder.lock().expect("sim folder lock");
        folder.durable_names = folder.files.keys().cloned().collect();
        Ok(())
    }
}
