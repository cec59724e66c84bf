//! The host's local addresses as netfilter's `addrtype LOCAL` match sees
//! them: the entries of type `local` in the kernel's `local` routing table
//! (every interface address, the loopback /8, AnyIP routes such as
//! `ip route add local 192.0.2.0/24 dev lo`), read with one rtnetlink dump
//! per family.
//!
//! Docker DNATs a port published on the wildcard address only for such
//! destinations; dockfw limits its wildcard bindings to the same set.

use std::{
    io,
    net::{Ipv4Addr, Ipv6Addr},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

const NLMSG_HDRLEN: usize = 16;
const RTMSG_LEN: usize = 12;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const RTA_DST: u16 = 1;
const RTA_TABLE: u16 = 15;
const RTN_LOCAL: u8 = 2;
const RT_TABLE_LOCAL: u32 = 255;

/// The local prefixes of this network namespace, IPv4 then IPv6, each in the
/// kernel's order with loopback prefixes last (packets from an external
/// interface are not addressed to them).
pub fn local_prefixes() -> io::Result<Vec<IpNet>> {
    let socket = RouteSocket::open()?;
    let mut prefixes = Vec::new();
    for (seq, family) in [(1, libc::AF_INET), (2, libc::AF_INET6)] {
        socket.request_dump(seq, family as u8)?;
        let mut done = false;
        while !done {
            let message = socket.receive()?;
            done = parse_route_dump(&message, seq, &mut prefixes)?;
        }
    }
    Ok(ordered(prefixes))
}

/// IPv4 then IPv6, loopback last, each prefix once (a link-local address
/// on two interfaces has a local route per interface).
fn ordered(mut prefixes: Vec<IpNet>) -> Vec<IpNet> {
    prefixes.sort_by_key(|net| match net {
        IpNet::V4(net) => (0, net.addr().is_loopback()),
        IpNet::V6(net) => (1, net.addr().is_loopback()),
    });
    let mut seen = std::collections::HashSet::new();
    prefixes.retain(|net| seen.insert(*net));
    prefixes
}

struct RouteSocket(OwnedFd);

impl RouteSocket {
    fn open() -> io::Result<Self> {
        // SAFETY: plain socket(2); the descriptor is owned right after.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor nothing else owns.
        let socket = Self(unsafe { OwnedFd::from_raw_fd(fd) });
        // A dump that stalls (it never does in practice) must not hang the
        // daemon's loop.
        let timeout = libc::timeval {
            tv_sec: 2,
            tv_usec: 0,
        };
        // SAFETY: setsockopt with a timeval of the size passed.
        let result = unsafe {
            libc::setsockopt(
                socket.0.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const timeout).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if result < 0 {
            return Err(io::Error::last_os_error());
        }
        // Ask the kernel to dump the local table only (Linux 4.20+): a
        // router's main table may hold a million routes. Older kernels dump
        // every table and the parser keeps the local one.
        let strict: libc::c_int = 1;
        // SAFETY: setsockopt with an int of the size passed.
        unsafe {
            libc::setsockopt(
                socket.0.as_raw_fd(),
                libc::SOL_NETLINK,
                libc::NETLINK_GET_STRICT_CHK,
                (&raw const strict).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        Ok(socket)
    }

    fn request_dump(&self, seq: u32, family: u8) -> io::Result<()> {
        let mut request = [0u8; NLMSG_HDRLEN + RTMSG_LEN];
        request[0..4].copy_from_slice(&((NLMSG_HDRLEN + RTMSG_LEN) as u32).to_ne_bytes());
        request[4..6].copy_from_slice(&RTM_GETROUTE.to_ne_bytes());
        request[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
        request[8..12].copy_from_slice(&seq.to_ne_bytes());
        request[NLMSG_HDRLEN] = family;
        request[NLMSG_HDRLEN + 4] = RT_TABLE_LOCAL as u8;
        request[NLMSG_HDRLEN + 7] = RTN_LOCAL;
        // SAFETY: sending a buffer of the length passed to the kernel
        // (destination: the socket's default, the kernel).
        let sent = unsafe {
            libc::send(
                self.0.as_raw_fd(),
                request.as_ptr().cast(),
                request.len(),
                0,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn receive(&self) -> io::Result<Vec<u8>> {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: receiving into a buffer of the length passed.
            let received = unsafe {
                libc::recv(
                    self.0.as_raw_fd(),
                    buffer.as_mut_ptr().cast(),
                    buffer.len(),
                    0,
                )
            };
            if received < 0 {
                let error = io::Error::last_os_error();
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(error);
            }
            buffer.truncate(received as usize);
            return Ok(buffer);
        }
    }
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn bad(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed rtnetlink route dump: {what}"),
    )
}

/// Adds the local routes of one datagram of a dump answering `seq` to
/// `prefixes`. Returns true at the dump's end.
pub fn parse_route_dump(buffer: &[u8], seq: u32, prefixes: &mut Vec<IpNet>) -> io::Result<bool> {
    let mut at = 0;
    while at + NLMSG_HDRLEN <= buffer.len() {
        let len = u32_at(buffer, at) as usize;
        if len < NLMSG_HDRLEN || at + len > buffer.len() {
            return Err(bad("message length"));
        }
        let kind = u16_at(buffer, at + 4);
        let message = &buffer[at..at + len];
        at += len.next_multiple_of(4);
        if u32_at(message, 8) != seq {
            continue;
        }
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let code = if message.len() >= NLMSG_HDRLEN + 4 {
                    i32::from_ne_bytes(
                        message[NLMSG_HDRLEN..NLMSG_HDRLEN + 4]
                            .try_into()
                            .unwrap_or_default(),
                    )
                } else {
                    0
                };
                if code == 0 {
                    return Ok(true);
                }
                return Err(io::Error::from_raw_os_error(-code));
            }
            RTM_NEWROUTE => {
                if let Some(net) = local_route(&message[NLMSG_HDRLEN..])? {
                    prefixes.push(net);
                }
            }
            _ => {}
        }
    }
    Ok(false)
}

/// The destination of a route message if it is a `local` route of the local
/// table.
fn local_route(body: &[u8]) -> io::Result<Option<IpNet>> {
    if body.len() < RTMSG_LEN {
        return Err(bad("route message"));
    }
    let (family, dst_len, table, kind) = (body[0], body[1], body[4], body[7]);
    let mut table = u32::from(table);
    let mut dst: Option<&[u8]> = None;
    let mut at = RTMSG_LEN;
    while at + 4 <= body.len() {
        let len = usize::from(u16_at(body, at));
        if len < 4 || at + len > body.len() {
            return Err(bad("route attribute"));
        }
        let data = &body[at + 4..at + len];
        match u16_at(body, at + 2) {
            RTA_DST => dst = Some(data),
            RTA_TABLE if data.len() == 4 => table = u32_at(data, 0),
            _ => {}
        }
        at += len.next_multiple_of(4);
    }
    if kind != RTN_LOCAL || table != RT_TABLE_LOCAL {
        return Ok(None);
    }
    let net = match (i32::from(family), dst) {
        (libc::AF_INET, Some(&[a, b, c, d])) => {
            Ipv4Net::new(Ipv4Addr::new(a, b, c, d), dst_len).map(|net| IpNet::V4(net.trunc()))
        }
        (libc::AF_INET6, Some(bytes)) if bytes.len() == 16 => {
            let octets: [u8; 16] = bytes.try_into().unwrap_or_default();
            Ipv6Net::new(Ipv6Addr::from(octets), dst_len).map(|net| IpNet::V6(net.trunc()))
        }
        _ => return Err(bad("local route without a destination")),
    };
    net.map(Some).map_err(|_| bad("prefix length"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(kind: u16, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(data);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out
    }

    fn message(kind: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(&2u16.to_ne_bytes());
        out.extend_from_slice(&seq.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes());
        out.extend_from_slice(body);
        out
    }

    fn route(family: i32, dst: &[u8], dst_len: u8, table: u32, kind: u8) -> Vec<u8> {
        let mut body = vec![family as u8, dst_len, 0, 0, 254, 2, 254, kind, 0, 0, 0, 0];
        body.extend(attr(RTA_TABLE, &table.to_ne_bytes()));
        body.extend(attr(RTA_DST, dst));
        message(RTM_NEWROUTE, 7, &body)
    }

    #[test]
    fn local_routes_of_the_local_table_are_kept_and_the_rest_skipped() {
        let v6: Ipv6Addr = "2001:db8::5".parse().unwrap();
        let mut dump = Vec::new();
        dump.extend(route(libc::AF_INET, &[10, 0, 0, 1], 32, 255, RTN_LOCAL));
        dump.extend(route(libc::AF_INET, &[127, 0, 0, 0], 8, 255, RTN_LOCAL));
        // Broadcast entries of the local table, and main-table routes.
        dump.extend(route(libc::AF_INET, &[10, 0, 0, 255], 32, 255, 3));
        dump.extend(route(libc::AF_INET, &[10, 0, 0, 0], 24, 254, 1));
        // A local route in another table is not what addrtype consults.
        dump.extend(route(libc::AF_INET, &[10, 9, 9, 9], 32, 100, RTN_LOCAL));
        dump.extend(route(libc::AF_INET6, &v6.octets(), 128, 255, RTN_LOCAL));
        // Another request's answer is not ours.
        dump.extend(message(RTM_NEWROUTE, 8, &[0; RTMSG_LEN]));
        let mut found = Vec::new();
        assert!(!parse_route_dump(&dump, 7, &mut found).unwrap());
        let expected: Vec<IpNet> = ["10.0.0.1/32", "127.0.0.0/8", "2001:db8::5/128"]
            .iter()
            .map(|net| net.parse().unwrap())
            .collect();
        assert_eq!(found, expected);
        assert!(parse_route_dump(&message(NLMSG_DONE, 7, &[0; 4]), 7, &mut found).unwrap());
    }

    #[test]
    fn errors_and_malformed_dumps_are_errors_not_empty_sets() {
        let mut found = Vec::new();
        let error = message(NLMSG_ERROR, 7, &(-libc::EPERM).to_ne_bytes());
        let error = parse_route_dump(&error, 7, &mut found).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::EPERM));
        let mut cut = route(libc::AF_INET, &[10, 0, 0, 1], 32, 255, RTN_LOCAL);
        cut.truncate(cut.len() - 2);
        assert!(parse_route_dump(&cut, 7, &mut found).is_err());
        let no_dst = message(
            RTM_NEWROUTE,
            7,
            &[
                libc::AF_INET as u8,
                32,
                0,
                0,
                255,
                2,
                254,
                RTN_LOCAL,
                0,
                0,
                0,
                0,
            ],
        );
        assert!(parse_route_dump(&no_dst, 7, &mut found).is_err());
        let bad_len = route(libc::AF_INET, &[10, 0, 0, 1], 33, 255, RTN_LOCAL);
        assert!(parse_route_dump(&bad_len, 7, &mut found).is_err());
        assert!(found.is_empty());
    }

    #[test]
    fn prefixes_are_ordered_by_family_loopback_last_each_once() {
        let nets =
            |list: &[&str]| -> Vec<IpNet> { list.iter().map(|net| net.parse().unwrap()).collect() };
        let dump = nets(&[
            "::1/128",
            "fe80::1/128",
            "127.0.0.0/8",
            "10.0.0.1/32",
            "fe80::1/128",
            "172.17.0.1/32",
            "10.0.0.1/32",
        ]);
        assert_eq!(
            ordered(dump),
            nets(&[
                "10.0.0.1/32",
                "172.17.0.1/32",
                "127.0.0.0/8",
                "fe80::1/128",
                "::1/128"
            ])
        );
    }

    #[test]
    fn this_namespace_has_its_loopback_prefixes() {
        // Every network namespace has lo; the tests run where it is up.
        let prefixes = local_prefixes().unwrap();
        let loopback: IpNet = "127.0.0.0/8".parse().unwrap();
        assert!(prefixes.contains(&loopback), "{prefixes:?}");
    }
}
