//! Ctrl-C, SIGTERM and SIGHUP stop the demo between two steps and let the
//! guards clean up.
//!
//! The handler only sets a flag (and, from the second signal on, says that
//! cleaning up takes a moment; the third quits at once). It runs on the
//! main thread only: every other thread the demo starts blocks the signals
//! first ([`block_in_this_thread`]), so that a `BPF_PROG_RUN` of the flood
//! generator, which the kernel ends with EINTR when a signal is pending,
//! is never interrupted. The main thread keeps them unblocked because the
//! processes it starts inherit its signal mask (Rust's `Command` keeps the
//! parent's mask), and dockerd and dockfw must see the SIGTERM that stops
//! them.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// Set once a signal asked the demo to stop.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// Signals received so far.
static RECEIVED: AtomicU32 = AtomicU32::new(0);

/// Exit status after a third signal (128 + SIGINT, as a shell reports it).
const EXIT_INTERRUPTED: i32 = 130;
/// The signals that stop the demo.
const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

const FIRST: &[u8] = b"\ninterrupted: removing everything the demo created ...\n";
const SECOND: &[u8] = b"still cleaning up (a few seconds); once more quits at once and leaves \
    things behind for `dockfw-demo --teardown`\n";
const THIRD: &[u8] = b"quitting without cleaning up: run `dockfw-demo --teardown` as root\n";

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
    let count = RECEIVED.fetch_add(1, Ordering::SeqCst) + 1;
    let message = match count {
        1 => FIRST,
        2 => SECOND,
        _ => THIRD,
    };
    // SAFETY: write(2) and _exit(2) are async-signal-safe; the buffer is a
    // static byte string.
    unsafe {
        libc::write(libc::STDERR_FILENO, message.as_ptr().cast(), message.len());
        if count >= 3 {
            libc::_exit(EXIT_INTERRUPTED);
        }
    }
}

fn signal_set() -> libc::sigset_t {
    // SAFETY: an all-zero sigset_t is valid storage for sigemptyset, which
    // initialises it; sigaddset then only sets bits of our own set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in SIGNALS {
            libc::sigaddset(&mut set, signal);
        }
        set
    }
}

/// Installs the handler (restarting interrupted system calls) and makes
/// sure the signals are not blocked on the calling (main) thread, whatever
/// the parent handed down.
pub fn install() -> Result<(), String> {
    for signal in SIGNALS {
        // SAFETY: a zeroed sigaction with a handler that only touches
        // atomics and calls async-signal-safe functions.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(format!(
                "installing the handler of signal {signal}: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    let set = signal_set();
    // SAFETY: `set` is initialised; the old mask is not wanted.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(format!(
            "unblocking SIGINT/SIGTERM: {}",
            std::io::Error::from_raw_os_error(rc)
        ));
    }
    Ok(())
}

/// Blocks every signal on the calling thread, so they go to the main
/// thread. Every thread the demo starts calls it first.
pub fn block_in_this_thread() {
    // SAFETY: an all-zero sigset_t is valid storage for sigfillset.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        set
    };
    // SAFETY: `set` is initialised; the old mask is not wanted.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

/// Whether a signal asked the demo to stop.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Fails once a signal asked the demo to stop (for `?` between steps).
pub fn check() -> Result<(), String> {
    if interrupted() {
        Err("interrupted".into())
    } else {
        Ok(())
    }
}

/// Sleeps for `duration` in short steps, returning early (false) when a
/// signal arrives.
pub fn sleep(duration: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + duration;
    loop {
        if interrupted() {
            return false;
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(std::time::Duration::from_millis(50)));
    }
}
