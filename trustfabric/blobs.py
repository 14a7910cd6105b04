"""Packs: immutable files of a batch's parts, named by their SHA-256, under one directory.

A finished PSI job's response and signed bundle live here, not in the graph (decision
0024): the graph keeps each part's reference (`<hour>/<pack>:<offset>:<length>`) and hash.
One pack a batch, not one file a part: a 45-minute run at 550 jobs/s would leave three
million files. Packs are filed by the hour they were written, so retention deletes whole
hours and never looks at a pack.
"""

import contextlib
import hashlib
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

_HOUR = "%Y-%m-%dT%H"
_HOUR_NAME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}")
_REF = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2})/([0-9a-f]{64}):([0-9]+):([0-9]+)")


@dataclass(frozen=True)
class PackStore:
    """Packs under `root`, one directory an hour. Picklable: the crypto processes write their
    batch's pack themselves. `fsync`: a pack, and its name, are on disk before the graph
    names it (set it where the database fsyncs its commits too)."""

    root: Path
    fsync: bool = False

    def put(self, parts: list[bytes], at: datetime | None = None) -> list[str]:
        """Writes `parts` as one pack, filed under the hour of `at` (now); each part's
        reference, in order. A pack appears under its name whole or not at all (written
        aside, then renamed)."""
        if not parts:
            return []
        data = b"".join(parts)
        name = hashlib.sha256(data).hexdigest()
        hour = (at or datetime.now(UTC)).astimezone(UTC).strftime(_HOUR)
        directory = self.root / hour
        if not directory.is_dir():
            # blinded responses: the owner's alone, wherever the directory is put
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.root.chmod(0o700)
            directory.mkdir(exist_ok=True, mode=0o700)
            self._sync_directory(self.root)
        partial = directory / f".{name}.{secrets.token_hex(4)}.partial"
        with open(partial, "wb") as out:
            out.write(data)
            if self.fsync:
                out.flush()
                os.fsync(out.fileno())
        os.replace(partial, directory / name)
        self._sync_directory(directory)  # the rename too, or a power loss may undo it
        refs, offset = [], 0
        for part in parts:
            refs.append(f"{hour}/{name}:{offset}:{len(part)}")
            offset += len(part)
        return refs

    def get(self, ref: str) -> bytes:
        """A part's bytes. LookupError when its pack is gone (retired) or the reference is
        not one `put` made; OSError when the file system fails."""
        match = _REF.fullmatch(ref)
        if not match:
            raise LookupError(f"not a part reference: {ref!r}")
        hour, name, offset, length = match.groups()
        try:
            with open(self.root / hour / name, "rb") as pack:
                pack.seek(int(offset))
                data = pack.read(int(length))
        except FileNotFoundError:
            raise LookupError(f"no stored part {ref!r}") from None
        if len(data) != int(length):
            raise LookupError(f"no stored part {ref!r}")
        return data

    def sweep(self, before: float) -> int:
        """Deletes the hours of packs (and of parts never finished) that ended before
        `before` (a Unix time); how many hours. Nothing else under `root` is touched."""
        if not self.root.is_dir():
            return 0
        swept = 0
        for directory in self.root.iterdir():
            if not _HOUR_NAME.fullmatch(directory.name) or not directory.is_dir():
                continue
            start = datetime.strptime(directory.name, _HOUR).replace(tzinfo=UTC)
            if start.timestamp() + 3600 <= before:
                with contextlib.suppress(FileNotFoundError):  # another sweep took it
                    shutil.rmtree(directory)
                    swept += 1
        return swept

    def _sync_directory(self, directory: Path) -> None:
        if not self.fsync:
            return
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
