"""Partner datasets and their immutable versions."""

from trustfabric.graph.cypher import Cypher

CREATE_DATASET = Cypher(
    "psi.create_dataset",
    """
    CREATE (d:Dataset {id: $id, partner: $partner, name: $name, currentVersion: 0,
                       createdAt: $now})
    RETURN d {.*} AS dataset
    """,
)


DATASET = Cypher(
    "psi.dataset",
    """
    MATCH (d:Dataset {id: $id})
    OPTIONAL MATCH (v:DatasetVersion {key: d.id + '@' + toString(d.currentVersion)})
    RETURN d {.*} AS dataset, v {.*} AS version
    """,
)


DATASETS = Cypher(
    "psi.datasets",
    """
    MATCH (d:Dataset)
    WHERE $partner IS NULL OR d.partner = $partner
    OPTIONAL MATCH (v:DatasetVersion {key: d.id + '@' + toString(d.currentVersion)})
    RETURN d {.*} AS dataset, v {.*} AS version
    ORDER BY d.id
    LIMIT $limit
    """,
)


ADD_VERSION = Cypher(
    "psi.add_version",
    """
    MATCH (d:Dataset {id: $id})
    SET d.currentVersion = $version
    CREATE (v:DatasetVersion {key: $key, datasetId: $id, partner: d.partner,
                              version: $version, hash: $hash, size: $size, uploadedAt: $now})
    CREATE (:DatasetItems {key: $key, items: $items})
    RETURN v {.*} AS version
    """,
)


DATASET_ITEMS = Cypher(
    "psi.dataset_items", "MATCH (i:DatasetItems {key: $key}) RETURN i.items AS items"
)


CURRENT_VERSIONS = Cypher(
    "psi.current_versions",
    """
    MATCH (d:Dataset) WHERE d.currentVersion > 0
    MATCH (v:DatasetVersion {key: d.id + '@' + toString(d.currentVersion)})
    RETURN v {.*} AS version
    """,
)


VERSION = Cypher("psi.version", "MATCH (v:DatasetVersion {key: $key}) RETURN v {.*} AS version")
