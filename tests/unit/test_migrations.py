"""Migration files as the runner reads them."""

from trustfabric import migrations


def test_statements_are_split_and_comments_dropped():
    first = migrations.load_migrations()[0]
    assert all(s.startswith("CREATE CONSTRAINT") for s in first.statements)
    assert not any("//" in s for s in first.statements)
