//! What a demo run created, written down as it is created, in
//! `/run/dfw-demo-PID/state.json`: the guards remove it all when the run
//! ends, and `dockfw-demo --teardown` can remove it later from another
//! process (after `--keep`, or after the demo was killed with SIGKILL).
//!
//! Everything a run creates carries its pid: namespaces
//! `dfw-demo-*-PID-N`, pins `/sys/fs/bpf/dfw-demo-PID`, this directory,
//! and the Docker engine's `/tmp/dfw-docker-PID-*`.

use std::{
    fs,
    path::{Path, PathBuf},
};

use serde_json::{Value, json};

/// Prefix of the state directories (under /run: root's, on tmpfs).
pub const STATE_PREFIX: &str = "/run/dfw-demo-";
/// Prefix of the pin directories.
pub const PIN_PREFIX: &str = "/sys/fs/bpf/dfw-demo-";

/// The state directory of this run; removed on drop (last of all).
pub struct StateDir {
    dir: PathBuf,
    state: Value,
    /// `--keep`: the directory stays for `--teardown`.
    pub keep: bool,
}

impl StateDir {
    /// Creates `/run/dfw-demo-PID` (mode 0700) with an empty record.
    pub fn create() -> Result<Self, String> {
        use std::os::unix::fs::DirBuilderExt as _;
        let pid = std::process::id();
        let dir = state_dir(pid);
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|error| format!("creating {}: {error}", dir.display()))?;
        let mut state = Self {
            dir,
            state: json!({ "pid": pid, "kept": false }),
            keep: false,
        };
        state.save()?;
        Ok(state)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Records `value` under `key` (a namespace list grows with `push`).
    pub fn record(&mut self, key: &str, value: Value) -> Result<(), String> {
        self.state[key] = value;
        self.save()
    }

    /// Appends `value` to the list under `key`.
    pub fn push(&mut self, key: &str, value: Value) -> Result<(), String> {
        match self.state.get_mut(key).and_then(Value::as_array_mut) {
            Some(list) => list.push(value),
            None => self.state[key] = Value::Array(vec![value]),
        }
        self.save()
    }

    fn save(&mut self) -> Result<(), String> {
        let path = self.dir.join("state.json");
        let text = serde_json::to_string_pretty(&self.state)
            .map_err(|error| format!("encoding the demo state: {error}"))?;
        fs::write(&path, text).map_err(|error| format!("writing {}: {error}", path.display()))
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        if self.keep {
            self.state["kept"] = Value::Bool(true);
            if let Err(error) = self.save() {
                eprintln!("{error}");
            }
            return;
        }
        if let Err(error) = fs::remove_dir_all(&self.dir) {
            eprintln!("cleanup: removing {}: {error}", self.dir.display());
        }
    }
}

/// The state directory of run `pid`.
pub fn state_dir(pid: u32) -> PathBuf {
    PathBuf::from(format!("{STATE_PREFIX}{pid}"))
}

/// The pin directory of run `pid`.
pub fn pin_dir(pid: u32) -> PathBuf {
    PathBuf::from(format!("{PIN_PREFIX}{pid}"))
}

/// A recorded state, read back.
#[derive(Debug, Default)]
pub struct Recorded {
    /// Whether the run ended with `--keep`.
    pub kept: bool,
    /// Namespace names.
    pub namespaces: Vec<String>,
    /// The Docker engine's directory.
    pub engine_dir: Option<PathBuf>,
    /// The dockfw daemon's pid.
    pub daemon_pid: Option<u32>,
}

/// Reads run `pid`'s state file, if there is one.
pub fn read(pid: u32) -> Option<Recorded> {
    let text = fs::read_to_string(state_dir(pid).join("state.json")).ok()?;
    let value: Value = serde_json::from_str(&text).ok()?;
    Some(Recorded {
        kept: value["kept"].as_bool().unwrap_or(false),
        namespaces: value["namespaces"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|name| name.as_str().map(String::from))
            .collect(),
        engine_dir: value["engine_dir"].as_str().map(PathBuf::from),
        daemon_pid: value["daemon_pid"]
            .as_u64()
            .and_then(|pid| u32::try_from(pid).ok()),
    })
}
