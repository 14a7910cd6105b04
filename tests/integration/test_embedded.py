"""The embedded database's files are its owner's alone; its collector's pauses are logged."""

import os
import stat

from trustfabric.graph.embedded import EmbeddedServer


def test_the_data_directory_is_0700_and_its_files_0600(embedded: EmbeddedServer, services
                                                       ) -> None:
    # `services` has migrated and written: the database's files all exist by now
    found = []
    for directory, _, files in os.walk(embedded.data_dir):
        found.append((directory, stat.S_IMODE(os.stat(directory).st_mode)))
        found += [(os.path.join(directory, name),
                   stat.S_IMODE(os.lstat(os.path.join(directory, name)).st_mode))
                  for name in files]
    assert len(found) > 5
    assert [(path, oct(mode)) for path, mode in found if mode & 0o077] == []


def test_the_collector_logs_its_pauses(embedded: EmbeddedServer, services) -> None:
    log = (embedded.data_dir / "log" / "gc.log").read_text()
    assert "Using Parallel" in log  # the collector decision 0015 chose
    assert "Pause" in log  # a JVM that has started and loaded classes has paused by now
