"""Finished PSI jobs' responses, read from their packs together, once per tick."""

from collections.abc import Sequence

from strawberry.dataloader import DataLoader

from trustfabric.domain.psi.records import JobRecord
from trustfabric.domain.psi.results import PsiResults


class PsiLoaders:
    def __init__(self, results: PsiResults) -> None:
        async def load_responses(jobs: Sequence[JobRecord]) -> list[str | None]:
            return await results.responses(list(jobs))

        # keyed by the job's record, which the resolver asking has already scoped
        self.responses: DataLoader[JobRecord, str | None] = DataLoader(load_fn=load_responses)
