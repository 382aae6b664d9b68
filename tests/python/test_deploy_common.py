"""Shared helpers of the deploy tests (no tests here): where the tools and files are, rendering the chart.

Tools come from tests/run's setup: helm and kubectl unpacked under target/deploy-tools/,
hadolint and kubernetes-validate in the venv, promtool and prometheus from Debian. A missing
tool fails the test that needs it (never a skip): tests/run installs all of them.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
CHART = DEPLOY / "helm/switchboard"
COMPOSE = DEPLOY / "compose/compose.yaml"
DOCKERFILE = DEPLOY / "docker/Dockerfile"
ALERTS = DEPLOY / "prometheus/alerts.yaml"
VALUES_FILES = sorted((CHART / "ci").glob("*-values.yaml"))
TOOLS = Path(os.environ.get("SWITCHBOARD_DEPLOY_TOOLS") or REPO_ROOT / "target/deploy-tools").resolve()
IMAGE_BIN = "/usr/local/bin/"


def tool(name: str) -> str:
    """Path of a tool: target/deploy-tools/NAME/NAME, the venv's bin, else PATH."""
    for candidate in (TOOLS / name / name, Path(sys.executable).parent / name):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    assert found, f"{name} is not installed: run tests/run (its setup step installs it)"
    return found


def run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, **kwargs)


def helm_template(values: Path | None = None, extra: list[str] | None = None) -> list[dict]:
    """Every manifest `helm template` renders for the values file."""
    args = [tool("helm"), "template", "sb", str(CHART), "--namespace", "mesh"]
    if values is not None:
        args += ["-f", str(values)]
    result = run(args + (extra or []))
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PortMap:
    """Remaps the container ports the manifests name onto free loopback ports.

    Every process in the manifests listens on its own port, so a port alone names a process:
    `0.0.0.0:7600`, `registry:7600` and `RELEASE-switchboard-registry:7600` all become
    `127.0.0.1:<the free port for 7600>`.
    """

    ADDRESS = re.compile(r"(?P<host>[A-Za-z0-9.-]+):(?P<port>\d{2,5})\b")

    def __init__(self) -> None:
        self.ports: dict[int, int] = {}

    def port(self, container_port: int) -> int:
        if container_port not in self.ports:
            self.ports[container_port] = free_port()
        return self.ports[container_port]

    def text(self, value: str) -> str:
        return self.ADDRESS.sub(lambda m: f"127.0.0.1:{self.port(int(m['port']))}", value)

    def command(self, argv: list[str], switchboard_bin: str) -> list[str]:
        """The argv with the image's binaries replaced by the ones built here."""
        bin_dir = Path(switchboard_bin).parent
        out = []
        for arg in argv:
            if arg.startswith(IMAGE_BIN):
                arg = str(bin_dir / arg[len(IMAGE_BIN) :])
            out.append(self.text(arg))
        return out


def load_yaml(path: Path):
    return yaml.safe_load(path.read_text())
