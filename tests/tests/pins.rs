//! Pins left by another dockfw version (another ABI version, or a map of
//! another layout) are refused with a clear error before anything is
//! loaded, and `dockfw detach` clears them, except maps rebuilt
//! from the host, which are replaced; pins of maps this version no longer
//! uses are removed on load, maps it adds are created next to old pins;
//! bans written without a
//! daemon take the pin directory's writer lock. Root tier.

use std::{path::PathBuf, process::Command};

use aya::maps::MapInfo;
use dockfw::dataplane::{Dataplane, LoadError, LoadOptions, attach::detach_all};
use dockfw_common::{LOCAL_ADDRS_MAP, LocalSet};
use dockfw_tests::pin_foreign_map;

struct PinDir(PathBuf);

impl Drop for PinDir {
    fn drop(&mut self) {
        let _ = detach_all(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A pin directory named `name` (removed when dropped) holding a full set
/// of pins from a first load, which also mounts bpffs if needed.
fn pinned(name: &str) -> (PinDir, LoadOptions) {
    dockfw_tests::require_root("pinning maps");
    let dir = PinDir(PathBuf::from(format!(
        "/sys/fs/bpf/{name}-{}",
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
    (dir, options)
}

#[test]
fn pins_from_another_abi_are_refused_then_detached() {
    let (dir, options) = pinned("dfw-test-pins");
    let config = dir.0.join("maps").join(dockfw_common::CONFIG_MAP);
    // An older layout: the configuration with an 8-byte value.
    pin_foreign_map(&config, "array", 8, 1, "DFW_CONFIG");

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

/// The pins record the ABI version that created them: another version is
/// refused by the daemon's load and by clients of the pins even where every
/// map's layout matches, and a pin set without a record (older versions) is
/// re-adopted by layout and gets one.
#[test]
fn pins_of_another_abi_version_are_refused_then_detached() {
    use aya::maps::{Array, Map, MapData};
    use dockfw_common::{ABI_MAP, ABI_VERSION};
    let (dir, options) = pinned("dfw-test-abi");
    let record = dir.0.join("maps").join(ABI_MAP);
    let open = || -> Array<MapData, u32> {
        Array::try_from(Map::Array(MapData::from_pin(&record).unwrap())).unwrap()
    };
    assert_eq!(
        open().get(&0, 0).unwrap(),
        ABI_VERSION,
        "the first load records it"
    );

    open().set(0, ABI_VERSION + 1, 0).unwrap();
    let refused = |result: Result<(), LoadError>, who: &str| match result {
        Err(error @ LoadError::AbiVersion { .. }) => {
            let message = error.to_string();
            assert!(
                message.contains(&format!("ABI version {}", ABI_VERSION + 1))
                    && message.contains("dockfw detach"),
                "{who}: {message}"
            );
        }
        Err(other) => panic!(
            "{who}: expected an ABI version refusal, got: {}",
            dockfw_tests::chain(&other)
        ),
        Ok(()) => panic!("{who}: pins of another ABI version were re-adopted"),
    };
    refused(Dataplane::load(&options).map(drop), "daemon load");
    refused(
        dockfw::dataplane::Maps::from_pins(&dir.0).map(drop),
        "client of the pins",
    );
    let trace = LoadOptions {
        trace: true,
        ..options.clone()
    };
    refused(Dataplane::load(&trace).map(drop), "trace instance");

    detach_all(&dir.0).unwrap_or_else(|error| panic!("detach: {error}"));
    drop(
        Dataplane::load(&options)
            .unwrap_or_else(|error| panic!("load after detach: {}", dockfw_tests::chain(&error))),
    );
    assert_eq!(open().get(&0, 0).unwrap(), ABI_VERSION);

    std::fs::remove_file(&record).unwrap();
    drop(
        Dataplane::load(&options).unwrap_or_else(|error| {
            panic!("load without a record: {}", dockfw_tests::chain(&error))
        }),
    );
    assert_eq!(open().get(&0, 0).unwrap(), ABI_VERSION, "recorded again");
}

/// The local-address set holds nothing a restart would lose: a pin of
/// another layout is replaced by a new map, but only by a daemon's load, and
/// only when every other pin can be re-adopted.
#[test]
fn a_local_address_map_of_another_layout_is_replaced() {
    let (dir, options) = pinned("dfw-test-local");
    let maps = dir.0.join("maps");
    let local = maps.join(LOCAL_ADDRS_MAP);
    let value_size = |path: &std::path::Path| {
        MapInfo::from_pin(path)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
            .value_size() as usize
    };
    // The layout before host addresses had slots (1,552-byte sets).
    pin_foreign_map(&local, "array", 1552, 2, LOCAL_ADDRS_MAP);

    // Neither a trace nor a client re-opening the pins replaces it.
    let trace = LoadOptions {
        trace: true,
        ..options.clone()
    };
    assert!(matches!(
        Dataplane::load(&trace),
        Err(LoadError::IncompatiblePin {
            name: LOCAL_ADDRS_MAP,
            ..
        })
    ));
    assert!(matches!(
        dockfw::dataplane::Maps::from_pins(&dir.0),
        Err(LoadError::IncompatiblePin {
            name: LOCAL_ADDRS_MAP,
            ..
        })
    ));
    // Another incompatible pin refuses the load and leaves both in place.
    let config = maps.join(dockfw_common::CONFIG_MAP);
    pin_foreign_map(&config, "array", 8, 1, "DFW_CONFIG");
    assert!(matches!(
        Dataplane::load(&options),
        Err(LoadError::IncompatiblePin {
            name: dockfw_common::CONFIG_MAP,
            ..
        })
    ));
    assert_eq!(
        value_size(&local),
        1552,
        "nothing replaced on a refused load"
    );
    std::fs::remove_file(&config).unwrap();

    let dataplane = Dataplane::load(&options)
        .unwrap_or_else(|error| panic!("load: {}", dockfw_tests::chain(&error)));
    assert_eq!(dataplane.replaced, [LOCAL_ADDRS_MAP]);
    assert_eq!(value_size(&local), size_of::<LocalSet>());
    drop(dataplane);
    let again = Dataplane::load(&options)
        .unwrap_or_else(|error| panic!("reload: {}", dockfw_tests::chain(&error)));
    assert!(again.replaced.is_empty(), "{:?}", again.replaced);
}

/// Maps an older version pinned and this one no longer uses (the partly
/// banned /24s' hash map before they moved to an array) are unpinned when
/// the data plane loads, so their memory goes once the old program does.
#[test]
fn pins_of_maps_no_longer_used_are_removed_on_load() {
    let (dir, options) = pinned("dfw-test-obsolete");
    let old = dir.0.join("maps").join("DFW_BAN24");
    pin_foreign_map(&old, "hash", 40, 16, "DFW_BAN24");
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

/// Pins of a version without the exact IPv6 ban maps: the maps are created
/// next to them, and the resync at start fills them from the ban trie.
#[test]
fn maps_a_version_adds_are_created_next_to_old_pins_and_filled() {
    use dockfw::{
        bans::{BanSet, NEVER},
        dataplane::bans::{read_bans, resync_bans, write_bans},
    };
    let (dir, options) = pinned("dfw-test-added");
    {
        let mut dataplane = Dataplane::load(&options)
            .unwrap_or_else(|error| panic!("second load: {}", dockfw_tests::chain(&error)));
        let mut bans = BanSet::new();
        bans.insert("2001:db8:1:1::/64".parse().unwrap(), NEVER);
        bans.insert("2001:db8:1:2::5/128".parse().unwrap(), NEVER);
        write_bans(&mut dataplane.maps, &BanSet::new(), &bans).unwrap();
    }
    let added = [dockfw_common::BAN64_V6_MAP, dockfw_common::BAN128_V6_MAP]
        .map(|name| dir.0.join("maps").join(name));
    for path in &added {
        std::fs::remove_file(path).unwrap();
    }
    let mut dataplane = Dataplane::load(&options)
        .unwrap_or_else(|error| panic!("load over old pins: {}", dockfw_tests::chain(&error)));
    for path in &added {
        assert!(path.exists(), "{} is not pinned", path.display());
    }
    assert_eq!(
        dataplane.maps.ban64_v6.keys().count(),
        0,
        "a new, empty map"
    );
    let bans = read_bans(&dataplane.maps).unwrap();
    assert_eq!(bans.len(), 2, "the bans stayed in the pinned trie");
    resync_bans(&mut dataplane.maps, &bans).unwrap();
    assert_eq!(dataplane.maps.ban64_v6.keys().count(), 2);
    assert_eq!(dataplane.maps.ban128_v6.keys().count(), 1);
}

/// `dockfw ban` and `unban` with no daemon write the pinned maps themselves,
/// each process finding the ban slots in use from the maps, and only while
/// no other writer holds the pin directory's lock.
#[test]
fn bans_without_a_daemon_take_the_writer_lock() {
    let (dir, _) = pinned("dfw-test-banlock");
    let run_dir = std::env::temp_dir().join(format!("dfw-banlock-run-{}", std::process::id()));
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_dockfw"))
            .args(args)
            .arg("--pin-dir")
            .arg(&dir.0)
            .arg("--run-dir")
            .arg(&run_dir)
            .output()
            .unwrap_or_else(|error| panic!("running dockfw {args:?}: {error}"))
    };
    let slot_of = |addr: u32| {
        let maps = dockfw::dataplane::Maps::from_pins(&dir.0)
            .unwrap_or_else(|error| panic!("opening pins: {}", dockfw_tests::chain(&error)));
        let bans = dockfw::dataplane::bans::read_bans(&maps).unwrap();
        let slot = maps.ban24_index.get(&(addr >> 8), 0).unwrap();
        let bit = (slot != 0).then(|| {
            let entry = maps.ban24.get(&slot, 0).unwrap();
            let host = (addr & 0xff) as usize;
            entry.bits[host / 64] >> (host % 64) & 1 == 1
        });
        (bans.len(), slot, bit)
    };
    let first = u32::from(std::net::Ipv4Addr::new(198, 51, 100, 7));
    let second = u32::from(std::net::Ipv4Addr::new(198, 51, 100, 8));

    let output = cli(&["ban", "198.51.100.7/32"]);
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("no daemon running"));
    let (count, slot, bit) = slot_of(first);
    assert_eq!(count, 1);
    assert_ne!(slot, 0, "the partly banned /24 got a slot");
    assert_eq!(bit, Some(true));

    // Another writer holds the lock: the ban waits, then fails clearly.
    let lock = dockfw::dataplane::pins::lock_writer(&dir.0, std::time::Duration::ZERO)
        .unwrap_or_else(|error| panic!("taking the lock: {error}"));
    let output = cli(&["ban", "198.51.100.8/32"]);
    assert!(!output.status.success(), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("not free to write"),
        "{output:?}"
    );
    assert_eq!(slot_of(second).0, 1, "nothing was written");
    drop(lock);

    // A second process sees the first one's slot: the /24's new entry goes
    // to another slot and holds both addresses.
    let output = cli(&["ban", "198.51.100.8/32"]);
    assert!(output.status.success(), "{output:?}");
    let (count, moved, bit) = slot_of(second);
    assert_eq!(count, 2);
    assert_ne!(moved, 0);
    assert_ne!(moved, slot, "a changed entry goes to a fresh slot");
    assert_eq!(bit, Some(true));
    assert_eq!(slot_of(first).2, Some(true));

    let output = cli(&["unban", "198.51.100.7/32"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(slot_of(first).2, Some(false));
    let output = cli(&["unban", "198.51.100.8/32"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(slot_of(second), (0, 0, None), "the /24 lost its slot");
}
