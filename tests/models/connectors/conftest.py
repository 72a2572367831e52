"""Connector tests never leave the machine: every socket must go to loopback, and
names other than ``localhost`` do not resolve (no DNS query leaves either), so a
test pointed at ``nonexistent.invalid`` sees exactly what an offline machine sees."""
from __future__ import annotations

import ipaddress
import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from connector_fakes import FakeExchangeHTTP, MemoryStore  # noqa: E402

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _loopback(host) -> bool:
    host = host.decode() if isinstance(host, bytes) else host
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _check(address) -> None:
    if isinstance(address, tuple) and not _loopback(address[0]):
        raise ConnectionRefusedError(f"test tried to reach {address[0]!r}: connector tests are loopback only")


def offline_getaddrinfo(host, *args, **kwargs):
    """``socket.getaddrinfo`` as on a machine without network: only loopback resolves."""
    if host is None or _loopback(host):
        return _real_getaddrinfo(host, *args, **kwargs)
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch):
    def connect(self, address):
        _check(address)
        return _real_connect(self, address)

    def connect_ex(self, address):
        _check(address)
        return _real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", offline_getaddrinfo)


@pytest.fixture
def store():
    return MemoryStore()


@pytest.fixture
def http():
    with FakeExchangeHTTP() as srv:
        yield srv


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: connections to it are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
