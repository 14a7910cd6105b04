"""What an event of the outbox is, as the domain sees it: one change of a PSI job's state,
or another topic's (an anomaly's paging decision)."""

from dataclasses import dataclass

# The topics events are written under: a PSI job's state, an anomaly's paging decision.
PSI_JOB = "psi.job"
ANOMALY = "anomaly"


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
    # PSI_JOB, or ANOMALY: then `job_id` names the anomaly (its recorded id) and `status`
    # is its paging decision
    topic: str = PSI_JOB
