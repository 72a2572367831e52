"""Why a connection failed, in words, from an exception chain.

ccxt, ``requests``/urllib3, ``urllib``, aiohttp and ``websockets`` each wrap the
socket error that says what actually happened (name resolution failed, refused,
timed out...) in exceptions of their own; the outermost message is often just
``binance GET https://...``. :func:`network_cause` walks ``__cause__``,
``__context__`` and the wrapped errors wrappers keep (``reason``, ``args``) to the typed
socket error, and falls back to the underlying libraries' message text only
where nothing typed is left (asyncio joins several connect errors into one
plain ``OSError`` message). Callers branch on :attr:`NetworkCause.kind` /
:attr:`NetworkCause.offline`, never on message text.
"""
from __future__ import annotations

import errno
import socket
import ssl
from dataclasses import dataclass
from typing import Iterator

NAME_RESOLUTION = "name-resolution"
NETWORK_UNREACHABLE = "network-unreachable"
REFUSED = "refused"
RESET = "reset"
TLS = "tls"
TIMED_OUT = "timed-out"

WORDS = {
    NAME_RESOLUTION: "name resolution failed",
    NETWORK_UNREACHABLE: "network unreachable",
    REFUSED: "connection refused",
    RESET: "connection reset",
    TLS: "secure connection (TLS) failed",
    TIMED_OUT: "timed out",
}

_UNREACHABLE_ERRNOS = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN}

# Message fragments of the underlying libraries (glibc/macOS/Windows resolver
# texts, urllib3, OS strerror), for wrappers that kept only the text.
_TEXTS = (
    (NAME_RESOLUTION, ("name or service not known", "nodename nor servname", "temporary failure in name resolution",
                       "getaddrinfo failed", "failed to resolve", "no address associated with hostname",
                       "could not resolve", "name resolution")),
    (NETWORK_UNREACHABLE, ("network is unreachable", "no route to host", "network is down",
                           f"[errno {errno.ENETUNREACH}]", f"[errno {errno.EHOSTUNREACH}]")),
    (REFUSED, ("connection refused", f"[errno {errno.ECONNREFUSED}]")),
    (RESET, ("connection reset", "econnreset", "connection aborted")),
    (TLS, ("certificate verify failed", "ssl handshake", "wrong version number")),
    (TIMED_OUT, ("timed out",)),
)


@dataclass(frozen=True)
class NetworkCause:
    """What stopped a connection: ``kind`` (one of the constants above), in words as ``text``."""

    kind: str

    @property
    def short(self) -> str:
        """The reason alone ("name resolution failed"), for a place that already says "offline"."""
        return WORDS[self.kind]

    @property
    def text(self) -> str:
        """The reason with a hint at the likely fix ("name resolution failed: are you offline?")."""
        return f"{self.short}: are you offline?" if self.offline else self.short

    @property
    def offline(self) -> bool:
        """The machine has no usable network (no name resolution, no route), as opposed to a server refusing."""
        return self.kind in (NAME_RESOLUTION, NETWORK_UNREACHABLE)

    def __str__(self) -> str:
        return self.text


def network_cause(exc: BaseException | None) -> NetworkCause | None:
    """The network reason behind ``exc`` (anywhere in its chain), or None if it is not a network failure."""
    if exc is None:
        return None
    chain = list(_chain(exc))
    kinds = {k for e in chain for k in (_typed(e), _named(e)) if k}
    for kind in WORDS:  # most specific first
        if kind in kinds:
            return NetworkCause(kind)
    text = " ".join(str(e) for e in chain).lower()
    for kind, fragments in _TEXTS:
        if any(f in text for f in fragments):
            return NetworkCause(kind)
    return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps, each once."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        # Wrapped errors kept as attributes (urllib3/urllib ``reason``, aiohttp ``_os_error``) or
        # arguments (requests); instance attributes only: properties may warn or compute.
        inner = [e.__cause__, e.__context__, *getattr(e, "__dict__", {}).values(), *e.args]
        todo.extend(x for x in inner if isinstance(x, BaseException))


def _typed(e: BaseException) -> str | None:
    if isinstance(e, socket.gaierror):
        return NAME_RESOLUTION
    if isinstance(e, OSError) and e.errno in _UNREACHABLE_ERRNOS:
        return NETWORK_UNREACHABLE
    if isinstance(e, ConnectionRefusedError):
        return REFUSED
    if isinstance(e, (ConnectionResetError, ConnectionAbortedError)):
        return RESET
    if isinstance(e, ssl.SSLError):
        return TLS
    if isinstance(e, TimeoutError):  # socket.timeout and asyncio.TimeoutError are aliases
        return TIMED_OUT
    return None


def _named(e: BaseException) -> str | None:
    """Library exception types known by name (no import of optional libraries)."""
    names = {c.__name__ for c in type(e).__mro__}
    if names & {"NameResolutionError", "ClientConnectorDNSError"}:
        return NAME_RESOLUTION
    if names & {"RequestTimeout", "Timeout", "ConnectTimeout", "ReadTimeout", "ServerTimeoutError"}:
        return TIMED_OUT
    return None
