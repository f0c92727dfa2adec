"""The media store: image bytes on disk under the instance directory, by content hash.

Files are written once (a temporary file renamed into place, so a reader never sees half a
file) and read back only if their bytes still hash to their name: a file altered on disk is
refused, never sent.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from ghostpost.services.errors import MediaUnavailable

_HASH = re.compile(r"[0-9a-f]{64}")


class FileMediaStore:
    """Images under `root`, at `<root>/<first two hex digits>/<sha256>`."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, content_hash: str) -> Path:
        """Where the image named `content_hash` lives (the name is checked: no path tricks)."""
        if not _HASH.fullmatch(content_hash):
            raise MediaUnavailable(f"{content_hash!r} is not a SHA-256 content hash")
        return self.root / content_hash[:2] / content_hash

    def put(self, data: bytes) -> str:
        """Store `data` (if not already there, intact) and return its content hash."""
        content_hash = hashlib.sha256(data).hexdigest()
        target = self.path(content_hash)
        try:
            if hashlib.sha256(target.read_bytes()).hexdigest() == content_hash:
                return content_hash
        except FileNotFoundError:
            pass
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return content_hash

    def read(self, content_hash: str) -> bytes:
        """Return the image's bytes; MediaUnavailable when missing or altered."""
        try:
            data = self.path(content_hash).read_bytes()
        except FileNotFoundError:
            raise MediaUnavailable(
                f"image {content_hash} is missing from the media store"
            ) from None
        if hashlib.sha256(data).hexdigest() != content_hash:
            raise MediaUnavailable(
                f"image {content_hash} was altered in the media store (its bytes no longer "
                "match their hash); it is not sent"
            )
        return data
