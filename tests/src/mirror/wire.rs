//! Real packets for the differential test: frames with valid checksums
//! (conntrack marks a bad TCP checksum INVALID), sent raw from the client
//! namespace, and captured where they are delivered (each container's
//! `eth0`, the far namespace) with AF_PACKET sockets.

use std::{
    collections::BTreeSet,
    ffi::CString,
    fs::File,
    net::IpAddr,
    os::fd::AsRawFd,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use super::rules::Packet;
use crate::frame::{Frame, checksum};

/// What identifies a delivered packet: source, source port, IP protocol.
pub type Seen = (IpAddr, u16, u8);

/// Ethernet header length.
const ETH: usize = 14;
/// `ETH_P_ALL` in network order, as `socket`/`bind` take it.
const ETH_P_ALL_BE: u16 = (libc::ETH_P_ALL as u16).to_be();

/// The bytes of a packet, with the given MAC addresses and valid checksums.
pub fn frame(packet: &Packet, dst_mac: [u8; 6], src_mac: [u8; 6]) -> Vec<u8> {
    let (src, dst) = (packet.src.to_string(), packet.dst.to_string());
    let built = if packet.proto == "tcp" {
        Frame::tcp(&src, packet.sport, &dst, packet.dport, packet.flags)
    } else {
        Frame::udp(&src, packet.sport, &dst, packet.dport).payload(8)
    };
    let mut bytes = built.build();
    bytes[..6].copy_from_slice(&dst_mac);
    bytes[6..12].copy_from_slice(&src_mac);
    fix_l4_checksum(&mut bytes);
    bytes
}

/// Computes the TCP or UDP checksum over the pseudo-header (IPv4 without
/// options or IPv6 without extension headers).
fn fix_l4_checksum(bytes: &mut [u8]) {
    let v6 = u16::from_be_bytes([bytes[12], bytes[13]]) == 0x86dd;
    let (proto, l4, mut pseudo) = match u16::from_be_bytes([bytes[12], bytes[13]]) {
        0x0800 => {
            let ihl = usize::from(bytes[ETH] & 0x0f) * 4;
            let mut pseudo = bytes[ETH + 12..ETH + 20].to_vec();
            pseudo.extend_from_slice(&[0, bytes[ETH + 9]]);
            (bytes[ETH + 9], ETH + ihl, pseudo)
        }
        _ => {
            let mut pseudo = bytes[ETH + 8..ETH + 40].to_vec();
            pseudo.extend_from_slice(&[0, 0]);
            (bytes[ETH + 6], ETH + 40, pseudo)
        }
    };
    let len = (bytes.len() - l4) as u16;
    pseudo.extend_from_slice(&len.to_be_bytes());
    if v6 {
        // IPv6: a 32-bit length, then three zero bytes and the next header.
        pseudo.extend_from_slice(&[0, 0, 0, proto]);
    }
    let at = l4 + if proto == 6 { 16 } else { 6 };
    bytes[at] = 0;
    bytes[at + 1] = 0;
    pseudo.extend_from_slice(&bytes[l4..]);
    let mut sum = checksum(&pseudo);
    if proto == 17 && sum == 0 {
        sum = 0xffff;
    }
    bytes[at..at + 2].copy_from_slice(&sum.to_be_bytes());
}

fn setns(path: &Path) {
    let file = File::open(path).unwrap_or_else(|error| panic!("open {}: {error}", path.display()));
    // SAFETY: an open namespace descriptor; only this thread moves.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        panic!(
            "setns {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
    }
}

/// An AF_PACKET socket bound to `iface` in the calling thread's namespace.
fn packet_socket(iface: &str) -> i32 {
    let name = CString::new(iface).unwrap_or_else(|_| panic!("bad interface name {iface}"));
    // SAFETY: plain socket/if_nametoindex/bind calls with valid arguments.
    unsafe {
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(ETH_P_ALL_BE));
        assert!(
            fd >= 0,
            "AF_PACKET socket: {}",
            std::io::Error::last_os_error()
        );
        let ifindex = libc::if_nametoindex(name.as_ptr());
        assert!(ifindex != 0, "no interface {iface}");
        let mut addr: libc::sockaddr_ll = std::mem::zeroed();
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = ETH_P_ALL_BE;
        addr.sll_ifindex = ifindex as i32;
        let rc = libc::bind(
            fd,
            std::ptr::from_ref(&addr).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        );
        assert!(
            rc == 0,
            "bind to {iface}: {}",
            std::io::Error::last_os_error()
        );
        fd
    }
}

/// Sends frames out of one interface of one namespace.
pub struct Sender {
    fd: i32,
}

