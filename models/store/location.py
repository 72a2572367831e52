"""Where a store lives: a local folder or an object-store prefix (``s3://bucket/prefix``).

The tables are read and written by delta-rs (``storage_options``) and read by
pyarrow (``filesystem``), both configured here from the standard AWS
environment (``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``, ``AWS_REGION``,
``AWS_ENDPOINT_URL`` for S3-compatible servers...). Liqscope never stores
credentials: they are the environment's, as for every AWS tool.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pyarrow.fs as pafs

from ..fsutil import write_bytes_atomic

REMOTE_SCHEMES = ("s3://", "s3a://")
META_FILE = "store.json"


def is_remote(where: str | os.PathLike) -> bool:
    return str(where).startswith(REMOTE_SCHEMES)


@dataclass(frozen=True)
class Location:
    """A store's root: ``uri`` is an absolute local path or ``s3://bucket/prefix`` (no trailing slash)."""

    uri: str

    @classmethod
    def of(cls, where: str | os.PathLike) -> "Location":
        text = str(where)
        if is_remote(text):
            text = "s3://" + text.split("://", 1)[1].strip("/")
            return cls(text)
        return cls(str(Path(text).expanduser().absolute()))

    @property
    def is_local(self) -> bool:
        return not is_remote(self.uri)

    @property
    def path(self) -> Path:
        """The local folder (local stores only)."""
        return Path(self.uri)

    def table(self, name: str) -> str:
        return f"{self.uri}/{name}"

    def __str__(self) -> str:
        return self.uri

    @cached_property
    def storage_options(self) -> dict[str, str] | None:
        """delta-rs options: only what the environment cannot say by itself (plain-HTTP endpoints)."""
        if self.is_local:
            return None
        opts: dict[str, str] = {}
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            opts["AWS_ENDPOINT_URL"] = endpoint
            if endpoint.startswith("http://"):
                opts["AWS_ALLOW_HTTP"] = "true"
        if not (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")):
            opts["AWS_REGION"] = "us-east-1"
        return opts

    @cached_property
    def filesystem(self) -> pafs.FileSystem:
        """pyarrow's view of the same place, for reading data files and store.json."""
        if self.is_local:
            return pafs.LocalFileSystem()
        opts = self.storage_options or {}
        endpoint = opts.get("AWS_ENDPOINT_URL")
        kwargs: dict = {"region": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
                        or opts.get("AWS_REGION")}
        if endpoint:
            scheme, _, host = endpoint.partition("://")
            kwargs.update(endpoint_override=host.rstrip("/"), scheme=scheme)
        return pafs.S3FileSystem(**kwargs)

    def fs_path(self, uri: str) -> str:
        """A file URI as delta-rs lists it, as a path for :attr:`filesystem`."""
        return uri.split("://", 1)[1] if is_remote(uri) else uri

    # -- store.json ----------------------------------------------------------------
    def read_meta(self) -> dict | None:
        """``store.json`` parsed (None when absent); ValueError/OSError for the caller to word."""
        if self.is_local:
            p = self.path / META_FILE
            if not p.exists():
                return None
            return json.loads(p.read_text(encoding="utf-8"))
        fs, path = self.filesystem, self.fs_path(self.table(META_FILE))
        if fs.get_file_info(path).type == pafs.FileType.NotFound:
            return None
        with fs.open_input_stream(path) as fh:
            return json.loads(fh.read().decode("utf-8"))

    def write_meta(self, meta: dict) -> None:
        data = (json.dumps(meta, indent=2) + "\n").encode()
        if self.is_local:
            self.path.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(self.path / META_FILE, data)
            return
        with self.filesystem.open_output_stream(self.fs_path(self.table(META_FILE))) as fh:  # one PUT: atomic
            fh.write(data)

    def exists(self, name: str) -> bool:
        if self.is_local:
            return (self.path / name).exists()
        return self.filesystem.get_file_info(self.fs_path(self.table(name))).type != pafs.FileType.NotFound
