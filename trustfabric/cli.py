"""`trustfabric` console command: serve, migrate, seed-demo, token management."""

import asyncio
import contextlib
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from prometheus_client import REGISTRY, start_http_server

from trustfabric.domain.auth import Role
from trustfabric.domain.fairness.load import GINI, LAG_PROBE_S, settle_collector
from trustfabric.domain.psi.bundles import (
    BundleInvalid,
    SigningKey,
    load_public_key,
    verify_file,
)
from trustfabric.domain.psi.protocol import ServerKey
from trustfabric.errors import AppError
from trustfabric.graph.embedded import (
    EmbeddedServer,
    machine_memory_mb,
    port_open,
    read_ready,
    sized,
)
from trustfabric.migrations import migrate as run_migrations
from trustfabric.runtime.background import Background
from trustfabric.runtime.demo import (
    DEMO_TENANTS,
    seed_demo,
    seed_demo_datasets,
    seed_demo_policies,
)
from trustfabric.runtime.services import Services
from trustfabric.settings import Settings, get_settings
from trustfabric.web import serving
from trustfabric.web.logs import LOG_CONFIG

app = typer.Typer(help="Trust Fabric provenance-and-privacy graph API.", no_args_is_help=True)
token_app = typer.Typer(help="Issue, list and revoke API tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def graph_settings(*, share: bool = True) -> Iterator[Settings]:
    """Settings pointing at a database: the configured one; with no URI configured, the
    embedded server of the data directory, started here (and stopped on the way out) or,
    if `share`, the one another command runs (a `serve`: a token, a migration or a worker
    then use its database and leave it running)."""
    settings = get_settings()
    if not settings.embedded:
        yield settings
        return
    heap, page_cache_mb = sized(machine_memory_mb(), settings.embedded_heap,
                                settings.embedded_page_cache_mb)
    server = EmbeddedServer(
        settings.data_dir, settings.neo4j_database, settings.embedded_bolt_port,
        settings.embedded_http_port, heap, settings.embedded_wal_flush, page_cache_mb,
    )
    server.wait_for_orphan()  # a `serve` killed with SIGKILL left it: it is stopping
    if (owner := server.owner()) is not None:
        if (ready := read_ready(server.data_dir)) is not None:
            # where it listens, from its ready file: this command's environment need not
            # repeat the ports the `serve` was started with
            server.bolt_port, server.http_port = ready.bolt_port, ready.http_port
        answering = port_open(server.bolt_port)
        if not (share and answering):
            why = "stop it first" if answering else f"not on Bolt port {server.bolt_port}"
            typer.echo(f"the embedded database under {server.data_dir} is run by process "
                       f"{owner}: {why}", err=True)
            raise typer.Exit(1)
        typer.echo(f"using the embedded database of process {owner} under {server.data_dir}")
        yield _pointed_at(server)
        return
    cache = f"{page_cache_mb} MB" if page_cache_mb else "a quarter of it"
    typer.echo(f"starting the embedded database under {server.data_dir} (heap {heap}, page "
               f"cache {cache}) …")
    # A stop request (SIGTERM: `docker stop`, systemd, kill) must stop the database too, and
    # it runs in a session of its own. By default SIGTERM ends this process at once, and
    # uvicorn raises it again once it has shut down: as SystemExit it unwinds to `stop`.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with server:
        yield _pointed_at(server)


def _pointed_at(server: EmbeddedServer) -> Settings:
    # Exported so uvicorn workers, separate processes, find the same database.
    os.environ["TF_NEO4J_URI"] = server.uri
    os.environ["TF_NEO4J_PASSWORD"] = server.password
    get_settings.cache_clear()
    return get_settings()


async def _prepare(settings: Settings, seed: bool) -> list[str]:
    services = Services.open(settings)
    try:
        applied = await run_migrations(services.executor)
        await services.seed_controls()
        await services.repos.webhooks.seal_stored_secrets()  # earlier versions stored them in clear
        await services.results.adopt_inline()  # earlier versions kept results in the graph
        lines: list[str] = []
        if seed:
            demo_file = settings.data_dir / "demo-tokens.txt"
            if not await services.repos.tokens.tenants():
                await seed_demo(services.repos.ingest, services.suppressions)
                await seed_demo_datasets(services.datasets)
                await seed_demo_policies(services.policy)
                lines = []
                for tenant in DEMO_TENANTS:
                    _, secret = await services.repos.tokens.create(tenant, Role.MEMBER, "demo")
                    lines.append(f"{tenant} (member): {secret}")
                _, secret = await services.repos.tokens.create("acme", Role.OPERATOR, "demo")
                lines.append(f"acme (operator, any tenant): {secret}")
                demo_file.parent.mkdir(parents=True, exist_ok=True)
                demo_file.write_text("\n".join(lines) + "\n")
                demo_file.chmod(0o600)
            if demo_file.exists():
                lines = demo_file.read_text().splitlines()
        return [f"applied migration {m}" for m in applied] + lines
    finally:
        await services.close()


@app.command()
def serve(
    seed_demo_data: Annotated[bool, typer.Option("--seed-demo/--no-seed-demo",
                                                 help="Load demo data when the graph is empty.")] = False,
    port: Annotated[int | None, typer.Option(help="HTTP port (default TF_PORT or 8000).")] = None,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes.")] = 1,
) -> None:
    """Start the database (embedded unless TF_NEO4J_URI is set), migrate, and serve GraphQL."""
    with graph_settings(share=False) as settings:  # nobody else's database stops under it
        for line in asyncio.run(_prepare(settings, seed_demo_data)):
            typer.echo(line)
        port = port or settings.port
        typer.echo(f"GraphQL (GraphiQL in a browser): http://{settings.host}:{port}/graphql")
        serving.run(
            "trustfabric.app:create_app", host=settings.host, port=port, workers=workers,
            log_level="info", access_log=False,
            log_config=LOG_CONFIG,  # one line a record, control characters escaped
        )


@app.command()
def migrate() -> None:
    """Apply pending migrations and exit."""
    with graph_settings() as settings:
        for line in asyncio.run(_prepare(settings, seed=False)) or ["no pending migrations"]:
            typer.echo(line)


@app.command("seed-demo")
def seed_demo_command() -> None:
    """Migrate, then load the demo data set if the graph has no tenant yet."""
    with graph_settings() as settings:
        for line in asyncio.run(_prepare(settings, seed=True)):
            typer.echo(line)


async def _token(settings: Settings, tenant: str, role: Role, name: str) -> str:
    services = Services.open(settings)
    try:
        await run_migrations(services.executor)
        token_id, secret = await services.repos.tokens.create(tenant, role, name)
        return f"token id: {token_id}\ntoken: {secret}"
    finally:
        await services.close()


async def _revoke(settings: Settings, token_id: str) -> None:
    services = Services.open(settings)
    try:
        await services.repos.tokens.revoke(token_id)
    finally:
        await services.close()


async def _issued(settings: Settings, tenant: str | None) -> list[str]:
    services = Services.open(settings)
    try:
        await run_migrations(services.executor)
        return [f"{t.id}\t{t.tenant}\t{t.role.value}\t{t.name or '-'}\t{t.created_at}"
                + ("\trevoked" if t.revoked else "")
                for t in await services.repos.tokens.issued(tenant)]
    finally:
        await services.close()


def _failed(error: AppError) -> typer.Exit:
    """An expected refusal (unknown id, database down): one line, exit status 1."""
    typer.echo(f"error: {error.message}", err=True)
    return typer.Exit(1)


@token_app.command("create")
def token_create(
    tenant: Annotated[str, typer.Option(help="The tenant the token acts for.")],
    role: Annotated[Role, typer.Option(help="member, reviewer, auditor or operator.")] = Role.MEMBER,
    name: Annotated[str, typer.Option(help="A label to recognise the token by.")] = "",
) -> None:
    """Issue a token; its secret is printed once and never stored."""
    with graph_settings() as settings:
        typer.echo(asyncio.run(_token(settings, tenant, role, name)))


@token_app.command("revoke")
def token_revoke(token_id: Annotated[str, typer.Argument(help="The token id to revoke.")]) -> None:
    """Revoke a token: every process refuses it within TF_TOKEN_CACHE_TTL_S."""
    with graph_settings() as settings:
        try:
            asyncio.run(_revoke(settings, token_id))
        except AppError as error:
            raise _failed(error) from None
        typer.echo(f"revoked {token_id}")


@token_app.command("list")
def token_list(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's tokens.")] = None,
) -> None:
    """List tokens: id, tenant, role, name, created (never a secret)."""
    with graph_settings() as settings:
        try:
            lines = asyncio.run(_issued(settings, tenant))
        except AppError as error:
            raise _failed(error) from None
        typer.echo("id\ttenant\trole\tname\tcreated")
        for line in lines:
            typer.echo(line)


async def _work(settings: Settings) -> None:
    services = Services.open(settings)
    worker = services.worker()
    settle_collector()  # it claims and writes as the API's in-process worker does
    # its event loop's lateness and its service rate, kept current for its metrics
    background = Background()
    background.every("load-probe", LAG_PROBE_S, services.load.tick)
    try:
        await worker.run(services.events.wake)
    finally:
        await background.stop()
        await asyncio.to_thread(worker.close)
        await services.close()


@app.command()
def worker(
    metrics_port: Annotated[int | None, typer.Option(
        envvar="TF_WORKER_METRICS_PORT",
        help="Serve Prometheus metrics (jobs served, queue, query timings) on this port.",
    )] = None,
    metrics_host: Annotated[str, typer.Option(
        envvar="TF_WORKER_METRICS_HOST", help="The address the metrics are served on.",
    )] = "127.0.0.1",
) -> None:
    """Run a proof worker process.

    Beside API processes started with TF_PSI_WORKER_IN_PROCESS=false, or to add capacity.
    Several may run at once, each with a metrics port of its own."""
    with graph_settings() as settings:
        typer.echo(f"proof worker on {settings.neo4j_uri}")
        if metrics_port is not None:
            # demand is what API processes accept and shed: a worker's own Gini would read 0
            # whatever the service, and the SLO takes the highest of all processes' figures
            REGISTRY.unregister(GINI)
            start_http_server(metrics_port, metrics_host)
            typer.echo(f"metrics on http://{metrics_host}:{metrics_port}/metrics")
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_work(settings))


