//! Legitimate traffic under attack: HTTP requests to the published
//! container, from the generator's namespace (the same link as the flood),
//! at a fixed offered rate, while a SYN flood from random sources runs at a
//! given rate. Open loop, as users are: every request starts on schedule
//! whether or not the earlier ones were answered, and counts as served only
//! if the page arrived within the timeout.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    sync::Arc,
    time::{Duration, Instant},
};

use dockfw_tests::docker::TEST_PAGE;

use super::{
    flood::{Flooder, Kind},
    receiver::{self, GENERATOR_CPU},
    topology::{HOST_ADDR, Topology, WEB_PORT},
};

/// Real-time priority of the request workers, above the generator's: on the
/// generator's CPU they run the moment a request is due and only for as
/// long as it takes to send it, so the flood does not pause for them.
/// (Sharing the CPU as normal tasks, the flood paused whenever a client
/// ran, and the clients' packets met a ring the pause had just drained.)
const CLIENT_PRIORITY: i32 = 45;
/// Time the workers get to enter the namespace before the schedule starts.
const WARM_UP: Duration = Duration::from_millis(300);
/// The flood that runs beside the requests.
pub const FLOOD: Kind = Kind::SynRandom;

/// One point of the curve.
#[derive(Clone, Copy, Debug, Default)]
pub struct LegitPoint {
    /// The flood's target rate (None: no flood; Some(0): as fast as it goes).
    pub target_pps: Option<u64>,
    /// What the generator sent per second.
    pub flood_pps: f64,
    /// Requests started per second.
    pub offered_rps: f64,
    /// Requests served within the timeout per second.
    pub served_rps: f64,
}

/// The request load.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    /// Requests per second.
    pub rate: f64,
    /// Seconds per point.
    pub seconds: f64,
    /// A request not answered within this is lost.
    pub timeout: Duration,
}

/// One GET; whether the page came back in time.
fn request(addr: SocketAddr, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero()
        || stream.set_read_timeout(Some(left)).is_err()
        || stream.set_write_timeout(Some(left)).is_err()
        || stream
            .write_all(b"GET /index.html HTTP/1.0\r\nHost: bench\r\n\r\n")
            .is_err()
    {
        return false;
    }
    let mut body = Vec::new();
    if stream.read_to_end(&mut body).is_err() {
        return false;
    }
    Instant::now() <= deadline && String::from_utf8_lossy(&body).contains(TEST_PAGE.trim())
}

/// Runs the request load for `load.seconds`, with a flood at `target_pps`
/// beside it (None: none; Some(0): unpaced) sent from this thread.
pub fn point(
    topology: &Topology,
    flooder: &mut Flooder,
    load: Load,
    target_pps: Option<u64>,
) -> Result<LegitPoint, String> {
    let addr = SocketAddr::from((HOST_ADDR, WEB_PORT));
    // Enough workers that none is still busy with its last request when
    // its next slot comes: each slot is `workers / rate` seconds apart.
    let workers = ((load.rate * (load.timeout.as_secs_f64() + 0.5)).ceil() as usize).max(1);
    let gap = Duration::from_secs_f64(workers as f64 / load.rate);
    let start = Instant::now() + WARM_UP;
    let end = start + Duration::from_secs_f64(load.seconds);
    let gen_ns = Arc::new(topology.gen_ns.path());
    let mut handles = Vec::with_capacity(workers);
    for worker in 0..workers {
        let gen_ns = Arc::clone(&gen_ns);
        let first = start + Duration::from_secs_f64(worker as f64 / load.rate);
        handles.push(std::thread::spawn(move || -> Result<(u64, u64), String> {
            enter(&gen_ns)?;
            receiver::set_affinity(0, GENERATOR_CPU)?;
            receiver::set_realtime(0, Some(CLIENT_PRIORITY))?;
            let (mut started, mut served) = (0, 0);
            let mut slot = first;
            while slot < end {
                std::thread::sleep(slot.saturating_duration_since(Instant::now()));
                started += 1;
                served += u64::from(request(addr, load.timeout));
                slot += gap;
            }
            Ok((started, served))
        }));
    }
    std::thread::sleep(start.saturating_duration_since(Instant::now()));
    let flood_pps = match target_pps {
        None => {
            std::thread::sleep(end.saturating_duration_since(Instant::now()));
            0.0
        }
        Some(rate) => {
            let rate = (rate > 0).then_some(rate);
            let bound = rate.unwrap_or(40_000_000) as f64 * load.seconds * 1.1;
            flooder
                .send(topology, FLOOD, rate, bound as u64, load.seconds, true)?
                .pps()
        }
    };
    let (mut started, mut served) = (0, 0);
    for handle in handles {
        let (s, v) = handle
            .join()
            .map_err(|_| "a request worker panicked".to_string())??;
        started += s;
        served += v;
    }
    Ok(LegitPoint {
        target_pps,
        flood_pps,
        offered_rps: started as f64 / load.seconds,
        served_rps: served as f64 / load.seconds,
    })
}

/// Moves the calling thread into the network namespace at `path` for good
/// (a worker thread that ends there).
fn enter(path: &std::path::Path) -> Result<(), String> {
    use std::os::fd::AsRawFd as _;
    let file = std::fs::File::open(path)
        .map_err(|error| format!("opening {}: {error}", path.display()))?;
    // SAFETY: an open namespace fd for the call's duration.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(format!(
            "setns {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}
