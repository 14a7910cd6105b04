"""Produce the evidence pack of a PSI pilot from a running Trust Fabric service.

    .venv/bin/python scripts/psi_evidence_pack.py --url http://127.0.0.1:8000 \\
        --token-file auditor.token --out pack/ [--tenant acme]

The token is an auditor's of the pilot's tenant, or an operator's with `--tenant`. The
pack holds, under `--out`:

    audit/<action>.jsonl     the pilot's audit events (psi.request, psi.run, psi.cancel;
                             dataset.register and dataset.version of its partners, and
                             controls.change, where the token may read them)
    jobs.jsonl               the tenant's PSI jobs, newest first (ids, commitments, sizes,
                             statuses; never a request or a response)
    public-key.pem           the service's bundle verification key (proofPublicKey)
    bundles/<job id>.json    the proof bundles of DONE jobs, as the service returned them
    verification.json        each bundle verified here with the package's own verifier
    soak/                    the latest PSI soak report of docs/bench/ (JSON and plot)
    evidence.json, README.md what was collected, from where, when, with every file's SHA-256

Every bundle can be checked again offline, without this script:
`trustfabric verify-bundle bundles/<job id>.json --public-key public-key.pem`.
The exit status is 1 when a bundle does not verify, or when the service refuses the token.
"""

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trustfabric.domain.psi.bundles import BundleInvalid, load_public_key, verify_file

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "docs" / "bench"
PAGE = 100  # the API's largest page

JOBS = """query($tenant: String, $after: String, $first: Int!) {
  psiJobs(tenant: $tenant, first: $first, after: $after) {
    edges { node { id tenant datasetId datasetVersion mode status requestSize
                   requestCommitment createdAt startedAt completedAt error { code message } } }
    pageInfo { hasNextPage endCursor } } }"""
# 50 a page, given as a literal: the cost limit counts a variable `first` as 100, and the
# events of each of those as a list of 10 (trustfabric/schema/extensions/limits.py)
AUDIT = """query($action: String, $tenant: String, $after: String) {
  auditEvents(action: $action, tenant: $tenant, first: 50, after: $after) {
    events { id at tenant actor action subject outcome details }
    endCursor hasNextPage } }"""
BUNDLE = """query($id: ID!) { proofBundle(jobId: $id) { id envelope } }"""
KEY = """query { proofPublicKey }"""

TENANT_ACTIONS = ("psi.request", "psi.run", "psi.cancel")
PARTNER_ACTIONS = ("dataset.register", "dataset.version")


