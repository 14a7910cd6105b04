"""DataLoaders bound database round trips, whatever the size of the list."""

from prometheus_client import REGISTRY

from trustfabric.domain.provenance.ingest import plan_batch
from trustfabric.runtime.demo import demo_batch

DEEP = """
query($first: Int!) {
  anomalies(first: $first) {
    edges { node { anomalyId job { jobId policyVersion { version }
      image { digest baseImages { digest } commit { sha repo { url } } } } } }
  }
}
"""


def statements() -> float:
    # background loops (worker, pollers) count under origin="background", token lookups
    # (cached for 0.5 s in tests, so one may land in a slow run's count) under "auth"
    return REGISTRY.get_sample_value("tf_graph_statements_total", {"origin": "request"}) or 0.0


async def test_a_hundred_anomalies_with_lineage_fields_take_a_bounded_number_of_trips(
    gql, make_token, services, tenant
):
    # 10 repos x 17 commits: > 100 anomalies, each with its job, image, commit and repo
    await services.repos.ingest.apply(plan_batch(demo_batch(tenant, 10, 17), tenant, 10_000))
    token = await make_token(tenant)
    await gql(DEEP, token, first=1)  # warms the token cache, so it is not counted

    before = statements()
    result = await gql(DEEP, token, first=100)
    trips = statements() - before
    before = statements()
    await gql(DEEP, token, first=10)
    trips_for_ten = statements() - before

    edges = result["data"]["anomalies"]["edges"]
    assert len(edges) == 100
    assert all(e["node"]["job"]["image"]["commit"]["repo"]["url"] for e in edges)
    # one page + one batch per relation level: job, policy version, image, bases, commit, repo
    assert trips == 7
    assert trips_for_ten == trips  # the same count for 10 as for 100
