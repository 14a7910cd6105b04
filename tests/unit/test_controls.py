"""Pilot controls without a database: weights within bounds, quotas counted."""

import pytest

from trustfabric.domain.controls import PilotControls, Quota, QuotaGate
from trustfabric.errors import BadUserInput, QuotaExceeded


def test_a_documents_weights_are_brought_within_bounds():
    """A weight of 0 hung the fair queue; a document written before the bounds is still
    read (the mutation refuses weights outside them)."""
    weights = {name: PilotControls.from_document({"tenants": {"a": {"weight": given}}})
               .tenants["a"].weight for name, given in
               (("zero", 0), ("below", -1), ("above", 101), ("within", 0.5))}
    assert weights == {"zero": 0.01, "below": 0.01, "above": 100.0, "within": 0.5}


async def taken(gate: QuotaGate, quota: Quota, n: int) -> int:
    admitted = 0
    for _ in range(n):
        try:
            await gate.take("t", quota)
            admitted += 1
        except QuotaExceeded:
            pass
    return admitted


async def test_a_quota_of_ten_a_second_with_a_burst_of_ten_admits_ten():
    """The burst and the sustained rate are counted apart, even when they are the same
    limit (updateTenantControls sets the burst to the rate when none is given)."""
    assert await taken(QuotaGate(), Quota(10, 1, 10), 50) == 10
    assert await taken(QuotaGate(), Quota(10, 60, 4), 50) == 4


def test_the_controls_file_names_tenants_and_parties_by_the_id_rules(tmp_path):
    path = tmp_path / "pilot-controls.yaml"
    path.write_text("tenants:\n  acme: {}\noptedOut: [globex]\n")
    assert set(PilotControls.from_yaml(path).tenants) == {"acme"}
    for bad in ('tenants:\n  "zz:Job": {}\n', 'optedOut: ["a/b"]\n', 'optedOut: [""]\n'):
        path.write_text(bad)
        with pytest.raises(BadUserInput):
            PilotControls.from_yaml(path)
    with pytest.raises(BadUserInput):
        PilotControls().with_tenant("t" * 5000, psi=True)
