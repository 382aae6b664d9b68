"""No drift between the deploy files and the binary: the commands, arguments, environments and
probes of the compose file, the rendered Helm chart and the Dockerfile run against the binary
built here (container ports remapped to loopback), every probe answers as the manifests expect,
and the processes form a working mesh (a tool call through the gateway)."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import subprocess
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from mcp import Client

from conftest import eventually, switchboard_bin
from test_deploy_common import CHART, COMPOSE, DOCKERFILE, PortMap, helm_template, load_yaml

DATA_DIR = "/var/lib/switchboard"
MESH_SERVICES = ("registry", "gateway", "date-service", "hello")


def dockerfile() -> dict:
    """ENV, ENTRYPOINT, CMD and HEALTHCHECK of the Dockerfile's final stage."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    final = text.split("\nFROM ")[-1]
    out: dict = {"env": {}}
    for line in final.splitlines():
        word, _, rest = line.strip().partition(" ")
        if word == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                out["env"][key] = value
        elif word in ("ENTRYPOINT", "CMD"):
            out[word] = json.loads(rest)
        elif word == "HEALTHCHECK":
            out[word] = json.loads(rest[rest.index("CMD ") + 4 :])
    return out


class Mesh:
    """Processes started from manifest definitions, with their output kept for failures."""

    def __init__(self, workdir: Path, ports: PortMap):
        self.workdir, self.ports = workdir, ports
        self.procs: dict[str, subprocess.Popen] = {}
        self.data_dir = workdir / "data"
        self.data_dir.mkdir()

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        full_env = {"PATH": os.environ.get("PATH", ""), "HOME": str(self.workdir)}
        for key, value in env.items():
            full_env[key] = self.ports.text(value.replace(DATA_DIR, str(self.data_dir)))
        log = open(self.workdir / f"{name}.log", "wb")
        self.procs[name] = subprocess.Popen(
            self.ports.command(argv, switchboard_bin()),
            env=full_env, cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )

    def check_running(self) -> None:
        for name, proc in self.procs.items():
            assert proc.poll() is None, f"{name} exited {proc.returncode}:\n{self.log(name)}"

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")[-4000:]

    def run_check(self, argv: list[str]) -> subprocess.CompletedProcess:
        """A health check command (Dockerfile or compose CMD form), remapped like the processes."""
        return subprocess.run(self.ports.command(argv, switchboard_bin()), capture_output=True, text=True, timeout=15)

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def call_greet(gateway_port: int) -> str:
    async def call():
        async with Client(f"http://127.0.0.1:{gateway_port}/mcp") as client:
            result = await client.call_tool("greet", {"name": "Ada"})
            return "\n".join(b.text for b in result.content if getattr(b, "type", "") == "text")

    return asyncio.run(asyncio.wait_for(call(), 10))


def the_mesh_answers(mesh: Mesh, gateway_port: int) -> None:
    text = eventually(lambda: call_greet(gateway_port), timeout=30, exceptions=(Exception,))
    assert "Ada" in text
    mesh.check_running()


@pytest.fixture
def mesh(tmp_path):
    m = Mesh(tmp_path, PortMap())
    yield m
    m.stop()


def test_compose_services_and_the_image_defaults_form_a_mesh(mesh):
    image = dockerfile()
    services = load_yaml(COMPOSE)["services"]
    def wait_healthy(name):
        test = services[name]["healthcheck"]["test"]
        assert test[0] == "CMD", f"{name}: a CMD health check (the image has no shell)"

        def healthy():
            mesh.check_running()
            result = mesh.run_check(test[1:])
            assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}"
            return True

        eventually(healthy, timeout=30)

    for name in MESH_SERVICES:
        service = services[name]
        # Compose starts a service once what it depends on is healthy; so does this test.
        for dependency, rule in service.get("depends_on", {}).items():
            assert rule["condition"] == "service_healthy"
            wait_healthy(dependency)
        entrypoint = service.get("entrypoint", image["ENTRYPOINT"])
        command = service.get("command", image["CMD"])
        mesh.start(name, entrypoint + command, {**image["env"], **service.get("environment", {})})
    for name in MESH_SERVICES:
        wait_healthy(name)
    # The image's own HEALTHCHECK, run next to the registry as Docker would run it.
    result = eventually(lambda: mesh.run_check(image["HEALTHCHECK"]).returncode == 0 or None, timeout=10)
    assert result
    gateway = services["gateway"]
    assert "7700:7700" in gateway["ports"]
    the_mesh_answers(mesh, mesh.ports.port(7700))


def grpc_serving(port: int) -> bool:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=3)
        return answer.status == health_pb2.HealthCheckResponse.SERVING


def http_status(port: int, path: str) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as response:
        return response.status


def containers(docs: list[dict]) -> dict[str, dict]:
    out = {}
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet"):
            for container in doc["spec"]["template"]["spec"]["containers"]:
                out[container["name"]] = container
    return out


def probe_answers(mesh: Mesh, container: dict, probe: dict) -> bool:
    mesh.check_running()
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    if "grpc" in probe:
        return grpc_serving(mesh.ports.port(probe["grpc"]["port"]))
    http = probe["httpGet"]
    port = named.get(http["port"], http["port"])
    return http_status(mesh.ports.port(int(port)), http["path"]) == 200


def test_rendered_chart_containers_and_probes_work_against_the_binary(mesh):
    chart = containers(helm_template(CHART / "ci/sled-values.yaml"))
    def start(name):
        container = chart[name]
        env = {e["name"]: e["value"] for e in container["env"]}
        mesh.start(name, container["command"] + container["args"], env)
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            if kind in container:
                eventually(
                    lambda c=container, p=container[kind]: probe_answers(mesh, c, p),
                    timeout=30,
                    exceptions=(OSError, grpc.RpcError, AssertionError),
                )

    start("registry")
    # The demo agents of the compose file join the chart's registry.
    services = load_yaml(COMPOSE)["services"]
    for name in ("date-service", "hello"):
        mesh.start(name, services[name]["entrypoint"], services[name]["environment"])
    start("gateway")
    the_mesh_answers(mesh, mesh.ports.port(7700))


def test_the_health_check_fails_when_nothing_answers(tmp_path):
    """The HEALTHCHECK must tell Docker "unhealthy": exit 3 with the address when nothing listens,
    1 when the HTTP probe answers but not 200."""
    ports = PortMap()
    check = dockerfile()["HEALTHCHECK"]
    silent = subprocess.run(ports.command(check, switchboard_bin()), capture_output=True, text=True, timeout=15)
    assert silent.returncode == 3, silent.stderr
    assert f"127.0.0.1:{ports.port(7601)}" in silent.stderr
    grpc_check = [switchboard_bin(), "probe", "--grpc", f"127.0.0.1:{ports.port(7600)}", "--timeout", "2s"]
    result = subprocess.run(grpc_check, capture_output=True, text=True, timeout=15)
    assert result.returncode == 3, result.stderr
