"""Packs: immutable files of a batch's parts, named by their SHA-256, under one directory.

A finished PSI job's response and signed bundle live here, not in the graph (decision
0024): the graph keeps each part's reference (`<pack>:<offset>:<length>`) and hash. One pack
a batch, not one file a part: a 45-minute run at 550 jobs/s would leave three million files.
"""

import contextlib
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PackStore:
    """Packs under `root`, in 256 directories by the hash's first two digits. Picklable: the
    crypto processes write their batch's pack themselves. `fsync`: a pack is on disk before
    the graph names it (set it where the database fsyncs its commits too)."""

    root: Path
    fsync: bool = False

    def put(self, parts: list[bytes]) -> list[str]:
        """Writes `parts` as one pack; each part's reference, in order. A pack appears under
        its name whole or not at all (written aside, then renamed)."""
        if not parts:
            return []
        data = b"".join(parts)
        name = hashlib.sha256(data).hexdigest()
        path = self._path(name)
        # blinded responses: the owner's alone, wherever the directory is put
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.parent.mkdir(exist_ok=True, mode=0o700)
        partial = path.parent / f".{name}.{secrets.token_hex(4)}.partial"
        with open(partial, "wb") as out:
            out.write(data)
            if self.fsync:
                out.flush()
                os.fsync(out.fileno())
        os.replace(partial, path)
        refs, offset = [], 0
        for part in parts:
            refs.append(f"{name}:{offset}:{len(part)}")
            offset += len(part)
        return refs

    def get(self, ref: str) -> bytes:
        """A part's bytes. LookupError when its pack is gone (retired) or the reference is
        not one `put` made."""
        try:
            name, offset, length = ref.split(":")
            start, size = int(offset), int(length)
            with open(self._path(name), "rb") as pack:
                pack.seek(start)
                data = pack.read(size)
        except (ValueError, OSError) as error:
            raise LookupError(f"no stored part {ref!r}") from error
        if len(data) != size:
            raise LookupError(f"no stored part {ref!r}")
        return data

    def sweep(self, before: float) -> int:
        """Deletes packs (and parts of packs never finished) last written before `before`
        (a Unix time); how many."""
        swept = 0
        if not self.root.is_dir():
            return 0
        for directory in self.root.iterdir():
            if not directory.is_dir():
                continue
            for path in directory.iterdir():
                with contextlib.suppress(FileNotFoundError):  # another sweep took it
                    if path.stat().st_mtime < before:
                        path.unlink()
                        swept += 1
        return swept

    def _path(self, name: str) -> Path:
        if len(name) != 64 or not all(c in "0123456789abcdef" for c in name):
            raise ValueError("not a pack name")
        return self.root / name[:2] / name
