//! Pins left by another dockfw version are refused with a clear error before
//! anything is loaded, and `dockfw detach` clears them. Root tier.

use std::{path::PathBuf, process::Command};

use dockfw::dataplane::{Dataplane, LoadError, LoadOptions, attach::detach_all};

struct PinDir(PathBuf);

impl Drop for PinDir {
    fn drop(&mut self) {
        let _ = detach_all(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn pins_from_another_abi_are_refused_then_detached() {
    dockfw_tests::require_root("pinning maps");
    let dir = PinDir(PathBuf::from(format!(
        "/sys/fs/bpf/dfw-test-pins-{}",
        std::process::id()
    )));
    // A first load creates the bpffs mount (if needed) and a full set of pins.
    let options = LoadOptions {
        pin_dir: Some(dir.0.clone()),
        ..LoadOptions::default()
    };
    drop(
        Dataplane::load(&options)
            .unwrap_or_else(|error| panic!("first load: {}", dockfw_tests::chain(&error))),
    );
    let config = dir.0.join("maps").join(dockfw_common::CONFIG_MAP);
    std::fs::remove_file(&config)
        .unwrap_or_else(|error| panic!("removing {}: {error}", config.display()));
    // An older layout: the configuration with an 8-byte value.
    let status = Command::new("bpftool")
        .args(["map", "create"])
        .arg(&config)
        .args([
            "type",
            "array",
            "key",
            "4",
            "value",
            "8",
            "entries",
            "1",
            "name",
            "DFW_CONFIG",
        ])
        .status()
        .unwrap_or_else(|error| panic!("running bpftool: {error}"));
    assert!(status.success(), "bpftool map create failed");

    match Dataplane::load(&options) {
        Err(error @ LoadError::IncompatiblePin { .. }) => {
            let message = error.to_string();
            assert!(
                message.contains("DFW_CONFIG") && message.contains("dockfw detach"),
                "{message}"
            );
        }
        Err(other) => panic!(
            "expected an incompatible pin, got: {}",
            dockfw_tests::chain(&other)
        ),
        Ok(_) => panic!("an incompatible pin was re-adopted"),
    }
    let removed = detach_all(&dir.0).unwrap_or_else(|error| panic!("detach: {error}"));
    assert!(
        removed.iter().any(|item| item.contains("DFW_CONFIG")),
        "{removed:?}"
    );
    drop(
        Dataplane::load(&options)
            .unwrap_or_else(|error| panic!("load after detach: {}", dockfw_tests::chain(&error))),
    );
}
