"""The Python example agent in a mesh where everything speaks TLS, with certificates from
`switchboard cert dev`: it dials a registry that requires client certificates (mTLS) with
`SWITCHBOARD_TLS_CA` / `_CLIENT_CERT` / `_CLIENT_KEY`, serves its MCP endpoint over HTTPS
(`SWITCHBOARD_TLS_CERT` / `_KEY`, client certificates required with `_CLIENT_CA`), advertises
`https://`, and its tools answer through a gateway that dials it with its own client certificate,
including one that calls a Rust provider over HTTPS. Without the CA it does not register, and its
log says why (the certificate); a TLS file that does not exist stops it at once, naming the
setting and the file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import AGENT_DIR, Process, call_tool, eventually, list_tools, switchboard_bin


@pytest.fixture
def certs(tmp_path) -> Path:
    out = tmp_path / "certs"
    done = subprocess.run(
        [switchboard_bin(), "cert", "dev", "--out", str(out), "--name", "py-agent",
         "--name", "gateway", "--name", "cli"],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert done.returncode == 0, done.stderr
    return out


def client_flags(certs: Path, name: str) -> list[str]:
    return ["--tls-ca", str(certs / "ca.pem"),
            "--tls-client-cert", str(certs / f"client-{name}.pem"),
            "--tls-client-key", str(certs / f"client-{name}-key.pem")]


def agent_env(certs: Path) -> dict[str, str]:
    """Every TLS setting of an agent: the client side as "py-agent", HTTPS with mTLS served."""
    return {
        "SWITCHBOARD_TLS_CA": str(certs / "ca.pem"),
        "SWITCHBOARD_TLS_CLIENT_CERT": str(certs / "client-py-agent.pem"),
        "SWITCHBOARD_TLS_CLIENT_KEY": str(certs / "client-py-agent-key.pem"),
        "SWITCHBOARD_TLS_CERT": str(certs / "server.pem"),
        "SWITCHBOARD_TLS_KEY": str(certs / "server-key.pem"),
        "SWITCHBOARD_TLS_CLIENT_CA": str(certs / "ca.pem"),
    }


def tls_registry(start_registry, certs: Path):
    return start_registry(extra_args=(
        "--tls-cert", str(certs / "server.pem"), "--tls-key", str(certs / "server-key.pem"),
        "--tls-client-ca", str(certs / "ca.pem"),
    ))


def listed(registry, certs: Path) -> dict[str, dict]:
    """`switchboard agents -o json` over mTLS, by agent id."""
    done = subprocess.run(
        [switchboard_bin(), "agents", "--registry", registry.grpc_addr, *client_flags(certs, "cli"),
         "-o", "json"],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    rows = body["agents"] if isinstance(body, dict) else body
    return {row["id"]: row for row in rows}


def test_python_agent_registers_over_mtls_and_serves_https(
    start_registry, agents, certs, tmp_path, monkeypatch, request
):
    registry = tls_registry(start_registry, certs)
    for key, value in agent_env(certs).items():
        monkeypatch.setenv(key, value)
    # The Rust provider takes the same settings: weather_report calls it over HTTPS with mTLS.
    date = agents.rust("date-service", registry.grpc_addr)
    weather = agents.python(registry.grpc_addr)

    def healthy():
        rows = listed(registry, certs)
        row = rows.get(weather.agent_id)
        assert row is not None, rows
        assert row["status"] == "healthy", row
        return row

    row = eventually(healthy, timeout=15)
    assert row["endpoint"] == f"https://{weather.mcp_addr}/mcp", row
    assert listed(registry, certs)[date.agent_id]["endpoint"].startswith("https://")

    # The gateway inherits the environment: it serves plain HTTP on loopback here.
    for key in ("SWITCHBOARD_TLS_CERT", "SWITCHBOARD_TLS_KEY", "SWITCHBOARD_TLS_CLIENT_CA"):
        monkeypatch.delenv(key)
    workdir = tmp_path / "gateway"
    workdir.mkdir()
    gateway = Process(
        [switchboard_bin(), "gateway", "--gateway-addr", "127.0.0.1:0",
         "--registry", registry.grpc_addr, *client_flags(certs, "gateway")],
        workdir, ("gateway",),
    )
    request.node._switchboard_processes.append(gateway)
    try:
        url = f"http://{gateway.listeners['gateway']}/mcp"
        eventually(lambda: {"weather_report", "forecast", "get_date"} <= set(list_tools(url)),
                   timeout=15, exceptions=(AssertionError, Exception))
        is_error, text = call_tool(url, "forecast", {"city": "Brest", "days": 2})
        assert (is_error, text) == (False, "Brest: day 1: sunny, day 2: sunny"), text
        # The Python agent's own dependency call to the Rust agent goes over HTTPS too.
        is_error, text = call_tool(url, "weather_report", {"city": "Brest"})
        assert not is_error, text
        assert text.startswith("Weather report for Brest on 20") and "degraded" not in text, text
    finally:
        gateway.stop()
    # Its endpoint refuses a caller without a client certificate.
    with pytest.raises(Exception):  # noqa: B017, PT011 - the TLS handshake fails, whatever type
        call_tool(f"https://{weather.mcp_addr}/mcp", "forecast", {"city": "Brest"})
    assert weather.terminate() == 0, weather.stderr_text()
    assert weather.agent_id not in listed(registry, certs)


def test_python_agent_without_the_ca_does_not_register_and_says_why(start_registry, agents, certs):
    registry = tls_registry(start_registry, certs)
    # https:// without SWITCHBOARD_TLS_CA: the system's roots do not trust the dev CA.
    agent = agents.python(f"https://{registry.grpc_addr}", registered=False, env={
        "SWITCHBOARD_TLS_CA": "", "SWITCHBOARD_TLS_CLIENT_CERT": "",
        "SWITCHBOARD_TLS_CLIENT_KEY": "",
    })
    eventually(lambda: "waiting for the registry" in agent.stderr_text(), timeout=15)
    [waiting] = [line for line in agent.stderr_text().splitlines()
                 if line.startswith("WARNING switchboard_agent: waiting for the registry")]
    assert "certificate" in waiting.lower(), waiting
    assert not any(line.startswith("REGISTERED ") for line in agent.stdout_lines)
    assert not listed(registry, certs)
    agent.stop()

    # Plaintext to a TLS registry: the log points at the setting.
    plain = agents.python(registry.grpc_addr, registered=False)
    eventually(lambda: "SWITCHBOARD_TLS_CA" in plain.stderr_text(), timeout=15)
    assert not any(line.startswith("REGISTERED ") for line in plain.stdout_lines)


def test_python_agent_with_a_missing_tls_file_names_the_setting_and_the_file(
    tmp_path, monkeypatch, certs
):
    missing = tmp_path / "nowhere" / "ca.pem"
    for key, value in agent_env(certs).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SWITCHBOARD_TLS_CA", str(missing))
    monkeypatch.setenv("SWITCHBOARD_REGISTRY", "127.0.0.1:1")
    done = subprocess.run([sys.executable, str(AGENT_DIR / "agent.py")], capture_output=True,
                          text=True, timeout=30, check=False)
    assert done.returncode != 0
    assert "SWITCHBOARD_TLS_CA" in done.stderr and str(missing) in done.stderr, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
