"""A real Prometheus, configured with nothing but the registry's /sd/prometheus URL, scrapes
every agent of a running mesh; and every metric the alert rules use is one the binaries export."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import urllib.request

import pytest
import yaml
from mcp import Client

from conftest import Process, eventually, switchboard_bin
from test_deploy_common import ALERTS, free_port, tool


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    """`switchboard up --demo` with one tool call made, so per-call series exist."""
    workdir = tmp_path_factory.mktemp("sd-up")
    args = [
        switchboard_bin(), "up", "--demo", "--data-dir", str(workdir / "data"),
        "--registry-addr", "127.0.0.1:0", "--registry-admin-addr", "127.0.0.1:0",
        "--gateway-addr", "127.0.0.1:0",
    ]
    up = Process(args, workdir, ("registry-grpc", "registry-admin", "gateway"))
    try:
        admin = up.listeners["registry-admin"]
        eventually(lambda: len(json.loads(get(f"http://{admin}/sd/prometheus"))) == 2, timeout=30)

        async def call():
            async with Client(f"http://{up.listeners['gateway']}/mcp") as client:
                return await client.call_tool("greet", {"name": "Ada"})

        eventually(lambda: asyncio.run(asyncio.wait_for(call(), 10)), timeout=20, exceptions=(Exception,))
        yield up
    finally:
        up.stop()


def test_discovery_lists_each_agent_with_its_labels(mesh):
    groups = json.loads(get(f"http://{mesh.listeners['registry-admin']}/sd/prometheus"))
    agent_ports = {line.split()[2] for line in mesh.stdout_lines if line.startswith("LISTEN agent-mcp")}
    assert {g["targets"][0] for g in groups} == agent_ports
    for group in groups:
        labels = group["labels"]
        assert labels["__metrics_path__"] == "/metrics"
        assert labels["status"] == "healthy"
        assert labels["name"] in {"date-service", "hello"}
        assert labels["agent"].startswith(labels["name"] + "-")
        assert labels["version"]


def test_prometheus_scrapes_every_agent_found_through_discovery(mesh, tmp_path):
    admin = mesh.listeners["registry-admin"]
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [
            {
                "job_name": "switchboard-agents",
                "http_sd_configs": [{"url": f"http://{admin}/sd/prometheus", "refresh_interval": "1s"}],
            }
        ],
    }
    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    port = free_port()
    log = open(tmp_path / "prometheus.log", "wb")
    prometheus = subprocess.Popen(
        [
            tool("prometheus"), f"--config.file={config_file}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    try:
        def scraped():
            targets = json.loads(get(f"http://127.0.0.1:{port}/api/v1/targets"))["data"]["activeTargets"]
            up = {t["labels"]["name"] for t in targets if t["health"] == "up"}
            return up if up == {"date-service", "hello"} else None

        eventually(scraped, timeout=30, exceptions=(OSError, AssertionError, KeyError))
        query = get(f"http://127.0.0.1:{port}/api/v1/query?query=up%7Bjob%3D%22switchboard-agents%22%7D")
        results = json.loads(query)["data"]["result"]
        assert {r["metric"]["name"] for r in results} == {"date-service", "hello"}
        assert all(r["metric"]["status"] == "healthy" for r in results)
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=10)
        log.close()


def exported_names(text: str) -> set[str]:
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            names.add(name)
            suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}.get(kind, [])
            names.update(name + s for s in suffixes)
    return names


def test_every_metric_an_alert_uses_is_exported(mesh):
    exported = exported_names(get(f"http://{mesh.listeners['registry-admin']}/metrics"))
    exported |= exported_names(get(f"http://{mesh.listeners['gateway']}/metrics"))
    used = set()
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            used |= set(re.findall(r"\bswitchboard_[a-z_]+", rule["expr"]))
    assert used, "the alerts use no switchboard metric"
    assert used <= exported, f"alerts use metrics no binary exports: {sorted(used - exported)}"
