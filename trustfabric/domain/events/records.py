"""What an event of the outbox is, as the domain sees it: one change of a PSI job's state,
or another topic's (an anomaly's paging decision)."""

import secrets
from dataclasses import dataclass

from trustfabric.domain.audit import now_iso

# The topics events are written under: a PSI job's state, an anomaly's paging decision, a
# suppression rule's life, a weekly rollup made, a drift proposal's fate.
PSI_JOB = "psi.job"
ANOMALY = "anomaly"
SUPPRESSION = "suppression"
ROLLUP = "rollup"
PROPOSAL = "policy.proposal"
# what a webhook body names the subject of an event of each topic
SUBJECT_KEYS = {PSI_JOB: "jobId", ANOMALY: "anomalyId", SUPPRESSION: "ruleId",
                ROLLUP: "week", PROPOSAL: "proposalId"}


@dataclass(frozen=True, slots=True)
class JobEvent:
    """Heard by subscribers (the `psiJobEvents` subscription), by the load's view of other
    processes' work, and by webhooks' fan-out."""

    id: str
    at: str  # when the job changed (a DONE: when its bundle was sealed)
    tenant: str
    job_id: str
    status: str  # QUEUED, RUNNING, DONE, FAILED or CANCELLED
    # when the statement that wrote it was sent: known of the events read back from the
    # log (`EventSource`), not of those handed on as this process commits them
    written: str | None = None
    # PSI_JOB; for the other topics `job_id` names their subject (an anomaly's recorded
    # id, a rule's id, a week, a proposal's id) and `status` what happened to it
    topic: str = PSI_JOB


def announced(topic: str, tenant: str, subject: str, status: str) -> JobEvent:
    """A new event of `topic`, at once: what a change writes in its own transaction."""
    return JobEvent(id=secrets.token_hex(10), at=now_iso(), tenant=tenant, job_id=subject,
                    status=status, topic=topic)
