"""Child-process entry point hosting ArcadeDB (in a JVM) with its Bolt listener.

Run by `graph.embedded.EmbeddedServer`; the JVM lives in this process, not in the API's,
so the API can be killed or restarted without taking the database down, and the server is
stopped with its own `stop()` on SIGTERM (killing a JVM host mid-write corrupts shutdown).
"""

import argparse
import json
import os
import signal
import sys
import threading


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--bolt-port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--heap", default="2g")
    parser.add_argument("--wal-flush", type=int, default=1)
    parser.add_argument("--page-cache-mb", type=int, default=0)
    parser.add_argument("--ready-file", required=True)
    args = parser.parse_args()
    password = sys.stdin.readline().strip()

    import arcadedb_embedded as arcadedb

    gc_log = os.path.join(args.root, "log", "gc.log")
    os.makedirs(os.path.dirname(gc_log), mode=0o700, exist_ok=True)

    server = arcadedb.ArcadeDBServer(
        args.root,
        root_password=password,
        config={
            "host": "127.0.0.1",
            "http_port": args.http_port,
            "server_plugins": "Bolt:com.arcadedb.bolt.BoltProtocolPlugin",
            "bolt_port": args.bolt_port,
            "tx_wal_flush": args.wal_flush,
        },
        jvm_kwargs={"heap_size": args.heap, "jvm_args": jvm_args(gc_log, args.page_cache_mb)},
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    # Dies with the process that started it: a `serve` killed with SIGKILL cannot stop it,
    # and an orphan would hold the data directory (the next `serve` refused to start, and a
    # supervisor restarting it would loop). Orphaned, it is re-parented: it stops cleanly.
    parent = os.getppid()
    threading.Thread(target=_watch_parent, args=(parent, stop), daemon=True).start()
    server.start()
    try:
        server.create_database(args.database)  # opens it when it already exists
        # Bolt listens before the database exists; the launcher waits for this file instead.
        # It also tells other commands where this server listens and who started it (an
        # orphan's parent has changed: it is stopping). Renamed into place: read whole.
        partial = f"{args.ready_file}.partial"
        with open(partial, "w") as ready:
            json.dump({"pid": os.getpid(), "parent": parent, "bolt_port": args.bolt_port,
                       "http_port": args.http_port}, ready)
        os.replace(partial, args.ready_file)
        stop.wait()
    finally:
        server.stop()
    # Stopped and flushed. Threads serving Bolt clients that are still connected keep the
    # JVM (and so this process) alive after stop(); nothing is left for them to do.
    sys.stdout.flush()
    os._exit(0)


PARENT_WATCH_S = 0.5


def jvm_args(gc_log: str, page_cache_mb: int) -> list[str]:
    """The database JVM's flags, beside its heap."""
    return [
        # the throughput collector: G1 costs more CPU a job on two cores (decision 0015)
        "-XX:+UseParallelGC",
        # its pauses beside ArcadeDB's own logs, rotated: a slowdown can be told apart
        # from a collector working harder
        f"-Xlog:gc:file={gc_log}:time,uptime:filecount=4,filesize=8m",
        # a new or grown record goes to the bucket's last pages: looking for free space in
        # earlier ones read page after page of a grown database (decision 0026)
        "-Darcadedb.bucketReuseSpaceMode=low",
    ] + ([f"-Darcadedb.maxPageRAM={page_cache_mb}"] if page_cache_mb else [])


def _watch_parent(parent: int, stop: threading.Event) -> None:
    while not stop.wait(PARENT_WATCH_S):
        if os.getppid() != parent:
            stop.set()


if __name__ == "__main__":
    main()
