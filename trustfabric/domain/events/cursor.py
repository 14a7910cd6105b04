"""Reading job events in order from a log that late batches may still commit into."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from trustfabric.domain.audit import iso
from trustfabric.domain.events.records import JobEvent


@dataclass(frozen=True)
class EventPage:
    events: list[JobEvent]  # oldest first
    until: str | None  # where a full page stops (the last batch's time), to read on from


# How late a job-event batch may commit after its stamp, clocks included (decision 0011).
LATE = timedelta(seconds=2)


@dataclass
class EventCursor:
    """Where a reader of job events reads on from (`after`), and from where it reads again
    once it has caught up (`recheck`).
    A read sees every batch that carries a time more than LATE before the read; a later one
    may still commit. So where a read reached within LATE of when it ran, that stretch is
    read again once the reader has caught up; until then it reads on from each full page's
    end, or a burst larger than a page would be read again and again. Events read twice
    are dropped by their ids."""

    after: str
    recheck: str | None = None

    @classmethod
    def at(cls, now: datetime) -> "EventCursor":
        """A reader that starts now, owing nothing earlier."""
        return cls(iso(now - LATE))

    def advance(self, read_at: datetime, page: EventPage) -> None:
        """After `page`, read (after `self.after`) at `read_at`."""
        settled = iso(read_at - LATE)
        if page.until is None:
            # caught up: next, from where late batches may yet commit (also where a cursor
            # stood ahead of this reader's clock: it comes back, rather than skip what this
            # clock's writers write)
            self.after = min(self.recheck or settled, settled)
            self.recheck = None
            return
        unsettled = max(self.after, settled)
        if unsettled < page.until:
            self.recheck = min(self.recheck or unsettled, unsettled)
        self.after = page.until
