//! Reading a per-CPU array of [`Counter`]s in a few syscalls.
//!
//! A scrape reads every counter of every statistic id: with 1,000 published
//! ports and 32 rules each that is 35,000 ids x 4 outcomes. aya 0.14 reads
//! one element per `BPF_MAP_LOOKUP_ELEM`, about a microsecond each, so the
//! scrape would spend over 100 ms in syscalls. `BPF_MAP_LOOKUP_BATCH`
//! (Linux 5.6; arrays and per-CPU arrays use the kernel's
//! `generic_map_lookup_batch` in `kernel/bpf/syscall.c`) copies thousands
//! of elements per call. aya 0.14 has no wrapper for it, so this module
//! issues the raw `bpf(2)` command.
//!
//! A kernel without batch support for arrays answers `EINVAL` (or
//! `ENOTSUPP`); the reader then falls back to one lookup per element, which
//! is slower but exact.

use std::{
    io,
    mem::size_of,
    os::fd::{AsFd as _, AsRawFd as _},
};

use aya::maps::{MapData, MapError, PerCpuArray};
use dockfw_common::Counter;

use crate::dataplane::counters::Totals;

/// `BPF_MAP_LOOKUP_BATCH` in `enum bpf_cmd` (include/uapi/linux/bpf.h).
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;

/// Elements per batch call: bounds the user buffers (a few MB with many
/// CPUs) while keeping the call count small.
const BATCH_ELEMENTS: u32 = 16_384;

/// `ENOTSUPP` (kernel-internal 524), returned by maps without batch ops.
const ENOTSUPP: i32 = 524;

/// The `batch` member of `union bpf_attr` (include/uapi/linux/bpf.h):
///
/// ```c
/// struct { /* struct used by BPF_MAP_*_BATCH commands */
///     __aligned_u64 in_batch;  /* start batch, NULL to start from beginning */
///     __aligned_u64 out_batch; /* output: next start batch */
///     __aligned_u64 keys;
///     __aligned_u64 values;
///     __u32 count;             /* input/output: # of elements */
///     __u32 map_fd;
///     __u64 elem_flags;
///     __u64 flags;
/// } batch;
/// ```
///
/// The kernel copies `size_of::<BatchAttr>()` bytes and treats the rest of
/// its (larger) `bpf_attr` as zero.
#[repr(C)]
#[derive(Debug, Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

const _: () = assert!(size_of::<BatchAttr>() == 56);

/// Why reading counters failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The batch syscall failed with something other than "unsupported".
    #[error("BPF_MAP_LOOKUP_BATCH on the counters failed: {0}")]
    Batch(#[source] io::Error),
    /// The number of possible CPUs is unknown.
    #[error("reading {path}: {source}")]
    Cpus {
        /// The file read.
        path: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The per-element fallback failed.
    #[error("reading a counter failed: {0}")]
    Lookup(#[from] MapError),
}

/// How the counters were read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadMethod {
    /// `BPF_MAP_LOOKUP_BATCH`.
    Batch,
    /// One `BPF_MAP_LOOKUP_ELEM` per element.
    PerElement,
}

/// Reads elements `0..count` of a per-CPU [`Counter`] array, summed over
/// CPUs. `count` is clamped to the map's size.
pub fn read_counters(
    map: &PerCpuArray<MapData, Counter>,
    count: u32,
) -> Result<(Vec<Totals>, ReadMethod), ReadError> {
    let count = count.min(map.len());
    match read_batched(map, count) {
        Ok(totals) => Ok((totals, ReadMethod::Batch)),
        Err(ReadError::Batch(error)) if unsupported(&error) => {
            Ok((read_per_element(map, count)?, ReadMethod::PerElement))
        }
        Err(error) => Err(error),
    }
}

fn unsupported(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EINVAL | ENOTSUPP))
}

/// One `BPF_MAP_LOOKUP_ELEM` per element (the baseline the batch read is
/// measured against, and the fallback on old kernels).
pub fn read_per_element(
    map: &PerCpuArray<MapData, Counter>,
    count: u32,
) -> Result<Vec<Totals>, ReadError> {
    (0..count.min(map.len()))
        .map(|index| Ok(sum(map.get(&index, 0)?.iter().copied())))
        .collect()
}

fn sum(values: impl IntoIterator<Item = Counter>) -> Totals {
    values
        .into_iter()
        .fold(Totals::default(), |total, value| Totals {
            packets: total.packets.wrapping_add(value.packets),
            bytes: total.bytes.wrapping_add(value.bytes),
        })
}

/// Reads elements `0..count` with `BPF_MAP_LOOKUP_BATCH`.
pub fn read_batched(
    map: &PerCpuArray<MapData, Counter>,
    count: u32,
) -> Result<Vec<Totals>, ReadError> {
    use aya::maps::IterableMap as _;

    let cpus = aya::util::nr_cpus().map_err(|(path, source)| ReadError::Cpus { path, source })?;
    // A per-CPU value is its size rounded up to 8 bytes, once per possible
    // CPU (`bpf_map_value_size`); `Counter` is 16 bytes already.
    const { assert!(size_of::<Counter>().is_multiple_of(8)) };
    let fd = map.map().fd().as_fd().as_raw_fd() as u32;
    let mut totals = Vec::with_capacity(count as usize);
    let chunk = BATCH_ELEMENTS.min(count.max(1)) as usize;
    let mut keys = vec![0u32; chunk];
    let mut values = vec![Counter::default(); chunk * cpus];
    // The key of the last element read; the next call continues after it.
    let mut last: Option<u32> = None;
    while (totals.len() as u32) < count {
        let wanted = (count - totals.len() as u32).min(chunk as u32);
        let in_key = last.unwrap_or(0);
        let mut out_key = 0u32;
        let mut attr = BatchAttr {
            in_batch: if last.is_some() {
                std::ptr::from_ref(&in_key) as u64
            } else {
                0
            },
            out_batch: std::ptr::from_mut(&mut out_key) as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: wanted,
            map_fd: fd,
            ..BatchAttr::default()
        };
        // SAFETY: `attr` is a valid `batch` member of `bpf_attr` for the
        // size passed; the kernel writes at most `wanted` keys (4 bytes each)
        // and values (`cpus` counters each) into buffers that hold
        // `chunk >= wanted` of each, and one key into `out_key`.
        let result = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_LOOKUP_BATCH,
                std::ptr::from_mut(&mut attr),
                size_of::<BatchAttr>(),
            )
        };
        // ENOENT: the map ended before `wanted` (the count read is valid).
        let ended = if result < 0 {
            let error = io::Error::last_os_error();
            if error.raw_os_error() != Some(libc::ENOENT) {
                return Err(ReadError::Batch(error));
            }
            true
        } else {
            false
        };
        // Arrays come back in key order from the start key on, so the
        // element read into slot `i` is index `totals.len()`.
        let read = (attr.count as usize).min(wanted as usize);
        for slot in 0..read {
            totals.push(sum(values[slot * cpus..(slot + 1) * cpus].iter().copied()));
        }
        if ended || read == 0 {
            break;
        }
        last = Some(out_key);
    }
    Ok(totals)
}
