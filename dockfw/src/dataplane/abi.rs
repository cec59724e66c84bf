//! The ABI version recorded with a pin set ([`dockfw_common::ABI_MAP`]):
//! the per-map layout check compares types and sizes, which a change of
//! meaning at equal sizes would pass; the version says which layout wrote
//! the pins.

use std::path::{Path, PathBuf};

use aya::maps::{Array, Map, MapData};
use dockfw_common::{ABI_MAP, ABI_VERSION};

use super::LoadError;

/// The version recorded under `map_dir`, `None` when there is none (a pin
/// set of a version before the record, or no pins).
pub fn pinned_abi(map_dir: &Path) -> Result<Option<u32>, LoadError> {
    let path = map_dir.join(ABI_MAP);
    if !path.exists() {
        return Ok(None);
    }
    let error = |source| LoadError::MapType {
        name: ABI_MAP,
        source,
    };
    let array: Array<MapData, u32> =
        Array::try_from(Map::Array(MapData::from_pin(&path).map_err(error)?)).map_err(error)?;
    array.get(&0, 0).map(Some).map_err(error)
}

/// Refuses pins recorded with another ABI version.
pub fn check_abi(map_dir: &Path) -> Result<(), LoadError> {
    match pinned_abi(map_dir)? {
        Some(found) if found != ABI_VERSION => Err(LoadError::AbiVersion {
            path: map_dir.to_path_buf(),
            found,
            expected: ABI_VERSION,
        }),
        _ => Ok(()),
    }
}

/// Records this build's version under `map_dir` when nothing is recorded
/// (after the pins were created or re-adopted).
pub fn record_abi(map_dir: &Path) -> Result<(), LoadError> {
    let path: PathBuf = map_dir.join(ABI_MAP);
    if path.exists() {
        return check_abi(map_dir);
    }
    let error = |source| LoadError::MapType {
        name: ABI_MAP,
        source,
    };
    let mut array = Array::<MapData, u32>::create(1, 0).map_err(error)?;
    array.set(0, ABI_VERSION, 0).map_err(error)?;
    if let Err(pin_error) = array.pin(&path) {
        // Another process recorded it first: its record must agree.
        if path.exists() {
            return check_abi(map_dir);
        }
        return Err(LoadError::RecordAbi {
            path,
            source: pin_error,
        });
    }
    Ok(())
}
