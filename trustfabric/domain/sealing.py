"""Short secrets sealed at rest (webhook signing secrets), under a key kept with the others.

The service must sign with a webhook's secret, so only a reversible encryption serves
(a hash would not): AES-256-GCM, a fresh 96-bit nonce each time, the record's id as
associated data so a sealed value copied to another record does not open there. Anyone
with the database files but not `keys/` learns nothing of the secrets.
"""

import base64
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SEALED = "aesgcm1:"  # what a sealed value starts with; anything else was stored in clear


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("a SecretBox key is 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def load_or_create(cls, path: Path) -> "SecretBox":
        """The key file (base64), created 0600 in a 0700 directory on first use."""
        if path.exists():
            return cls(base64.b64decode(path.read_bytes()))
        key = secrets.token_bytes(32)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(base64.b64encode(key))
        tmp.replace(path)
        return cls(key)

    def seal(self, secret: str, record_id: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, secret.encode(), record_id.encode())
        return SEALED + base64.b64encode(nonce + sealed).decode()

    def open(self, stored: str, record_id: str) -> str:
        """The secret; a value stored in clear by an earlier version is returned as it is."""
        if not stored.startswith(SEALED):
            return stored
        raw = base64.b64decode(stored[len(SEALED):])
        try:
            return self._aead.decrypt(raw[:12], raw[12:], record_id.encode()).decode()
        except InvalidTag:
            raise ValueError(f"the sealed secret of {record_id} does not open with this "
                             "key (keys/webhook-secrets.key replaced?)") from None

    def __repr__(self) -> str:  # never print the key
        return "SecretBox()"
