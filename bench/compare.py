#!/usr/bin/env python3
"""Merge `switchboard-bench --output json` reports with a peer's reports
(same format, from `switchboard-bench --etcd URL` / `--mcp-mesh URL`) into
one markdown table, case by case, with the ratio.

Usage: compare.py PEER_NAME OURS.json[,OURS2.json...] PEER.json[,PEER2.json...] [--note TEXT]...

The advantage column is > 1 when Switchboard is better: ours / peer for
throughput, peer / ours for latency and memory.
"""

import json
import sys


def load(paths):
    rows, notes, machine = [], [], None
    for path in paths.split(","):
        with open(path) as f:
            report = json.load(f)
        for report in report if isinstance(report, list) else [report]:
            machine = machine or report.get("machine")
            if report.get("skipped"):
                notes.append(f"{report['scenario']}: skipped: {report['skipped']}")
            rows.extend(report["rows"])
            notes.extend(report.get("notes", []))
    return rows, notes, machine


def fmt(value, unit):
    if value is None:
        return "n/a"
    if unit == "/s":
        return f"{value / 1000:.1f}k/s" if value >= 10000 else f"{value:.0f}/s"
    if unit == "MB":
        return f"{value:.0f} MB"
    return f"{value:.0f} ms" if value >= 100 else f"{value:.2f} ms"


def metrics(row):
    out = {}
    if row and row.get("seconds", 0) > 0:
        out["throughput"] = (row["throughput_per_s"], "/s")
    lat = row.get("latency") if row else None
    if lat:
        out["p50"] = (lat["p50_ms"], "ms")
        out["p99"] = (lat["p99_ms"], "ms")
    reg = row.get("registry") if row else None
    if reg and reg.get("rss_kb"):
        out["RSS"] = (reg["rss_kb"] / 1024, "MB")
    return out


def main():
    args = sys.argv[1:]
    notes = []
    while "--note" in args:
        i = args.index("--note")
        notes.append(args[i + 1])
        del args[i : i + 2]
    if len(args) != 3:
        sys.exit(__doc__)
    peer, ours_paths, peer_paths = args
    ours, _, machine = load(ours_paths)
    theirs, peer_notes, _ = load(peer_paths)
    by_case = {r["case"]: r for r in theirs}
    print(f"| case | metric | Switchboard | {peer} | Switchboard advantage |")
    print("|---|---|---|---|---|")
    seen = set()
    for row in ours:
        other = by_case.get(row["case"])
        seen.add(row["case"])
        mine, their = metrics(row), metrics(other)
        for name in ("throughput", "p50", "p99", "RSS"):
            if name not in mine and name not in their:
                continue
            a = mine.get(name, (None, ""))[0]
            b = their.get(name, (None, ""))[0]
            unit = (mine.get(name) or their.get(name))[1]
            if a and b:
                ratio = a / b if name == "throughput" else b / a
                adv = f"{ratio:.0f}×" if ratio >= 100 else f"{ratio:.1f}×" if ratio >= 1.95 else f"{ratio:.2f}×"
            else:
                adv = "not measured" if other is None else "n/a"
            print(f"| {row['case']} | {name} | {fmt(a, unit)} | {fmt(b, unit)} | {adv} |")
    for row in theirs:
        if row["case"] not in seen:
            for name, (b, unit) in metrics(row).items():
                print(f"| {row['case']} | {name} | not measured | {fmt(b, unit)} | n/a |")
    print()
    if machine:
        print(f"Machine: {machine['cores']} cores, {machine['cpu']}; load generator on the same machine, loopback.")
    for note in notes + peer_notes:
        print(f"- {note}")


if __name__ == "__main__":
    main()
