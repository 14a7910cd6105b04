"""The graph model in one place: every label and relationship type the Cypher uses.

Every provenance node has two labels, its kind and `Entity`, and the properties `key`
(`Kind:tenant:natural-id`, unique), `kind` and `tenant`. Tenant-owned data is walled by
the `tenant` property (indexed) rather than by edges to a tenant node, so no tenant node
collects millions of edges.

    (:Repo {url})-[:HAS_COMMIT]->(:Commit {sha})-[:PARENT]->(:Commit)
    (:Image {digest})-[:BUILT_FROM]->(:Commit)      (:Image)-[:BASED_ON]->(:Image)
    (:Job {jobId})-[:RAN]->(:Image)                 (:Job)-[:UNDER]->(:PolicyVersion)
    (:Policy {policyId})-[:HAS_VERSION]->(:PolicyVersion {version, hash})
    (:Anomaly {anomalyId, kind, severity, status})-[:OBSERVED_IN]->(:Job)
    (:Snapshot {imageDigest, facts, factsHash, takenAt})-[:OF]->(:Image)
    (:Environment {name, position, declared, deployed})   declared/deployed: version keys
    (:Promotion {promotionId, from, to, allowed, results, insight})-[:OF]->(:Image),
        -[:UNDER]->(:PolicyVersion {rules}), -[:USED]->(:Snapshot)
    (:PolicyVersion)-[:HAS_RULE]->(:Rule {ruleId, cel, mode, severity})
    (:DriftProposal {environment, fromVersion, toVersion, patch, status, soakUntil})
    (:Anomaly {fingerprint, decision, suppressedBy, verdict})   the paging decision
    (:SuppressionRule {scope, startsAt, endsAt, status, author, approver, lastMatchedAt})
    (:Rollup {week, hash, content, readBy, done})   one per tenant and ISO week

The other records link by property (ids), not by edge: a job names its dataset version,
a delivery its endpoint, so hot nodes never collect edges. `tests/unit/test_graph_model.py`
reads every query and migration and fails on a label or type not listed here.
"""

from typing import Final

from trustfabric.domain.provenance.model import KINDS

# label → what a node of it is
LABELS: Final[dict[str, str]] = {
    **{kind: "a provenance node (see the picture above)" for kind in KINDS},
    "Entity": "every provenance node: its key, kind and tenant",
    "Tenant": "a tenant known to the service",
    "ApiToken": "a bearer token's hash, tenant, role and state",
    "Migration": "a migration applied to this database",
    "AuditEvent": "one audited action (older layout, read by migrations only)",
    "AuditBatch": "a tenant's audit events of one statement, with allow-listed details",
    "PilotControls": "the PSI pilot controls document, versioned",
    "Dataset": "a partner's dataset: its id and current version",
    "DatasetVersion": "one immutable, content-hashed version of a dataset",
    "DatasetItems": "the items of a dataset version, kept apart from its metadata",
    "PsiJob": "a PSI or PSI-CA run: commitments, status, where its results are kept",
    "PsiQueueEntry": "an unfinished PSI job, leased to a worker while it runs",
    "ProofBundle": "a finished job's signed bundle as versions before 0017 kept it",
    "JobEvent": "a job's status change (older layout, read by migrations only)",
    "JobEventBatch": "the job events one statement wrote, for pollers and webhooks",
    "WebhookEndpoint": "a tenant's registered webhook URL and its secret",
    "WebhookDelivery": "one event owed to one endpoint, and its history",
    "WebhookDue": "a delivery still owed: what the dispatcher searches",
    "WebhookCursor": "how far the webhook fan-out has read the job events",
    "WebhookClaimLock": "the record claims of due deliveries take turns on",
}
