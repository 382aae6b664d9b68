"""Several registry addresses, and the one the agent uses now (the Rust SDK's rules).

`SWITCHBOARD_REGISTRY=10.0.0.1:7600,10.0.0.2:7600` (or URIs, or a DNS name that resolves to
several addresses): the agent stays on one replica while it answers and moves to the next when it
fails (unreachable, `UNAVAILABLE`, the stream broken or drained). It starts at a random one, so a
fleet restarted at once does not pile onto the first address, and resolves the names again once
every address has failed, since the replicas behind a name change. With replicas that do not
share their state, a client that spread its calls would register on one and heartbeat on another.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import socket
from urllib.parse import urlsplit

import grpc

log = logging.getLogger("switchboard_agent")


def parse_registries(text: str) -> list[str]:
    """`a:7600,https://b:7600` → gRPC targets `["a:7600", "b:7600"]`, in order, without duplicates.

    Raises ValueError naming the bad entry.
    """
    targets: list[str] = []
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            raise ValueError(f"bad registry address {entry!r}: empty entry in the list {text!r}")
        uri = entry if "://" in entry else f"http://{entry}"
        try:
            parts = urlsplit(uri)
            port = parts.port
        except ValueError as e:
            raise ValueError(f"bad registry address {entry!r}: {e}") from e
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"bad registry address {entry!r}: the scheme must be http or https")
        host = parts.hostname
        if not host or " " in host or parts.path not in ("", "/"):
            raise ValueError(f"bad registry address {entry!r}: want host:port")
        target = _target(host, port or 80)
        if target not in targets:
            targets.append(target)
    return targets


def uses_https(text: str) -> bool:
    """Whether an entry of the list is an `https://` URI: then every replica is dialed with TLS
    (the replicas of one registry serve alike)."""
    return any(raw.strip().lower().startswith("https://") for raw in text.split(","))


def _target(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _expand(target: str) -> list[str]:
    """One target per address its name resolves to now; itself for an IP or a name that fails."""
    host, _, port = target.rpartition(":")
    bare = host.strip("[]")
    try:
        ipaddress.ip_address(bare)
        return [target]
    except ValueError:
        pass
    try:
        found = await asyncio.get_running_loop().getaddrinfo(
            bare, int(port), type=socket.SOCK_STREAM
        )
    except OSError as e:
        log.debug("registry name %s does not resolve: %s", target, e)
        return [target]
    expanded: list[str] = []
    for *_, sockaddr in found:
        address = _target(str(sockaddr[0]), int(sockaddr[1]))
        if address not in expanded:
            expanded.append(address)
    return expanded or [target]


class Registries:
    """The registry replicas of one agent, each with its own channel, and the current one."""

    def __init__(
        self,
        targets: list[str],
        options: list[tuple[str, int]],
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        self.targets = targets
        self._options = options
        self._credentials = credentials
        # Resolved address → the name it came from: TLS verifies the certificate against the
        # name the operator gave, not the IP it resolved to.
        self._names: dict[str, str] = {}
        self._addresses = list(targets)
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._index = random.randrange(len(self._addresses))

    async def resolve(self) -> None:
        """Expands every name to the addresses it resolves to now."""
        expanded: list[str] = []
        for target in self.targets:
            for address in await _expand(target):
                if address != target:
                    self._names[address] = target.rpartition(":")[0].strip("[]")
                if address not in expanded:
                    expanded.append(address)
        current = self.address
        self._addresses = expanded
        self._index = expanded.index(current) if current in expanded else (
            random.randrange(len(expanded)))

    @property
    def address(self) -> str:
        return self._addresses[self._index % len(self._addresses)]

    @property
    def count(self) -> int:
        return len(self._addresses)

    def channel(self) -> grpc.aio.Channel:
        """The channel to the current replica (opened on first use)."""
        address = self.address
        if address not in self._channels:
            if self._credentials is None:
                channel = grpc.aio.insecure_channel(address, options=self._options)
            else:
                options = list(self._options)
                if address in self._names:
                    options.append(("grpc.ssl_target_name_override", self._names[address]))
                channel = grpc.aio.secure_channel(address, self._credentials, options=options)
            self._channels[address] = channel
        return self._channels[address]

    async def failed(self) -> None:
        """Moves on to the next replica; past the last one, resolves the names again."""
        failed = self.address
        if self._index + 1 >= len(self._addresses):
            await self.resolve()
            self._index = self._addresses.index(failed) if failed in self._addresses else -1
        self._index = (self._index + 1) % len(self._addresses)
        if self.address != failed:
            log.info("moving from registry %s to %s", failed, self.address)

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
