"""A proof bundle as its holder checks it: signed, content-addressed, explained, and
tamper-evident, by the library and by `trustfabric verify-bundle`."""

import json
import subprocess
import sys

import pytest

from tests.helpers import selectors
from trustfabric.domain.psi.bundles import BundleInvalid, canonical, load_public_key, verify

BUNDLE = """query($id: ID!) { proofBundle(jobId: $id) { id envelope explainerMarkdown } }"""


KEY = "query { proofPublicKey }"


async def test_bundle_is_signed_content_addressed_explained_and_tamper_evident(
    client, gql, make_token, psi_pair, tmp_path
):
    setup_id, _ = await client.setup(psi_pair["dataset"])
    prepared = client.prepare(selectors(4, 12), "PSI_CA")
    job = await client.submit(psi_pair["dataset"], prepared, setup_id)
    await client.wait(job["id"])
    token = await make_token(psi_pair["tenant"])
    bundle = (await gql(BUNDLE, token, id=job["id"]))["data"]["proofBundle"]
    envelope = json.loads(bundle["envelope"])
    public_pem = (await gql(KEY))["data"]["proofPublicKey"]

    body = verify(envelope, load_public_key(public_pem))
    assert bundle["envelope"].encode() == canonical(envelope)  # stored as signed: canonical
    assert envelope["id"] == bundle["id"]
    assert body["jobId"] == job["id"] and body["tenant"] == psi_pair["tenant"]
    assert body["mode"] == "PSI_CA" and body["outcome"] == "DONE"
    assert body["dataset"]["id"] == psi_pair["dataset"] and body["dataset"]["version"] == 1
    assert body["commitments"]["request"].startswith("sha256:")
    explainer = body["explainer"]
    assert set(explainer) == {"rationale", "provenance", "constraints"}
    assert explainer["constraints"]["cardinalityOnly"] is True
    assert explainer["constraints"]["flags"] == {"psi": True, "psiCa": True}
    # the Markdown is rendered from the signed fields: it says what they say
    assert f"job `{job['id']}`" in bundle["explainerMarkdown"]
    assert "Mode **PSI_CA** (cardinality only)" in bundle["explainerMarkdown"]
    for reason in explainer["rationale"]["allowedBecause"]:
        assert f"- {reason}\n" in bundle["explainerMarkdown"]
    assert prepared.request not in bundle["envelope"]  # no blinded selector in the bundle

    good, bad, key = tmp_path / "bundle.json", tmp_path / "tampered.json", tmp_path / "key.pem"
    good.write_text(bundle["envelope"])
    key.write_text(public_pem)
    tampered = bundle["envelope"].replace('"requestSize":16', '"requestSize":17')
    assert tampered != bundle["envelope"]
    bad.write_text(tampered)
    with pytest.raises(BundleInvalid):
        verify(json.loads(tampered), load_public_key(public_pem))
    cli = [sys.executable, "-m", "trustfabric.cli", "verify-bundle", "--public-key", str(key)]
    result = subprocess.run([*cli, str(good)], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("valid: " + envelope["id"])
    result = subprocess.run([*cli, str(bad)], capture_output=True, text=True)
    assert result.returncode == 1 and "INVALID" in result.stderr
    # every single byte matters
    for position in (10, len(bundle["envelope"]) // 2, len(bundle["envelope"]) - 5):
        flipped = bytearray(bundle["envelope"].encode())
        flipped[position] ^= 0x01
        with pytest.raises((BundleInvalid, ValueError)):
            verify(json.loads(bytes(flipped)), load_public_key(public_pem))
