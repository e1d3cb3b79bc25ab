"""Reading sdesim's ``.npz`` files: a corrupted, truncated or foreign file is a `FormatError` naming the path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sdesim.errors import FormatError, MissingFileError

__all__ = ["Archive", "load_npz"]


class Archive(dict):
    """The arrays of an ``.npz`` file, read eagerly; a missing entry is a `FormatError` naming the path."""

    def __init__(self, path, arrays):
        super().__init__(arrays)
        self.path = Path(path)

    def __missing__(self, key):
        raise FormatError(f"{self.path} has no {key!r} entry: not a file sdesim wrote, or a damaged one")

    def json(self, key="metadata") -> dict:
        """The JSON object stored as the string entry ``key``."""
        try:
            value = json.loads(str(self[key][()]))
        except (ValueError, IndexError) as exc:
            raise FormatError(f"{self.path}: entry {key!r} is not JSON text ({exc})") from None
        if not isinstance(value, dict):
            raise FormatError(f"{self.path}: entry {key!r} is JSON {type(value).__name__}, not an object")
        return value

    def check_format(self, fmt, version, key="metadata") -> dict:
        """The JSON metadata in ``key``, after checking its ``format`` and ``format_version``."""
        meta = self.json(key)
        found = meta.get("format"), meta.get("format_version")
        if found != (fmt, version):
            raise FormatError(f"{self.path}: format {found[0]!r} version {found[1]!r} is not supported; "
                              f"this sdesim reads {fmt!r} version {version}")
        return meta


def load_npz(path) -> Archive:
    """Every array of the ``.npz`` archive at ``path`` (never unpickling anything).

    Raises `MissingFileError` when there is no file and `FormatError` when it is
    not a complete ``.npz`` archive of plain arrays.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"no file at {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            return Archive(path, {key: data[key] for key in data.files})
    except Exception as exc:  # numpy raises anything from BadZipFile to tokenize errors on damaged bytes
        raise FormatError(f"{path} is not a readable .npz archive (corrupted, truncated or foreign: "
                          f"{type(exc).__name__}: {exc})") from None
