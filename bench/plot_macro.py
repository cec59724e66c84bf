#!/usr/bin/python3
"""Charts of the macro benchmark, from bench/results/macro.json.

usage: plot_macro.py MACRO_JSON OUT_DIR

Writes (and prints the paths of):
  macro-cpu-per-drop.png  receiver CPU ns per dropped packet, per variant and flood
  macro-drop-rate.png     dropped vs offered Mpps, per variant and flood
  macro-legit.png         legitimate HTTP served under floods of increasing rate

Uses Debian's python3-matplotlib (installed by `cargo xtask setup`) with the
Agg backend and the DejaVu font matplotlib ships: no display, no system font
lookup.
"""

import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
matplotlib.rcParams["font.family"] = "DejaVu Sans"

import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

COLOURS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52"]
DPI = 120


def kinds_of(results):
    """Flood kinds in the order the benchmark ran them."""
    order = []
    for variant in results["variants"]:
        for kind in variant["kinds"]:
            if kind["key"] not in [key for key, _ in order]:
                order.append((kind["key"], kind["label"]))
    return order


def kind_of(variant, key):
    """A variant's medians under one flood kind, or None."""
    return next((kind for kind in variant["kinds"] if kind["key"] == key), None)


def grouped_bars(ax, results, value, kinds):
    """Horizontal bars: one group per variant, one bar per flood kind."""
    variants = results["variants"]
    height = 0.8 / max(len(kinds), 1)
    for k, (key, label) in enumerate(kinds):
        ys, xs = [], []
        for i, variant in enumerate(variants):
            kind = kind_of(variant, key)
            if kind is None:
                continue
            ys.append(i + (k - (len(kinds) - 1) / 2) * height)
            xs.append(value(kind))
        bars = ax.barh(ys, xs, height=height, label=label, color=COLOURS[k % len(COLOURS)])
        ax.bar_label(bars, fmt="%.0f" if max(xs or [0]) > 20 else "%.2f", fontsize=7, padding=2)
    ax.set_yticks(range(len(variants)))
    ax.set_yticklabels([variant["key"] for variant in variants])
    ax.invert_yaxis()
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="x", alpha=0.3)


def cpu_per_drop(results, out_dir):
    kinds = kinds_of(results)
    fig, ax = plt.subplots(figsize=(12, 6))
    grouped_bars(ax, results, lambda kind: kind["ns_per_drop"], kinds)
    ax.set_xscale("log")
    ax.set_xlim(left=10)
    ax.set_xlabel("receiver CPU ns per dropped packet (log scale; lower is better)")
    ax.set_title("Where a flood packet is dropped, and what it costs the receiver")
    fig.tight_layout()
    path = os.path.join(out_dir, "macro-cpu-per-drop.png")
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def drop_rate(results, out_dir):
    kinds = kinds_of(results)
    fig, ax = plt.subplots(figsize=(12, 6))
    grouped_bars(ax, results, lambda kind: kind["dropped_pps"] / 1e6, kinds)
    variants = results["variants"]
    height = 0.8 / max(len(kinds), 1)
    for k, (key, _) in enumerate(kinds):
        for i, variant in enumerate(variants):
            kind = kind_of(variant, key)
            if kind is not None:
                y = i + (k - (len(kinds) - 1) / 2) * height
                ax.plot([kind["offered_pps"] / 1e6], [y], marker="|", color="black", markersize=8)
    ax.set_xlabel("dropped Mpps (bars) and offered Mpps (ticks); one receiver CPU")
    ax.set_title("Flood packets dropped per second")
    fig.tight_layout()
    path = os.path.join(out_dir, "macro-drop-rate.png")
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def legit(results, out_dir):
    curves = results.get("legit") or []
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(8, 5))
    for n, curve in enumerate(curves):
        points = curve["points"]
        base = points[0]["served_rps"] if points else 0
        if base <= 0:
            continue
        xs = [point["flood_pps"] / 1e6 for point in points]
        ys = [100.0 * point["served_rps"] / base for point in points]
        ax.plot(xs, ys, marker="o", label=curve["label"], color=COLOURS[n % len(COLOURS)])
    ax.axhline(90, color="grey", linestyle="--", linewidth=1, label="90% target")
    ax.set_xlabel("SYN flood from random sources, offered Mpps")
    ax.set_ylabel("HTTP requests served, % of the no-attack rate")
    ax.set_ylim(0, 110)
    ax.set_title("Legitimate traffic under attack")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    path = os.path.join(out_dir, "macro-legit.png")
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as file:
        results = json.load(file)
    out_dir = sys.argv[2]
    for path in (cpu_per_drop(results, out_dir), drop_rate(results, out_dir), legit(results, out_dir)):
        if path:
            print(path)


if __name__ == "__main__":
    main()
