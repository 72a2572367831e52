"""A private S3 endpoint for the object-storage tests: moto's server mode, in this process, on loopback.

Never the internet: the server binds 127.0.0.1 on a free port and :meth:`S3Server.env` (set by
:func:`apply_env`) points every AWS client the store uses (delta-rs, pyarrow's S3 filesystem, boto3) at
it through ``AWS_ENDPOINT_URL``, with fixed test credentials and no profile, config file or
instance-metadata lookup.

While a server runs, moto's PutObject is wrapped (and restored by ``stop``):

* moto (5.2.5) checks ``If-None-Match: *`` and then stores the object in two steps with no lock
  between, so two racing conditional PUTs of one key could both succeed where S3 lets exactly one win.
  delta-rs 1.x commits a table version with exactly such a PUT of ``_delta_log/<version>.json``, so
  the check and the write run under one lock, as on S3 (``atomic_conditional_put``);
* the PUTs refused with 412 are counted (``refused_puts``): a writer lost a race for a version;
* a test may hold a PUT back (``before_put``) to make such a race happen for certain.

And, for speed only, moto's routing does not list moto's own package folder on every request (~180
``stat`` calls each time: half the time of a small GET).

The server answers from a thread of this process, so it needs the GIL: a delta-rs call that holds the
GIL while it waits for S3 never gets its answer (it times out after minutes). ``DeltaTable.history()``
does that in deltalake 1.6.6; the calls the store makes (open, ``get_add_actions``, writes, merges,
deletes) release it.
"""
from __future__ import annotations

import logging
import os
import threading
import urllib.request
import uuid
from typing import Callable

import boto3
from moto import backends as moto_backends
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.s3.exceptions import PreconditionFailed
from moto.s3.responses import S3Response

HOST = "127.0.0.1"
REGION = "us-east-1"
ACCESS_KEY = "testing"
SECRET_KEY = "testing"

# Variables that could send an AWS client elsewhere than the test server (or to a real account).
_CLEARED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_DEFAULT_REGION",
            "AWS_ENDPOINT_URL_S3", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_S3_LOCKING_PROVIDER", "AWS_S3_ALLOW_UNSAFE_RENAME",
            "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")

_put_lock, _count_lock = threading.Lock(), threading.Lock()
_original_put = S3Response.put_object
_active: "S3Server | None" = None


def _put_object(self):
    """moto's PutObject, after the running server's ``before_put`` hook, with the precondition check and
    the write under one lock (as S3 does it); counts the conditional PUTs refused."""
    server = _active
    if server is not None and server.before_put is not None:
        body = self.body if isinstance(self.body, bytes) else str(self.body or "").encode()
        server.before_put(self.parse_key_name(), body)
    try:
        if server is not None and server.atomic_conditional_put:
            with _put_lock:
                return _original_put(self)
        return _original_put(self)
    except PreconditionFailed:
        if server is not None:
            with _count_lock:
                server.refused_puts += 1
        raise


_original_modules = moto_backends.list_of_moto_modules


def _listed_once():
    modules = tuple(_original_modules())
    return lambda: modules


class S3Server:
    """moto's S3 on ``127.0.0.1:<free port>``; use as a context manager or ``start()``/``stop()``."""

    def __init__(self, *, atomic_conditional_put: bool = True):
        self.atomic_conditional_put = atomic_conditional_put
        # Called with (key, body) before each PutObject is handled, in the request's thread; it may block
        # that request (to hold a commit back while another writer goes on).
        self.before_put: Callable[[str, bytes], None] | None = None
        self.refused_puts = 0  # conditional PUTs answered 412 (a writer lost a race for a key)
        self._server: ThreadedMotoServer | None = None
        self.endpoint = ""

    def start(self) -> "S3Server":
        global _active
        if _active is not None:
            raise RuntimeError("one S3Server at a time: moto keeps its state per process")
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per request otherwise
        _active = self
        S3Response.put_object = _put_object
        moto_backends.list_of_moto_modules = _listed_once()
        self._server = ThreadedMotoServer(ip_address=HOST, port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        global _active
        if self._server is None:
            return
        try:  # moto keeps its buckets in this process's memory: drop them with the server
            direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            direct.open(urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST"), timeout=10).close()
        finally:
            self._server.stop()
            self._server = None
            _active = None
            S3Response.put_object = _original_put
            moto_backends.list_of_moto_modules = _original_modules

    def __enter__(self) -> "S3Server":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def env(self, *, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY) -> dict[str, str]:
        """The AWS environment that points every client at this server."""
        return {"AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key, "AWS_REGION": REGION,
                "AWS_ENDPOINT_URL": self.endpoint, "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "NO_PROXY": HOST, "no_proxy": HOST}

    def client(self):
        """A boto3 S3 client of this server (its own endpoint and credentials, whatever the environment)."""
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)

    def create_bucket(self, name: str | None = None) -> str:
        name = name or f"liqscope-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def objects(self, bucket: str) -> dict[str, bytes]:
        """Every object in ``bucket``: key -> content."""
        s3 = self.client()
        out = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                out[item["Key"]] = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        return out


def apply_env(monkeypatch, server: S3Server, **credentials: str) -> None:
    """Set ``server.env()`` with ``monkeypatch`` (undone after the test) and clear what could override it."""
    for name in _CLEARED:
        monkeypatch.delenv(name, raising=False)
    for name, value in server.env(**credentials).items():
        monkeypatch.setenv(name, value)
