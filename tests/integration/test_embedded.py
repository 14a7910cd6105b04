"""The embedded database's files are its owner's alone."""

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
