"""PSI and PSI-CA with OpenMined PSI: server key, dataset setups, request checks, responses.

The wire format is OpenMined's own serialized protobuf messages, so any OpenMined client
(Python, JS, Go, Rust, C++) works unchanged. The service never sees a raw selector: a
request holds the client's selectors blinded under the client's key.
"""

import base64
import binascii
import enum
import hashlib
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import private_set_intersection.python as psi
from google.protobuf.message import DecodeError
from uuid6 import uuid7

from trustfabric.errors import BadUserInput

# An encrypted element is a compressed P-256 point: a 0x02/0x03 prefix and 32 bytes.
POINT_BYTES = 33


class Mode(enum.Enum):
    PSI = "PSI"  # the client learns which of its selectors the partner holds
    PSI_CA = "PSI_CA"  # the client learns only how many

    @property
    def reveals_intersection(self) -> bool:
        return self is Mode.PSI


@dataclass(frozen=True)
class ServerKey:
    secret: bytes

    @cached_property  # every accepted job records it
    def key_id(self) -> str:
        """Names the key without revealing it: setups and jobs record which key they used."""
        return hashlib.sha256(b"trustfabric-psi-key:" + self.secret).hexdigest()[:16]

    @classmethod
    def generate(cls) -> "ServerKey":
        return cls(psi.server.CreateWithNewKey(True).GetPrivateKeyBytes())

    @classmethod
    def load_or_create(cls, path: Path, configured: str | None = None) -> "ServerKey":
        """The configured secret (base64), else the key file, created 0600 on first use."""
        if configured:
            return cls(base64.b64decode(configured))
        if path.exists():
            return cls(path.read_bytes())
        key = cls.generate()
        key.save(path)
        return key

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(self.secret)
        tmp.replace(path)

    def __repr__(self) -> str:  # never print the secret
        return f"ServerKey(key_id={self.key_id})"


def dataset_hash(items: list[str]) -> str:
    """Content hash of a dataset version: order and duplicates do not matter."""
    digest = hashlib.sha256()
    for item in sorted(set(items)):
        encoded = item.encode()
        digest.update(len(encoded).to_bytes(4, "big") + encoded)
    return "sha256:" + digest.hexdigest()


def create_setup(key: ServerKey, items: list[str], max_client_items: int, fpr: float) -> bytes:
    """The server's encoded dataset (GCS) for clients of up to `max_client_items` selectors.
    Costly: computed once per dataset version and key (decision 0002)."""
    server = psi.server.CreateFromKey(key.secret, True)
    setup = server.CreateSetupMessage(fpr, max_client_items, items, psi.DataStructure.GCS)
    encoded: bytes = setup.SerializeToString()  # the bindings are untyped
    return encoded


def commitment(message: bytes) -> str:
    """What bundles and audit events name a request or response by: its SHA-256."""
    return "sha256:" + hashlib.sha256(message).hexdigest()


@dataclass(frozen=True)
class CheckedRequest:
    raw: bytes
    size: int  # how many blinded selectors it holds
    commitment: str  # sha256 of the raw bytes: what audit events and bundles name


def check_request(encoded: str, mode: Mode, min_size: int, max_size: int) -> CheckedRequest:
    """Decodes and checks a client's request before any job exists; the errors name what is
    wrong and never quote the request."""
    if len(encoded) > (max_size * (POINT_BYTES + 4) + 64) * 4 // 3 + 8:
        raise BadUserInput(f"a request may hold at most {max_size} selectors")
    try:
        raw = base64.b64decode(encoded, validate=True)
        request = psi.Request()
        request.ParseFromString(raw)
    except (binascii.Error, ValueError, DecodeError):
        raise BadUserInput("request must be a base64 OpenMined PSI Request message") from None
    if request.reveal_intersection != mode.reveals_intersection:
        raise BadUserInput(f"the request was made by a client for the other mode than {mode.value}")
    size = len(request.encrypted_elements)
    if size < min_size:
        raise BadUserInput(f"a request needs at least {min_size} selectors")
    if size > max_size:
        raise BadUserInput(f"a request may hold at most {max_size} selectors")
    if any(len(e) != POINT_BYTES or e[0] not in (2, 3) for e in request.encrypted_elements):
        raise BadUserInput("the request holds malformed encrypted elements")
    return CheckedRequest(raw, size, commitment(raw))


class Responder:
    """One server object per mode, made once per process from the key (decision 0006)."""

    def __init__(self, key: ServerKey) -> None:
        self.key_id = key.key_id
        self._servers = {mode: psi.server.CreateFromKey(key.secret, mode.reveals_intersection)
                         for mode in Mode}

    def respond(self, mode: Mode, raw_request: bytes) -> bytes:
        request = psi.Request()
        request.ParseFromString(raw_request)
        response: bytes = self._servers[mode].ProcessRequest(request).SerializeToString()
        return response


def new_job_id() -> str:
    """Time-ordered (UUIDv7): new index entries land beside the latest (decision 0017)."""
    return "psi_" + uuid7().hex