impl Sender {
    /// A sender on `iface` of the namespace at `ns`.
    pub fn new(ns: &Path, iface: &str) -> Self {
        let ns = ns.to_path_buf();
        let iface = iface.to_owned();
        // A short-lived thread enters the namespace: the socket stays in it.
        let fd = std::thread::spawn(move || {
            setns(&ns);
            packet_socket(&iface)
        })
        .join()
        .unwrap_or_else(|_| panic!("creating the sender"));
        Self { fd }
    }

    /// Sends every frame, pacing a little so no queue overflows.
    pub fn send(&self, frames: &[Vec<u8>]) {
        for (index, frame) in frames.iter().enumerate() {
            // SAFETY: sending a buffer we own on our socket.
            let sent = unsafe { libc::send(self.fd, frame.as_ptr().cast(), frame.len(), 0) };
            assert!(sent >= 0, "send: {}", std::io::Error::last_os_error());
            if index % 16 == 15 {
                std::thread::sleep(Duration::from_micros(500));
            }
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        // SAFETY: closing our descriptor once.
        unsafe { libc::close(self.fd) };
    }
}

/// What a frame carries, if it is IPv4/IPv6 TCP/UDP.
fn parse(frame: &[u8]) -> Option<Seen> {
    match u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]) {
        0x0800 => {
            let ihl = usize::from(frame.get(ETH)? & 0x0f) * 4;
            let proto = *frame.get(ETH + 9)?;
            let src: [u8; 4] = frame.get(ETH + 12..ETH + 16)?.try_into().ok()?;
            let l4 = ETH + ihl;
            let sport = u16::from_be_bytes([*frame.get(l4)?, *frame.get(l4 + 1)?]);
            Some((IpAddr::from(src), sport, proto))
        }
        0x86dd => {
            let proto = *frame.get(ETH + 6)?;
            let src: [u8; 16] = frame.get(ETH + 8..ETH + 24)?.try_into().ok()?;
            let sport = u16::from_be_bytes([*frame.get(ETH + 40)?, *frame.get(ETH + 41)?]);
            Some((IpAddr::from(src), sport, proto))
        }
        _ => None,
    }
}

/// Records every TCP/UDP packet arriving on interfaces of several
/// namespaces, until dropped.
pub struct Capture {
    seen: Arc<Mutex<BTreeSet<Seen>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Capture {
    /// Starts one capture thread per (namespace path, interface).
    pub fn start(points: &[(PathBuf, String)]) -> Self {
        let seen = Arc::new(Mutex::new(BTreeSet::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for (ns, iface) in points {
            let (ns_inner, iface_inner) = (ns.clone(), iface.clone());
            let (seen, stop) = (Arc::clone(&seen), Arc::clone(&stop));
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            threads.push(std::thread::spawn(move || {
                setns(&ns_inner);
                let fd = packet_socket(&iface_inner);
                let timeout = libc::timeval {
                    tv_sec: 0,
                    tv_usec: 50_000,
                };
                // SAFETY: setting a receive timeout on our socket.
                unsafe {
                    libc::setsockopt(
                        fd,
                        libc::SOL_SOCKET,
                        libc::SO_RCVTIMEO,
                        std::ptr::from_ref(&timeout).cast(),
                        std::mem::size_of::<libc::timeval>() as u32,
                    );
                }
                let _ = ready_tx.send(());
                let mut buffer = vec![0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    // SAFETY: zeroed sockaddr_ll is a valid out-parameter.
                    let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
                    let mut len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
                    // SAFETY: receiving into our buffer on our socket.
                    let got = unsafe {
                        libc::recvfrom(
                            fd,
                            buffer.as_mut_ptr().cast(),
                            buffer.len(),
                            0,
                            std::ptr::from_mut(&mut from).cast(),
                            &mut len,
                        )
                    };
                    if got <= 0 || from.sll_pkttype == libc::PACKET_OUTGOING {
                        continue;
                    }
                    if let Some(packet) = parse(&buffer[..got as usize])
                        && let Ok(mut seen) = seen.lock()
                    {
                        seen.insert(packet);
                    }
                }
                // SAFETY: closing our descriptor once.
                unsafe { libc::close(fd) };
            }));
            if ready_rx.recv_timeout(Duration::from_secs(5)).is_err() {
                panic!("capture on {iface} in {} did not start", ns.display());
            }
        }
        Self {
            seen,
            stop,
            threads,
        }
    }

    /// Whether a packet was delivered somewhere the capture listens.
    pub fn saw(&self, key: &Seen) -> bool {
        self.seen
            .lock()
            .map(|seen| seen.contains(key))
            .unwrap_or(false)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// The IP protocol number of `tcp`/`udp`.
pub fn proto_number(proto: &str) -> u8 {
    if proto == "tcp" { 6 } else { 17 }
}
