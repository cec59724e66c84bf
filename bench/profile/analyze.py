#!/usr/bin/env python3
"""Breaks the receiver's time down under a flood: by kernel symbol on the
NAPI thread, then, inside dockfw's program, by source line and by hottest
instruction (a stalled load shows as the instruction after it).

usage: analyze.py OUTDIR   (what profile-macro.sh wrote)"""
import bisect
import collections
import json
import re
import subprocess
import sys

d = sys.argv[1]
info = json.load(open(d + '/prog.map'))
base = info['base']
pairs = sorted(info['map'])
keys = [p[0] for p in pairs]

source, insns, current = {}, {}, None
for line in open(d + '/xlated.txt'):
    m = re.match(r'^; (.*) \[file:(\S+) line_num:(\d+)', line)
    if m:
        current = '%s:%s  %s' % (m.group(2).split('/')[-1], m.group(3), m.group(1)[:70])
        continue
    m = re.match(r'^\s*(\d+): (.*)', line)
    if m:
        insns[int(m.group(1))] = m.group(2)
        if current:
            source[int(m.group(1))] = current

script = subprocess.run(['perf', 'script', '-i', d + '/perf.data', '-F', 'comm,ip,sym'],
                        capture_output=True, text=True, check=True).stdout
napi = 0
symbols, lines, offsets = collections.Counter(), collections.Counter(), collections.Counter()
for row in script.splitlines():
    parts = row.split()
    if len(parts) < 2 or not parts[0].startswith('napi/'):
        continue
    napi += 1
    symbol = parts[2] if len(parts) > 2 else '[unknown]'
    symbols[symbol] += 1
    if symbol.endswith('_dockfw_xdp'):
        offset = int(parts[1], 16) - base
        index = bisect.bisect_right(keys, offset) - 1
        insn = pairs[index][1] if index >= 0 else -1
        lines[source.get(insn, 'insn %d' % insn)] += 1
        offsets[(offset, insn)] += 1

if napi == 0:
    sys.exit('no samples from the NAPI thread')
print('receiver (NAPI thread) samples: %d; share by symbol:' % napi)
for symbol, count in symbols.most_common(10):
    print('  %5.1f%%  %s' % (100 * count / napi, symbol))
print('inside dockfw_xdp, by source line (share of all receiver samples):')
for line, count in lines.most_common(15):
    print('  %5.1f%%  %s' % (100 * count / napi, line))
print('inside dockfw_xdp, hottest jited offsets:')
for (offset, insn), count in offsets.most_common(8):
    print('  %5.1f%%  +0x%x  insn %d: %s' % (100 * count / napi, offset, insn, insns.get(insn, '?')))
