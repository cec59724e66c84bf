//! The policy file as a source: loaded, and watched for changes by polling
//! its (and its set files') modification stamps, which also catches editors
//! that replace the file instead of writing it in place.

use std::{
    fs,
    path::{Path, PathBuf},
    time::SystemTime,
};

use crate::{
    model::Policy,
    policy::{LoadedPolicy, PolicyError, SetTable, load_policy_file},
};

/// What identifies a version of a file on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt as _;
    let metadata = fs::metadata(path).ok()?;
    Some(Stamp {
        modified: metadata.modified().ok(),
        len: metadata.len(),
        inode: metadata.ino(),
    })
}

/// The policy file and what was last loaded from it.
#[derive(Debug)]
pub struct PolicySource {
    path: Option<PathBuf>,
    loaded: Option<LoadedPolicy>,
    stamps: Vec<(PathBuf, Option<Stamp>)>,
}

impl PolicySource {
    /// A source for `path` (`None`: no policy file, no file rules).
    pub fn new(path: Option<PathBuf>) -> Self {
        Self {
            path,
            loaded: None,
            stamps: Vec::new(),
        }
    }

    /// Whether the file or one of its set files changed since the last load
    /// (or last failed attempt).
    pub fn changed(&self) -> bool {
        self.path.is_some() && self.stamps.iter().any(|(path, seen)| stamp(path) != *seen)
    }

    /// Loads the file. On error the previous policy is kept and the stamps
    /// are updated, so the same broken version is not retried every poll.
    pub fn load(&mut self) -> Result<(), PolicyError> {
        let Some(path) = self.path.clone() else {
            return Ok(());
        };
        let result = load_policy_file(&path);
        let mut files = vec![path];
        match &result {
            Ok(loaded) => files.extend(loaded.set_files.iter().cloned()),
            Err(_) => {
                if let Some(loaded) = &self.loaded {
                    files.extend(loaded.set_files.iter().cloned());
                }
            }
        }
        self.stamps = files
            .into_iter()
            .map(|file| {
                let seen = stamp(&file);
                (file, seen)
            })
            .collect();
        self.loaded = Some(result?);
        Ok(())
    }

    /// The file's policy in force (empty without a file).
    pub fn policy(&self) -> Policy {
        self.loaded
            .as_ref()
            .map(|loaded| loaded.policy.clone())
            .unwrap_or_default()
    }

    /// The file's named sets (labels may refer to them).
    pub fn sets(&self) -> &SetTable {
        static EMPTY: std::sync::OnceLock<SetTable> = std::sync::OnceLock::new();
        self.loaded
            .as_ref()
            .map_or_else(|| EMPTY.get_or_init(SetTable::new), |loaded| &loaded.sets)
    }

    /// The file path.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}
