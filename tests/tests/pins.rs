//! Pins left by another dockfw version are refused with a clear error before
//! anything is loaded, and `dockfw detach` clears them; pins of maps this
//! version no longer uses are removed on load. Root tier.

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

/// Maps an older version pinned and this one no longer uses (the partly
/// banned /24s' hash map before they moved to an array) are unpinned when
/// the data plane loads, so their memory goes once the old program does.
#[test]
fn pins_of_maps_no_longer_used_are_removed_on_load() {
    dockfw_tests::require_root("pinning maps");
    let dir = PinDir(PathBuf::from(format!(
        "/sys/fs/bpf/dfw-test-obsolete-{}",
        std::process::id()
    )));
    let options = LoadOptions {
        pin_dir: Some(dir.0.clone()),
        ..LoadOptions::default()
    };
    drop(
        Dataplane::load(&options)
            .unwrap_or_else(|error| panic!("first load: {}", dockfw_tests::chain(&error))),
    );
    let old = dir.0.join("maps").join("DFW_BAN24");
    let status = Command::new("bpftool")
        .args(["map", "create"])
        .arg(&old)
        .args([
            "type",
            "hash",
            "key",
            "4",
            "value",
            "40",
            "entries",
            "16",
            "name",
            "DFW_BAN24",
        ])
        .status()
        .unwrap_or_else(|error| panic!("running bpftool: {error}"));
    assert!(status.success(), "bpftool map create failed");
    assert!(old.exists());
    drop(
        Dataplane::load(&options)
            .unwrap_or_else(|error| panic!("second load: {}", dockfw_tests::chain(&error))),
    );
    assert!(!old.exists(), "{} is still pinned", old.display());
    assert!(
        dir.0.join("maps").join(dockfw_common::BAN24_MAP).exists(),
        "the current maps stay pinned"
    );
}