class Refused(Exception):
    """The service answered with an error: its code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class Service:
    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/") + "/graphql"
        self.token = token

    def query(self, query: str, **variables: Any) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables}).encode()
        request = urllib.request.Request(self.url, data=body, headers={
            "authorization": f"Bearer {self.token}", "content-type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                answer = json.load(response)
        except urllib.error.HTTPError as error:  # 401, 429, 503: a coded JSON body
            answer = json.load(error)
            if "error" in answer:
                raise Refused(answer["error"]["code"], answer["error"]["message"]) from None
        if answer.get("errors"):
            first = answer["errors"][0]
            raise Refused(first.get("extensions", {}).get("code", "UNKNOWN"), first["message"])
        return dict(answer["data"])


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row, sort_keys=True) + "\n" for row in rows))


def read_jobs(service: Service, tenant: str | None, limit: int) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    after = None
    while len(jobs) < limit:
        page = service.query(JOBS, tenant=tenant, after=after,
                             first=min(PAGE, limit - len(jobs)))["psiJobs"]
        jobs += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    return jobs


def read_audit(service: Service, action: str, tenant: str | None,
               limit: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    after = None
    while len(events) < limit:
        page = service.query(AUDIT, action=action, tenant=tenant, after=after)["auditEvents"]
        events += page["events"][:limit - len(events)]
        if not page["hasNextPage"]:
            break
        after = page["endCursor"]
    return events


def latest_soak(bench: Path) -> Path | None:
    """The soak report committed last (git), the first of them linked in soak.md on a tie."""
    reports = sorted(bench.glob("soak-*.json"))
    if not reports:
        return None
    doc = (bench / "soak.md").read_text() if (bench / "soak.md").exists() else ""
    linked = re.findall(r"\((soak-[^)]+\.json)\)", doc)

    def committed(path: Path) -> int:
        out = subprocess.run(["git", "log", "-1", "--format=%ct", "--", path.name],
                             cwd=bench, capture_output=True, text=True)
        return int(out.stdout.strip() or path.stat().st_mtime)

    def order(path: Path) -> tuple[int, int]:
        rank = linked.index(path.name) if path.name in linked else len(linked)
        return (-committed(path), rank)

    return min(reports, key=order)


def sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the API, e.g. http://127.0.0.1:8000")
    parser.add_argument("--token-file", required=True, type=Path,
                        help="a file holding an auditor's token (or an operator's)")
    parser.add_argument("--out", required=True, type=Path, help="the pack's directory")
    parser.add_argument("--tenant", help="operators: the pilot's tenant")
    parser.add_argument("--max-jobs", type=int, default=1000)
    parser.add_argument("--max-bundles", type=int, default=100)
    parser.add_argument("--max-events", type=int, default=10_000, help="per action")
    parser.add_argument("--soak", type=Path, help="a soak JSON (default: the latest in "
                                                  "docs/bench/)")
    args = parser.parse_args()

    service = Service(args.url, args.token_file.read_text().strip())
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    skipped: dict[str, str] = {}
    try:
        public_pem = service.query(KEY)["proofPublicKey"]
        jobs = read_jobs(service, args.tenant, args.max_jobs)
    except Refused as refused:
        print(f"the service refused: {refused}", file=sys.stderr)
        return 1
    (out / "public-key.pem").write_text(public_pem)
    write_jsonl(out / "jobs.jsonl", jobs)

    tenant = args.tenant or (jobs[0]["tenant"] if jobs else None)
    partners = sorted({job["datasetId"].split("/", 1)[0] for job in jobs})
    audit_counts: dict[str, int] = {}
    reads = [(action, tenant) for action in TENANT_ACTIONS]
    reads += [(action, partner) for action in PARTNER_ACTIONS for partner in partners]
    reads.append(("controls.change", None))
    for action, whose in reads:
        label = action if whose in (None, tenant) else f"{action}.{whose}"
        try:
            events = read_audit(service, action, whose, args.max_events)
        except Refused as refused:  # e.g. an auditor reading its partner's events
            skipped[f"audit/{label}"] = refused.code
            continue
        write_jsonl(out / "audit" / f"{label}.jsonl", events)
        audit_counts[label] = len(events)

    key = load_public_key(public_pem)
    verified: list[dict[str, Any]] = []
    for job in [job for job in jobs if job["status"] == "DONE"][:args.max_bundles]:
        bundle = service.query(BUNDLE, id=job["id"])["proofBundle"]
        if bundle is None:
            verified.append({"jobId": job["id"], "valid": False, "error": "no bundle"})
            continue
        path = out / "bundles" / f"{job['id']}.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(bundle["envelope"])
        result: dict[str, Any] = {"jobId": job["id"], "bundleId": bundle["id"],
                                  "file": str(path.relative_to(out))}
        try:
            body, bundle_id = verify_file(path.read_bytes(), key)
            same = (bundle_id == bundle["id"] and body["jobId"] == job["id"]
                    and body["tenant"] == job["tenant"])
            result |= {"valid": same, "mode": body["mode"], "outcome": body["outcome"],
                       "dataset": body["dataset"]}
            if not same:
                result["error"] = "the bundle names another job, tenant or id"
        except (BundleInvalid, ValueError) as error:
            result |= {"valid": False, "error": str(error)}
        verified.append(result)
    (out / "verification.json").write_text(json.dumps(verified, indent=2, sort_keys=True))

    soak = args.soak or latest_soak(BENCH)
    soak_files: list[str] = []
    if soak is not None:
        (out / "soak").mkdir(exist_ok=True)
        for source in (soak, soak.with_suffix(".png")):
            if source.exists():
                shutil.copyfile(source, out / "soak" / source.name)
                soak_files.append(f"soak/{source.name}")

    invalid = [v for v in verified if not v["valid"]]
    files = sorted(p for p in out.rglob("*") if p.is_file()
                   and p.name not in ("evidence.json", "README.md"))
    evidence = {
        "service": args.url, "tenant": tenant, "partners": partners,
        "collectedAt": datetime.now(UTC).isoformat(timespec="seconds"),
        "publicKey": sha256(out / "public-key.pem"),
        "jobs": {"read": len(jobs), "byStatus": _count(job["status"] for job in jobs)},
        "audit": audit_counts, "skipped": skipped,
        "bundles": {"verified": len(verified) - len(invalid), "invalid": len(invalid)},
        "soak": soak_files,
        "files": {str(p.relative_to(out)): sha256(p) for p in files},
    }
    (out / "evidence.json").write_text(json.dumps(evidence, indent=2, sort_keys=True))
    (out / "README.md").write_text(_readme(evidence))
    print(f"{out}: {len(jobs)} jobs, {sum(audit_counts.values())} audit events, "
          f"{len(verified) - len(invalid)} of {len(verified)} bundles valid"
          + (f", soak {soak.name}" if soak else ""))
    for bad in invalid:
        print(f"INVALID bundle of job {bad['jobId']}: {bad['error']}", file=sys.stderr)
    return 1 if invalid else 0


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


def _readme(e: dict[str, Any]) -> str:
    lines = [
        f"# PSI pilot evidence: {e['tenant']}", "",
        f"Collected from {e['service']} at {e['collectedAt']}.", "",
        f"- Jobs read: {e['jobs']['read']} ({', '.join(f'{k} {v}' for k, v in sorted(e['jobs']['byStatus'].items())) or 'none'}).",
        f"- Audit events: {', '.join(f'{k} {v}' for k, v in sorted(e['audit'].items())) or 'none'}.",
        f"- Not readable with this token: {', '.join(f'{k} ({v})' for k, v in sorted(e['skipped'].items())) or 'nothing'}.",
        f"- Proof bundles: {e['bundles']['verified']} valid, {e['bundles']['invalid']} invalid "
        "(verification.json).",
        f"- Soak report: {', '.join(e['soak']) or 'none'}.", "",
        "Check any bundle again offline:", "",
        "    trustfabric verify-bundle bundles/<job id>.json --public-key public-key.pem", "",
        "## Files", "",
        *(f"- `{name}` {digest}" for name, digest in sorted(e["files"].items())), "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
