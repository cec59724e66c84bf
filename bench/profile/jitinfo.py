#!/usr/bin/env python3
"""Reads a loaded BPF program's jited image and jited line table (BPF_OBJ_GET_INFO_BY_FD).

usage: jitinfo.py PROG_ID OUT_PREFIX -> OUT_PREFIX.jit (x86 bytes), OUT_PREFIX.map (json:
program address and [jited offset, xlated insn] pairs)."""
import ctypes, struct, sys, json
libc = ctypes.CDLL(None, use_errno=True)
SYS_bpf = 321
def bpf(cmd, attr):
    buf = ctypes.create_string_buffer(attr, 128)
    r = libc.syscall(SYS_bpf, cmd, buf, 128)
    if r < 0: raise OSError(ctypes.get_errno(), "bpf cmd %d" % cmd)
    return r
prog_id = int(sys.argv[1]); out = sys.argv[2]
fd = bpf(13, struct.pack('<III', prog_id, 0, 0))
INFO = 232
def get(info):
    b = ctypes.create_string_buffer(info, INFO)
    bpf(15, struct.pack('<IIQ', fd, INFO, ctypes.addressof(b)))
    return b.raw
raw = get(bytes(INFO))
jlen, = struct.unpack_from('<I', raw, 16)
nli, = struct.unpack_from('<I', raw, 148)
njli, = struct.unpack_from('<I', raw, 168)
nks, = struct.unpack_from('<I', raw, 104)
jit = ctypes.create_string_buffer(jlen)
li = ctypes.create_string_buffer(16 * nli)
jli = ctypes.create_string_buffer(8 * njli)
ks = ctypes.create_string_buffer(8 * max(nks,1))
info = bytearray(INFO)
struct.pack_into('<I', info, 16, jlen); struct.pack_into('<Q', info, 24, ctypes.addressof(jit))
struct.pack_into('<I', info, 104, nks); struct.pack_into('<Q', info, 112, ctypes.addressof(ks))
struct.pack_into('<I', info, 148, nli); struct.pack_into('<Q', info, 152, ctypes.addressof(li))
struct.pack_into('<Q', info, 160, ctypes.addressof(jli)); struct.pack_into('<I', info, 168, njli)
struct.pack_into('<III', info, 172, 16, 8, 0)
get(bytes(info))
open(out + '.jit', 'wb').write(jit.raw)
base = struct.unpack_from('<Q', ks.raw, 0)[0]
lines = [struct.unpack_from('<IIII', li.raw, 16*i) for i in range(nli)]
jaddr = [struct.unpack_from('<Q', jli.raw, 8*i)[0] for i in range(njli)]
json.dump({'base': base, 'map': [[jaddr[i] - base, lines[i][0]] for i in range(min(nli, njli))]}, open(out + '.map', 'w'))
print("jit", jlen, "lines", nli, njli, hex(base))
