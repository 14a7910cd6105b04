"""The flags the embedded database's JVM is started with, each a measured decision."""

from trustfabric.graph.embedded_server import jvm_args


def test_the_database_jvm_collects_logs_and_appends_records() -> None:
    flags = jvm_args("/data/log/gc.log", 4017)
    assert "-XX:+UseParallelGC" in flags  # decision 0015
    assert any(f.startswith("-Xlog:gc:file=/data/log/gc.log:") for f in flags)
    # no search of a grown database's pages for free space (decision 0026)
    assert "-Darcadedb.bucketReuseSpaceMode=low" in flags
    assert "-Darcadedb.maxPageRAM=4017" in flags


def test_without_a_page_cache_size_arcadedb_keeps_its_own() -> None:
    assert not any("maxPageRAM" in f for f in jvm_args("gc.log", 0))
