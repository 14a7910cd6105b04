"""Finished PSI jobs' responses, read from their packs together, once per tick."""

from collections.abc import Sequence

from strawberry.dataloader import DataLoader

from trustfabric.domain.psi.records import JobRecord
from trustfabric.domain.psi.results import PsiResults
from trustfabric.errors import AppError


class PsiLoaders:
    def __init__(self, results: PsiResults) -> None:
        # a job whose response cannot be read fails its own field, not the page's
        async def load_responses(jobs: Sequence[JobRecord]) -> list[str | None | AppError]:
            return await results.responses(list(jobs))

        # keyed by the job's record, which the resolver asking has already scoped
        self.responses: DataLoader[JobRecord, str | None] = DataLoader(load_fn=load_responses)
