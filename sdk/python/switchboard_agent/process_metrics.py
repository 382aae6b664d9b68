"""Process metrics in the Prometheus text format, read from `/proc/self`.

The same three series every Rust process of the mesh exports, under Prometheus' standard names, so
one dashboard and one alert cover agents in either language. Outside Linux (no `/proc`) the body is
empty rather than an error: a scrape must never fail because a gauge is unavailable.
"""

from __future__ import annotations

import os

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def render() -> str:
    """`process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_open_fds`."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            # Fields after the command name (which may hold spaces) start at state (field 3);
            # utime and stime are fields 14 and 15.
            fields = stat.read().rsplit(")", 1)[1].split()
        with open("/proc/self/statm", encoding="ascii") as statm:
            resident_pages = int(statm.read().split()[1])
        open_fds = len(os.listdir("/proc/self/fd"))
    except (OSError, IndexError, ValueError):
        return ""
    cpu_seconds = (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND
    return (
        "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
        "# TYPE process_cpu_seconds_total counter\n"
        f"process_cpu_seconds_total {cpu_seconds}\n"
        "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
        "# TYPE process_resident_memory_bytes gauge\n"
        f"process_resident_memory_bytes {resident_pages * _PAGE_BYTES}\n"
        "# HELP process_open_fds Number of open file descriptors.\n"
        "# TYPE process_open_fds gauge\n"
        f"process_open_fds {open_fds}\n"
    )
