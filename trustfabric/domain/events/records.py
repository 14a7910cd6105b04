"""What a job event is, as the domain sees it: one change of a PSI job's state."""

from dataclasses import dataclass


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
