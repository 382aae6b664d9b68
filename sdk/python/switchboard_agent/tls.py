"""TLS settings of an agent, with the names every Switchboard component uses.

Client side (to the registry, and to providers over `https://`): `SWITCHBOARD_TLS_CA` (the CA to
trust; without it an `https://` registry address uses the system's roots),
`SWITCHBOARD_TLS_CLIENT_CERT` and `SWITCHBOARD_TLS_CLIENT_KEY` (the client certificate shown to
servers that require one, mTLS). Server side (the MCP endpoint): `SWITCHBOARD_TLS_CERT` and
`SWITCHBOARD_TLS_KEY` make it serve HTTPS; `SWITCHBOARD_TLS_CLIENT_CA` also requires client
certificates signed by that CA.

Every file is read when the agent is built, so a missing or unreadable one fails at once with the
setting and the path, not at the first connection.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from typing import Any

import grpc


class TlsConfigError(ValueError):
    """A TLS setting is incomplete or names a file that cannot be read."""


def _read(setting: str, path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise TlsConfigError(f"{setting}: cannot read {path!r}: {e.strerror or e}") from e
    if not data.strip():
        raise TlsConfigError(f"{setting}: file {path!r} is empty")
    return data


def _pair(cert: tuple[str, str | None], key: tuple[str, str | None]) -> None:
    """A certificate and its key come together or not at all."""
    (cert_name, cert_path), (key_name, key_path) = cert, key
    if bool(cert_path) != bool(key_path):
        given, missing = (cert_name, key_name) if cert_path else (key_name, cert_name)
        raise TlsConfigError(f"{given} is set without {missing}")


def _env(key: str) -> str | None:
    return os.environ.get(key) or None


@dataclass(frozen=True)
class ClientTls:
    """The agent's client side; `ca=None` trusts the system's roots."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = None

    @classmethod
    def resolve(cls, ca: str | None, cert: str | None, key: str | None) -> ClientTls | None:
        """Settings given in code, else from the environment; None when nothing is set."""
        tls = cls(
            ca=ca or _env("SWITCHBOARD_TLS_CA"),
            cert=cert or _env("SWITCHBOARD_TLS_CLIENT_CERT"),
            key=key or _env("SWITCHBOARD_TLS_CLIENT_KEY"),
        )
        _pair(("SWITCHBOARD_TLS_CLIENT_CERT (tls_client_cert)", tls.cert),
              ("SWITCHBOARD_TLS_CLIENT_KEY (tls_client_key)", tls.key))
        return tls if (tls.ca or tls.cert) else None

    def load(self) -> LoadedClientTls:
        return LoadedClientTls(
            self,
            ca=_read("SWITCHBOARD_TLS_CA (tls_ca)", self.ca) if self.ca else None,
            cert=_read("SWITCHBOARD_TLS_CLIENT_CERT (tls_client_cert)", self.cert)
            if self.cert else None,
            key=_read("SWITCHBOARD_TLS_CLIENT_KEY (tls_client_key)", self.key)
            if self.key else None,
        )


@dataclass(frozen=True)
class LoadedClientTls:
    """The client side with its files read."""

    config: ClientTls
    ca: bytes | None
    cert: bytes | None
    key: bytes | None

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca, private_key=self.key, certificate_chain=self.cert
        )

    def ssl_context(self) -> ssl.SSLContext:
        """For HTTPS calls (to providers): trusts the CA, shows the client certificate."""
        context = ssl.create_default_context()
        try:
            if self.ca is not None:
                context.load_verify_locations(cadata=self.ca.decode())
            if self.config.cert and self.config.key:
                context.load_cert_chain(self.config.cert, self.config.key)
        except (ssl.SSLError, ValueError, UnicodeDecodeError) as e:
            raise TlsConfigError(f"client TLS ({self.config}): bad PEM: {e}") from e
        return context


@dataclass(frozen=True)
class ServerTls:
    """The MCP endpoint's certificate, key and, for mTLS, the CA its clients must be signed by."""

    cert: str
    key: str
    client_ca: str | None = None

    @classmethod
    def resolve(
        cls, cert: str | None, key: str | None, client_ca: str | None
    ) -> ServerTls | None:
        cert = cert or _env("SWITCHBOARD_TLS_CERT")
        key = key or _env("SWITCHBOARD_TLS_KEY")
        client_ca = client_ca or _env("SWITCHBOARD_TLS_CLIENT_CA")
        _pair(("SWITCHBOARD_TLS_CERT (tls_cert)", cert), ("SWITCHBOARD_TLS_KEY (tls_key)", key))
        if cert is None or key is None:
            if client_ca:
                raise TlsConfigError(
                    "SWITCHBOARD_TLS_CLIENT_CA (tls_client_ca) is set without "
                    "SWITCHBOARD_TLS_CERT and SWITCHBOARD_TLS_KEY"
                )
            return None
        tls = cls(cert, key, client_ca)
        # Read now so a bad path fails at startup, naming the setting.
        _read("SWITCHBOARD_TLS_CERT (tls_cert)", cert)
        _read("SWITCHBOARD_TLS_KEY (tls_key)", key)
        if client_ca:
            _read("SWITCHBOARD_TLS_CLIENT_CA (tls_client_ca)", client_ca)
        return tls

    def uvicorn_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"ssl_certfile": self.cert, "ssl_keyfile": self.key}
        if self.client_ca:
            options["ssl_ca_certs"] = self.client_ca
            options["ssl_cert_reqs"] = ssl.CERT_REQUIRED
        return options
