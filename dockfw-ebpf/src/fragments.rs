//! Fragments: a later fragment carries no ports, so the port of its first
//! fragment is remembered (LRU) and applied to the rest of the datagram.

use dockfw_common::{FragKey, FragValue};

use crate::{classify::address_bytes, maps::DFW_FRAGS, parse::Packet};

#[inline(always)]
fn fragment_key(packet: &Packet) -> FragKey {
    FragKey {
        family: packet.family,
        proto: packet.proto,
        pad: 0,
        id: packet.frag_id,
        src: address_bytes(packet.src),
        dst: address_bytes(packet.dst),
    }
}

#[inline(always)]
pub fn lookup_fragment(packet: &Packet) -> Option<FragValue> {
    let found = DFW_FRAGS.get_ptr(fragment_key(packet))?;
    // SAFETY: a pointer from a successful lookup, copied out at once.
    Some(unsafe { *found })
}

#[inline(always)]
pub fn remember_fragment(packet: &Packet) {
    let value = FragValue {
        port_be: packet.dport_raw,
        pad: 0,
    };
    // A full LRU evicts the oldest datagram; its later fragments then pass as
    // untracked, which is the fail-open direction.
    let _ = DFW_FRAGS.insert(fragment_key(packet), value, 0);
}
