"""graphql-core's executor, without what it kept alive that it did not need.

Executors and subscription memos are let go without the cyclic collector (decision 0014).
"""

import weakref
from collections.abc import Sequence
from typing import Any

from graphql.execution import Executor
from graphql.pyutils import gather_with_cancel
from graphql.type.definition import GraphQLResolveInfoHelpers
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext


class ExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        track = weakref.WeakMethod(self.track_async_work)

        def track_async_work(values: Sequence[Any]) -> None:
            executor_track = track()
            if executor_track is not None:
                executor_track(values)
            # else the operation has ended and was freed: no one is left to settle it for

        # the same helpers without the executor in them (gathering never needed it)
        self.async_helpers = GraphQLResolveInfoHelpers(
            gather=lambda values: gather_with_cancel(*values), track=track_async_work)

    def build_per_event_executor(self, payload: Any) -> Executor[Any]:
        executor = super().build_per_event_executor(payload)
        executor._relevant_sub_fields = {}  # the event's own memo, gone with the event
        return executor
