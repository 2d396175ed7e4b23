//! One failover per estate at a time: an exclusive lock on a file in the
//! state directory, named after the estate (see `journal::estate_key`),
//! holding who has it. The kernel drops the lock when the
//! holder dies; the holder's record stays, so a crashed run is noticed.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Who holds (or held) the lock.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub user: String,
    pub since: String,
    pub run_id: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} on {} by {} since {} (run {})",
            self.pid, self.host, self.user, self.since, self.run_id
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another failover of this estate is running: {holder} (lock file {})", path.display())]
    Held { holder: String, path: PathBuf },
    #[error("cannot use lock file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A held lock; dropping it clears the record and releases the lock.
#[derive(Debug)]
pub struct Lock {
    file: File,
    path: PathBuf,
    /// The record a previous holder left behind without releasing cleanly.
    pub stale: Option<Holder>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> LockError + '_ {
    move |source| LockError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.trim()).ok()
}

impl Lock {
    /// Take the lock or fail at once naming the holder.
    pub fn acquire(path: &Path, me: Holder) -> Result<Lock, LockError> {
        let mut file = crate::platform::open_private_rw(path).map_err(io(path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = read_holder(&mut file)
                    .map(|h| h.to_string())
                    .unwrap_or_else(|| "a process that has not written its record yet".into());
                return Err(LockError::Held {
                    holder,
                    path: path.to_path_buf(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(path)(e)),
        }
        let stale = read_holder(&mut file);
        file.set_len(0).map_err(io(path))?;
        file.seek(SeekFrom::Start(0)).map_err(io(path))?;
        let record = serde_json::to_string(&me).unwrap_or_default();
        writeln!(file, "{record}").map_err(io(path))?;
        file.sync_all().map_err(io(path))?;
        Ok(Lock {
            file,
            path: path.to_path_buf(),
            stale,
        })
    }

    /// Inspect a lock without taking it: Ok(None) free and clean, Ok(Some)
    /// free but a record was left behind, Err(Held) in use.
    pub fn inspect(path: &Path) -> Result<Option<Holder>, LockError> {
        let mut file = match crate::platform::open_existing_rw(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(path)(e)),
        };
        match file.try_lock() {
            Ok(()) => {
                let holder = read_holder(&mut file);
                let _ = file.unlock();
                Ok(holder)
            }
            Err(std::fs::TryLockError::WouldBlock) => Err(LockError::Held {
                holder: read_holder(&mut file)
                    .map(|h| h.to_string())
                    .unwrap_or_else(|| "unknown".into()),
                path: path.to_path_buf(),
            }),
            Err(std::fs::TryLockError::Error(e)) => Err(io(path)(e)),
        }
    }

    /// Remove a left-behind record (the lock must be free).
    pub fn clear(path: &Path) -> Result<(), LockError> {
        let file = crate::platform::open_existing_rw(path).map_err(io(path))?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0).map_err(io(path))?;
                let _ = file.unlock();
                Ok(())
            }
            Err(_) => Err(LockError::Held {
                holder: "a live process".into(),
                path: path.to_path_buf(),
            }),
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // An empty record means "released cleanly".
        let _ = self.file.set_len(0);
        let _ = self.file.sync_all();
        let _ = self.file.unlock();
        tracing::debug!(path = %self.path.display(), "lock released");
    }
}
