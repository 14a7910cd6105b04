"""Proof bundles without a service: a signed file verifies, and no change of one of its
bytes does (`trustfabric verify-bundle` reads files through `verify_file`)."""

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trustfabric.domain.psi.bundles import (
    BUNDLE_TYPE,
    BundleInvalid,
    SigningKey,
    canonical,
    verify_file,
)

BODY = {"type": BUNDLE_TYPE, "jobId": "0190c0de-0000-7000-8000-000000000001",
        "tenant": "acme", "mode": "PSI_CA", "outcome": "DONE", "requestSize": 16,
        "dataset": {"id": "globex/customers", "version": 1}, "note": "café ✓"}


@pytest.fixture(scope="module")
def signed() -> tuple[SigningKey, bytes]:
    key = SigningKey(Ed25519PrivateKey.generate())
    return key, key.sign(BODY)[1]


def test_a_signed_file_verifies_with_or_without_a_final_newline(signed):
    key, raw = signed
    body, bundle_id = verify_file(raw, key.public)
    assert body == BODY and bundle_id == json.loads(raw)["id"]
    assert verify_file(raw + b"\n", key.public)[1] == bundle_id


def test_every_flip_of_every_bit_of_a_bundle_is_refused(signed):
    key, raw = signed
    accepted = []
    for position in range(len(raw)):
        for bit in range(8):
            flipped = bytearray(raw)
            flipped[position] ^= 1 << bit
            try:
                verify_file(bytes(flipped), key.public)
            except BundleInvalid:
                continue
            accepted.append((position, bit))
    assert accepted == []


def _envelope(raw: bytes) -> dict:
    return json.loads(raw)


def test_fields_outside_the_signature_and_non_canonical_files_are_refused(signed):
    key, raw = signed
    other = SigningKey(Ed25519PrivateKey.generate())

    def refused(envelope_or_bytes: dict | bytes, public=key.public) -> str:
        data = (envelope_or_bytes if isinstance(envelope_or_bytes, bytes)
                else canonical(envelope_or_bytes))
        with pytest.raises(BundleInvalid) as error:
            verify_file(data, public)
        return str(error.value)

    # keyId is not signed: it must still name the key given
    envelope = _envelope(raw)
    envelope["signature"]["keyId"] = "ed25519:0000000000000000"
    assert "keyId" in refused(envelope)
    assert "keyId" in refused(raw, other.public)
    # the unused low bits of base64's last character: same bytes, another text
    envelope = _envelope(raw)
    value = envelope["signature"]["value"]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = value.rstrip("=")[-1]
    twin = alphabet[alphabet.index(last) ^ 1]
    forged = value.rstrip("=")[:-1] + twin + "=" * (len(value) - len(value.rstrip("=")))
    assert base64.b64decode(forged) == base64.b64decode(value)
    envelope["signature"]["value"] = forged
    assert "canonical base64" in refused(envelope)
    # extra fields, anywhere outside the signed body
    for where in ((), ("signature",)):
        envelope = _envelope(raw)
        target = envelope
        for step in where:
            target = target[step]
        target["extra"] = 1
        refused(envelope)
    # the same content, not in its canonical encoding
    envelope = _envelope(raw)
    for variant in (
        json.dumps(envelope).encode(),  # spaces
        json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode(),  # \u escapes
        raw.replace(b'{"bundle":', b'{"bundle":', 1).replace(b"}", b"} ", 1),
        b" " + raw,
        raw + b"\n\n",
        raw[:-1] + b',"id":' + canonical(envelope["id"]) + b"}",  # a key twice
    ):
        assert variant != raw
        refused(variant)
