#!/usr/bin/env python3
"""The sizing table of `bench/compare-replicas`: the four replica figures next
to one registry on sled and etcd's raw puts, from the JSON reports in DIR.

Usage: compare_replicas.py DIR HB_REPLICAS KILL_REPLICAS
"""

import json
import os
import sys


def report(directory, name):
    path = os.path.join(directory, f"{name}.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def row(rep, starts):
    for r in (rep or {}).get("rows", []):
        if r["case"].startswith(starts):
            return r
    return None


def rate(r):
    return f"{r['throughput_per_s'] / 1000:.1f}k/s" if r else "n/a"


def lat(r, key="p99_ms"):
    return f"{r['latency'][key]:.1f} ms" if r and r.get("latency") else "n/a"


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    directory, hb_replicas, kill_replicas = sys.argv[1:]
    loads = {}
    with open(os.path.join(directory, "load")) as f:
        for line in f:
            name, *avg = line.split()
            loads[name] = " ".join(avg)
    get = lambda name: report(directory, name)  # noqa: E731
    sled_hb, rep_hb = row(get("sled-hb"), "heartbeat saturate"), row(get("replicas-hb"), "heartbeat saturate")
    extra = (rep_hb or {}).get("extra", {})
    writes = "n/a"
    if "etcd_puts" in extra:
        writes = f"{extra['etcd_puts']} puts, {extra['etcd_txns']} txns, {extra['etcd_deletes']} deletes"
    acks = (rep_hb["count"] if rep_hb else 0) + (row(get("replicas-hb"), "heartbeat at") or {}).get("count", 0)
    sled_reg, rep_reg = row(get("sled-reg"), "register"), row(get("replicas-reg"), "register")
    etcd_reg = row(get("etcd-reg"), "register")
    sled_w, rep_w = row(get("sled-watch"), "change"), row(get("replicas-watch"), "change")
    kill = row(get("replicas-kill"), "replica kill")
    kill_p99 = kill["latency"]["p99_ms"] if kill and kill.get("latency") else None
    hb_ok = rep_hb and rep_hb["throughput_per_s"] >= 100_000
    print(f"| figure | {hb_replicas} replicas on etcd | one registry (sled) | etcd | target | load average |")
    print("|---|---|---|---|---|---|")
    print(
        f"| heartbeats/s, saturated ({rep_hb['case'].split(', ')[-1] if rep_hb else '?'}) | {rate(rep_hb)} "
        f"| {rate(sled_hb)} | – | ≥ 100k/s: {'met' if hb_ok else 'missed'} "
        f"| {loads.get('replicas-hb', '?')} / {loads.get('sled-hb', '?')} |"
    )
    print(
        f"| etcd writes during {acks} heartbeats | {writes} | – | – | 0: "
        f"{'met' if extra.get('etcd_puts') == 0 and extra.get('etcd_txns') == 0 else 'see the figure'} "
        f"| {loads.get('replicas-hb', '?')} |"
    )
    print(
        f"| durable registrations/s, p99 | {rate(rep_reg)}, {lat(rep_reg)} | {rate(sled_reg)}, {lat(sled_reg)} "
        f"| {rate(etcd_reg)}, {lat(etcd_reg)} (raw puts) | – "
        f"| {loads.get('replicas-reg', '?')} / {loads.get('sled-reg', '?')} / {loads.get('etcd-reg', '?')} |"
    )
    w_ok = rep_w and rep_w.get("latency") and rep_w["latency"]["p99_ms"] <= 25
    print(
        f"| {rep_w['case'] if rep_w else 'change → watchers'}: p50 / p99 | {lat(rep_w, 'p50_ms')} / {lat(rep_w)} "
        f"| {lat(sled_w, 'p50_ms')} / {lat(sled_w)} | – | p99 ≤ 25 ms: {'met' if w_ok else 'missed'} "
        f"| {loads.get('replicas-watch', '?')} / {loads.get('sled-watch', '?')} |"
    )
    if kill:
        print(
            f"| replica kill -9 → its agents re-homed and HEALTHY ({kill['count']} kills, {kill_replicas} replicas, "
            f"~{kill['extra'].get('agents_moved_per_kill', '?')} agents moved each): p50 / p99 "
            f"| {lat(kill, 'p50_ms')} / {lat(kill)} (re-homed: {kill['extra'].get('rehome_p99_ms', 0):.0f} ms p99; "
            f"not HEALTHY seen: {kill['extra'].get('not_healthy_seen', '?')}) | – | – | – "
            f"| {loads.get('replicas-kill', '?')} |"
        )
    print()
    for name in ("sled-hb", "replicas-hb", "sled-reg", "replicas-reg", "etcd-reg", "sled-watch", "replicas-watch", "replicas-kill"):
        rep = get(name)
        if not rep:
            continue
        print(f"### {name} ({rep['system']}, load average {loads.get(name, '?')})")
        print()
        for r in rep["rows"]:
            more = ", ".join(f"{k}={v}" for k, v in sorted(r.get("extra", {}).items()))
            print(f"- {r['case']}: {r['throughput_per_s']:.0f}/s, p50 {lat(r, 'p50_ms')}, p99 {lat(r)}; {more}")
        for note in rep.get("notes", []):
            print(f"  - {note}")
        print()


if __name__ == "__main__":
    main()
