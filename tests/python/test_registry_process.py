"""The registry as a process: what scripts, systemd and Kubernetes rely on."""

from __future__ import annotations


def test_registry_announces_loopback_listeners(registry):
    for addr in (registry.grpc_addr, registry.admin_addr):
        host, _, port = addr.rpartition(":")
        assert host == "127.0.0.1", addr
        assert int(port) > 0, addr  # the real port, not the requested :0
    assert registry.grpc_addr != registry.admin_addr


def test_registry_exits_zero_on_sigterm(registry):
    assert registry.terminate() == 0, registry.stderr_text()[-4000:]
