"""Connector tests never leave the machine: every socket must go to loopback."""
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


def _check(address) -> None:
    if isinstance(address, tuple):
        host = address[0]
        try:
            ok = ipaddress.ip_address(host).is_loopback
        except ValueError:
            ok = host == "localhost"
        if not ok:
            raise ConnectionRefusedError(f"test tried to reach {host!r}: connector tests are loopback only")


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


@pytest.fixture
def store():
    return MemoryStore()


@pytest.fixture
def http():
    with FakeExchangeHTTP() as srv:
        yield srv
