"""Proof bundles: canonical JSON, content-addressed, signed with Ed25519, verifiable offline."""

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

BUNDLE_TYPE = "trustfabric.proof-bundle/v1"


class BundleInvalid(Exception):
    """A bundle whose id, signature or shape does not hold."""


def canonical(value: Any) -> bytes:
    """One byte sequence per value: sorted keys, no spaces, UTF-8. Bundles hold no floats,
    whose text forms differ between languages."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def content_id(body: dict[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(canonical(body)).hexdigest()


def key_id(public: Ed25519PublicKey) -> str:
    """The key's fingerprint, which a bundle's signature names as its `keyId`."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


class SigningKey:
    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = private.public_key()
        self.public_pem = self.public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
        self.key_id = key_id(self.public)

    @classmethod
    def from_pem(cls, pem: bytes) -> "SigningKey":
        private = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(private, Ed25519PrivateKey):
            raise ValueError("the bundle signing key must be an Ed25519 key")
        return cls(private)

    def private_pem(self) -> bytes:
        """The secret key, for the crypto processes this one starts; never log it."""
        return self._private.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption())

    @classmethod
    def load_or_create(cls, path: Path, configured: str | None = None) -> "SigningKey":
        if configured:
            pem = configured.encode()
        elif path.exists():
            pem = path.read_bytes()
        else:
            private = Ed25519PrivateKey.generate()
            pem = private.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
        return cls.from_pem(pem)

    def sign(self, body: dict[str, Any]) -> tuple[str, bytes]:
        """The bundle's content id and its signed envelope as canonical JSON: the body, its
        id, and a signature over both.
        The body is encoded once and its bytes reused (its encoding was a fifth of a job's
        sealing): canonical keys sort as bundle < id < signature, so each canonical object
        is the one before with a key appended."""
        encoded = canonical(body)
        bundle_id = "sha256:" + hashlib.sha256(encoded).hexdigest()
        signed = b'{"bundle":' + encoded + b',"id":' + canonical(bundle_id)
        signature = {"alg": "Ed25519", "keyId": self.key_id,
                     "value": base64.b64encode(self._private.sign(signed + b"}")).decode()}
        return bundle_id, signed + b',"signature":' + canonical(signature) + b"}"

    def __repr__(self) -> str:
        return f"SigningKey(key_id={self.key_id})"


def load_public_key(pem: str) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, Ed25519PublicKey):
        raise BundleInvalid("the public key is not an Ed25519 key")
    return key


_ENVELOPE_KEYS = frozenset({"bundle", "id", "signature"})
_SIGNATURE_KEYS = frozenset({"alg", "keyId", "value"})


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of two equal keys; a signed file holds each key once
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise BundleInvalid("not a proof bundle: a key appears twice")
    return dict(pairs)


def _strict_b64(value: Any) -> bytes:
    """Only the one canonical text of the bytes: base64 leaves unused low bits in its last
    character, and a decoder that ignores them accepts several texts for one signature."""
    if not isinstance(value, str):
        raise BundleInvalid("not a proof bundle: the signature value is not text")
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        raise BundleInvalid("the signature is not base64") from None
    if base64.b64encode(raw).decode() != value:
        raise BundleInvalid("the signature is not in canonical base64")
    return raw


def verify(envelope: dict[str, Any], public_key: Ed25519PublicKey) -> dict[str, Any]:
    """Returns the bundle body when its shape, key id, id and signature hold; raises
    BundleInvalid. Every field of the envelope is checked: those the signature does not
    cover (`keyId`, the signature's text) must be exactly what signing wrote."""
    if not isinstance(envelope, dict) or set(envelope) != _ENVELOPE_KEYS:
        raise BundleInvalid("not a proof bundle: it must hold exactly bundle, id and signature")
    body, bundle_id, signed = envelope["bundle"], envelope["id"], envelope["signature"]
    if not isinstance(signed, dict) or set(signed) != _SIGNATURE_KEYS:
        raise BundleInvalid("not a proof bundle: the signature must hold alg, keyId and value")
    if not isinstance(body, dict):
        raise BundleInvalid("not a proof bundle: its body is not an object")
    if signed["alg"] != "Ed25519" or body.get("type") != BUNDLE_TYPE:
        raise BundleInvalid("unknown bundle type or signature algorithm")
    if signed["keyId"] != key_id(public_key):
        raise BundleInvalid("the signature's keyId is not this public key's")
    signature = _strict_b64(signed["value"])
    if content_id(body) != bundle_id:
        raise BundleInvalid("the bundle's content does not match its id")
    try:
        public_key.verify(signature, canonical({"id": bundle_id, "bundle": body}))
    except InvalidSignature:
        raise BundleInvalid("the signature does not verify with this public key") from None
    return body


def verify_file(raw: bytes, public_key: Ed25519PublicKey) -> tuple[dict[str, Any], str]:
    """Verifies a bundle file's bytes: the envelope and its body, as `verify` does, and the
    file itself, which must be the canonical JSON of what it holds (no other spacing,
    escapes or key order; one final newline is allowed, as editors and shells add it), so
    that no byte of it can change and still verify. Returns the body and the bundle id."""
    text = raw[:-1] if raw.endswith(b"\n") else raw
    try:
        envelope = json.loads(text, object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError):
        raise BundleInvalid("not a proof bundle: the file is not JSON") from None
    body = verify(envelope, public_key)
    if canonical(envelope) != text:
        raise BundleInvalid("the file is not the canonical encoding of its content")
    return body, envelope["id"]
