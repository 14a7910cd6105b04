"""The caller, as its token says: what a client shows as signed in, and whether it offers
an operator's choice of tenant."""

import strawberry


@strawberry.type(description="The caller, as its token says.")
class Viewer:
    tenant: str = strawberry.field(description="The token's tenant.")
    role: str = strawberry.field(description="member, reviewer, auditor or operator.")