@app.command("rotate-psi-key")
def rotate_psi_key() -> None:
    """Replace the PSI server key (the old one is kept, retired).

    Stop the API and the workers first, and start them after.
    Every dataset setup is rebuilt, and clients fetch new setups (their setupId changes).
    Jobs still queued under the old key fail with a message saying so."""
    settings = get_settings()
    if settings.psi_server_key is not None:
        typer.echo("TF_PSI_SERVER_KEY is set: rotate that secret instead", err=True)
        raise typer.Exit(1)
    path = settings.data_dir / "keys" / "psi-server.key"
    old = ServerKey.load_or_create(path)
    path.rename(path.with_name(f"psi-server.{old.key_id}.retired"))
    new = ServerKey.generate()
    new.save(path)
    typer.echo(f"rotated: {old.key_id} → {new.key_id} (the old key is kept, retired)")


@app.command("verify-bundle")
def verify_bundle(
    path: Annotated[Path, typer.Argument(help="A proof bundle (its JSON envelope).")],
    public_key: Annotated[Path | None, typer.Option(
        help="PEM public key (the API's proofPublicKey); default: this installation's.")] = None,
) -> None:
    """Verify a proof bundle offline: its id, signature, key id and canonical bytes."""
    if public_key is not None:
        pem = public_key.read_text()
    else:
        pem = SigningKey.load_or_create(get_settings().data_dir / "keys" / "bundle-signing.pem",
                                        None).public_pem
    try:
        body, bundle_id = verify_file(path.read_bytes(), load_public_key(pem))
    except (BundleInvalid, ValueError) as error:
        typer.echo(f"INVALID: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"valid: {bundle_id} (job {body['jobId']}, tenant {body['tenant']}, "
               f"{body['mode']}, outcome {body['outcome']})")


if __name__ == "__main__":
    app()
