"""The event cursor, without a database."""

from datetime import UTC, datetime, timedelta

from trustfabric.domain.audit import iso
from trustfabric.domain.events.cursor import LATE, EventCursor, EventPage


def test_a_cursor_ahead_of_the_readers_clock_comes_back_once_caught_up():
    """Left ahead (a writer's clock, or a reader, ahead of this one), it would skip every
    event this clock's writers write until this clock caught up with it."""
    now = datetime.now(UTC)
    cursor = EventCursor(iso(now + timedelta(hours=3)))
    cursor.advance(now, EventPage([], None))
    assert cursor.after == iso(now - LATE)
