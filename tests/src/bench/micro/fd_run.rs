//! BPF_PROG_TEST_RUN on a program we only hold by file descriptor (a
//! program someone else loaded, opened by id). aya 0.14 can wrap such a
//! program as `Xdp` only with an `XdpAttachType`, which it does not export,
//! so the syscall is made directly. The attribute block is the `test` member
//! of `union bpf_attr` (include/uapi/linux/bpf.h, layout stable since 5.10).

use std::{
    io,
    os::fd::{AsRawFd, BorrowedFd},
    time::Duration,
};

/// `BPF_PROG_TEST_RUN` command number.
const BPF_PROG_TEST_RUN: libc::c_long = 10;

#[repr(C)]
#[derive(Default)]
struct TestAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    pad: u32,
}

/// Runs `frame` through the XDP program `fd` `repeat` times: the return
/// value and the kernel's mean duration.
pub fn run(fd: BorrowedFd<'_>, frame: &[u8], repeat: u32) -> io::Result<(u32, Duration)> {
    let mut out = vec![0u8; frame.len() + 256];
    let mut attr = TestAttr {
        prog_fd: fd.as_raw_fd() as u32,
        data_size_in: frame.len() as u32,
        data_size_out: out.len() as u32,
        data_in: frame.as_ptr() as u64,
        data_out: out.as_mut_ptr() as u64,
        repeat,
        ..TestAttr::default()
    };
    // SAFETY: the attribute block is the kernel's `test` layout; the buffers
    // it points to live until the call returns and have the sizes given.
    let result = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_TEST_RUN,
            &raw mut attr,
            size_of::<TestAttr>() as libc::c_uint,
        )
    };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((attr.retval, Duration::from_nanos(u64::from(attr.duration))))
}
