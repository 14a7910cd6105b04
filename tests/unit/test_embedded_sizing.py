"""The embedded database is sized from the machine's memory unless told otherwise."""

from pathlib import Path

import pytest

from trustfabric.graph.embedded import machine_memory_mb, megabytes, sized


@pytest.mark.parametrize(("memory_mb", "heap", "page_cache_mb"), [
    (24_105, "6026m", 4017),  # this 2-core host: about the soaks' 6g and 4096
    (8_192, "2048m", 1365),
    (1_024, "512m", 341),  # a quarter would be too small a heap for the graph
    (131_072, "8192m", 5461),  # no larger than measured near (decision 0022)
    (None, "2048m", 1365),  # memory not known: the earlier default heap
])
def test_heap_and_page_cache_come_from_the_machines_memory(memory_mb, heap, page_cache_mb):
    assert sized(memory_mb) == (heap, page_cache_mb)


def test_settings_override_the_sizing():
    assert sized(24_105, heap="3g") == ("3g", 2048)
    assert sized(24_105, page_cache_mb=1000) == ("6026m", 1000)
    assert sized(24_105, heap="2g", page_cache_mb=0) == ("2g", 0)  # ArcadeDB's quarter


def test_the_memory_is_the_machines_or_its_control_groups_limit(tmp_path: Path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24683772 kB\nMemFree:        19788060 kB\n")
    cgroup = tmp_path / "memory.max"
    cgroup.write_text("max\n")
    assert machine_memory_mb(meminfo, cgroup) == 24_105
    cgroup.write_text(f"{4 * 2**30}\n")
    assert machine_memory_mb(meminfo, cgroup) == 4096
    assert machine_memory_mb(tmp_path / "none", tmp_path / "none") is None
    assert machine_memory_mb(tmp_path / "none", cgroup) == 4096


def test_jvm_sizes_read_as_megabytes():
    assert [megabytes(s) for s in ("2g", "1536m", "524288k", "6G", str(2**30))] == [
        2048, 1536, 512, 6144, 1024]
