"""`scripts/psi_evidence_pack.py` against the running service: a pilot's audit excerpt,
its proof bundles verified, the latest soak report, and no selector anywhere in the pack."""

import asyncio
import json
import sys
from pathlib import Path

from tests.helpers import ROOT, selectors
from tests.integration.test_psi_security import secrets_of
from trustfabric.domain.auth import Role

SCRIPT = ROOT / "scripts" / "psi_evidence_pack.py"


async def run(*args: str) -> tuple[int, str, str]:
    """In a process of its own, awaited: the API it asks is served by this event loop."""
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_the_evidence_pack_holds_the_audit_the_verified_bundles_and_the_soak(
    base_url, client, psi_pair, make_token, tmp_path
):
    forbidden: list[str] = []
    jobs = []
    setup_id, _ = await client.setup(psi_pair["dataset"])
    for mode in ("PSI", "PSI_CA"):
        mine = selectors(5, 9)
        prepared = client.prepare(mine, mode)
        forbidden += secrets_of(mine, prepared.request)
        job = await client.submit(psi_pair["dataset"], prepared, setup_id)
        await client.wait(job["id"])
        jobs.append(job["id"])

    token_file = tmp_path / "auditor.token"
    token_file.write_text(await make_token(psi_pair["tenant"], Role.AUDITOR) + "\n")
    pack = tmp_path / "pack"
    status, out, err = await run(sys.executable, str(SCRIPT), "--url", base_url,
                                 "--token-file", str(token_file), "--out", str(pack))
    assert status == 0, out + err
    assert "2 of 2 bundles valid" in out

    evidence = json.loads((pack / "evidence.json").read_text())
    assert evidence["tenant"] == psi_pair["tenant"]
    assert evidence["partners"] == [psi_pair["partner"]]
    assert evidence["bundles"] == {"verified": 2, "invalid": 0}
    verification = json.loads((pack / "verification.json").read_text())
    assert sorted(v["jobId"] for v in verification) == sorted(jobs)
    assert {v["mode"] for v in verification} == {"PSI", "PSI_CA"}
    assert all(v["valid"] and v["outcome"] == "DONE" for v in verification)

    # the audit excerpt: each job's acceptance and run; the partner's dataset events are
    # the partner's, which the tenant's auditor may not read
    accepted = {e["subject"] for e in jsonl(pack / "audit" / "psi.request.jsonl")
                if e["outcome"] == "accepted"}
    done = {e["subject"] for e in jsonl(pack / "audit" / "psi.run.jsonl")
            if e["outcome"] == "done"}
    assert accepted == done == set(jobs)
    assert evidence["skipped"] == {
        f"audit/dataset.register.{psi_pair['partner']}": "FORBIDDEN",
        f"audit/dataset.version.{psi_pair['partner']}": "FORBIDDEN"}

    # the soak report, byte for byte, JSON and plot
    assert len(evidence["soak"]) == 2
    for name in evidence["soak"]:
        source = ROOT / "docs" / "bench" / Path(name).name
        assert (pack / name).read_bytes() == source.read_bytes()

    # every file listed with its digest, and not one form of a selector in any of them
    files = {str(p.relative_to(pack)) for p in pack.rglob("*") if p.is_file()}
    assert files - {"evidence.json", "README.md"} == set(evidence["files"])
    for path in pack.rglob("*"):
        if path.is_file() and path.suffix != ".png":
            text = path.read_text()
            assert not [s for s in forbidden if s in text], path

    # a bundle of the pack verifies offline with the pack's key, as the checklist says
    bundle = pack / "bundles" / f"{jobs[0]}.json"
    status, out, err = await run(sys.executable, "-m", "trustfabric.cli", "verify-bundle",
                                 str(bundle), "--public-key", str(pack / "public-key.pem"))
    assert status == 0 and out.startswith("valid: "), out + err

    # an operator, naming the tenant, reads the partner's dataset events too
    token_file.write_text(await make_token("ops", Role.OPERATOR))
    status, out, err = await run(sys.executable, str(SCRIPT), "--url", base_url,
                                 "--token-file", str(token_file), "--out",
                                 str(tmp_path / "operator"), "--tenant", psi_pair["tenant"])
    assert status == 0, out + err
    evidence = json.loads((tmp_path / "operator" / "evidence.json").read_text())
    assert evidence["skipped"] == {}
    assert evidence["audit"][f"dataset.register.{psi_pair['partner']}"] == 1
