"""Service settings: environment (TF_*) → `.env` → defaults, secrets never printed."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TF_", env_file=".env", extra="ignore")

    # HTTP
    host: str = "127.0.0.1"
    port: int = 8000

    # Graph. With no URI the embedded ArcadeDB server is started under `data_dir`.
    neo4j_uri: str | None = None
    neo4j_user: str = "root"
    neo4j_password: SecretStr | None = None
    neo4j_database: str = "trustfabric"
    # Short timeouts so an outage answers UNAVAILABLE quickly instead of hanging requests.
    neo4j_connect_timeout_s: float = 1.0
    neo4j_retry_time_s: float = 1.0
    # The most one statement or transaction may take, its retries included, before the
    # request answers UNAVAILABLE (a hung database answers nothing); migrations are exempt.
    neo4j_query_timeout_s: float = 5.0
    neo4j_pool_size: int = 64

    data_dir: Path = Path(".data")
    embedded_bolt_port: int = 7687
    embedded_http_port: int = 2480
    # Unset: sized from the machine's memory, a quarter of it as the heap and two thirds
    # of the heap as page cache (decision 0022); a page cache of 0 is ArcadeDB's quarter.
    embedded_heap: str | None = None
    # Page cache in MB (at most 80 % of the heap; decision 0015).
    embedded_page_cache_mb: int | None = None
    # WAL flush: 0 OS decides, 1 to the OS (crash-safe), 2 fsync (decision 0012).
    embedded_wal_flush: int = 1

    # GraphQL hardening
    introspection: bool = True
    graphiql: bool = True
    max_query_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 2000
    max_query_cost: int = 5000

    # Auth: how long a verified token is trusted before it is looked up again.
    token_cache_ttl_s: float = 5.0

    # Ingest
    max_ingest_events: int = 1000
    # Largest HTTP request body accepted (dataset uploads are the large ones).
    max_body_bytes: int = 16 * 1024 * 1024
    # Largest body accepted without a token that verifies: what anyone may make the server
    # read and lex before it knows who is asking.
    max_anonymous_body_bytes: int = 64 * 1024

    # PSI. Keys live under data_dir/keys unless given as secrets (base64 / PEM).
    psi_server_key: SecretStr | None = None
    bundle_signing_key: SecretStr | None = None
    pilot_controls_file: Path = Path("pilot-controls.yaml")
    psi_false_positive_rate: float = 1e-9
    psi_max_dataset_items: int = 1_000_000
    # Run the proof worker inside the API process (False: run `trustfabric worker`).
    psi_worker_in_process: bool = True
    psi_worker_processes: int = 2
    # Added to crypto processes' niceness (0-19): the API's loop goes first (decision 0006).
    psi_worker_nice: int = Field(10, ge=0, le=19)
    psi_lease_s: float = 30.0
    psi_poll_interval_s: float = 0.05
    # Jobs a batch (claim, completion) holds, and batches answered at once (decision 0005).
    psi_batch_size: int = 128
    psi_batches_in_flight: int = 2
    # ... at most this many selectors: large requests make no slower batches (decision 0005).
    psi_batch_selectors: int = 2048
    # Back-pressure: a job's p95 from the mutation to its bundle; a queue may hold what
    # starts within it less the measured rest of the pipeline (decision 0021) ...
    psi_latency_objective_s: float = 0.9
    # ... and never less than what starts within this (before the rest is measured, and
    # when the rest fills the objective; decisions 0013, 0021).
    psi_queue_wait_s: float = 0.25
    # ... or while the API's event loop wakes this late (it is short of CPU).
    psi_max_loop_lag_s: float = 0.05
    # Least time between job writes of a kind: few transactions, big batches (decision 0004).
    psi_write_spacing_s: float = 0.05
    # Job events (the outbox behind subscriptions and webhooks) are kept this long.
    psi_event_retention_s: float = 3600.0
    # Finished jobs, with their responses and bundles, are kept this long after creation.
    psi_retention_days: float = 90.0
    # Responses and bundles live in packs here (default: data_dir/results, decision 0024),
    # written to the OS before the graph names them; fsynced too when set (with
    # TF_EMBEDDED_WAL_FLUSH=2, so a power loss cannot keep a job whose results it lost).
    psi_results_dir: Path | None = None
    psi_results_fsync: bool = False
    # Webhooks
    webhook_max_attempts: int = 6
    webhook_backoff_base_s: float = 2.0
    webhook_timeout_s: float = 5.0
    webhook_interval_s: float = 0.5
    # Every endpoint of a tenant gets each of its events: a bound on the deliveries an
    # event makes, and on the endpoints every fan-out round reads.
    webhook_max_per_tenant: int = 10
    # Delivered and cancelled deliveries (their history) are kept this long; dead letters
    # until an operator replays them.
    webhook_retention_s: float = 7 * 86400.0
    # An approved drift fix runs beside the old version this long before it merges.
    policy_soak_s: float = 600.0

    # Paging: a repeat of an anomaly paged this recently is deduplicated, not paged again.
    paging_dedup_window_s: float = 3600.0
    # Kinds that always page, whatever a suppression rule says (critical ones always do).
    paging_always_page: list[str] = ["secret-leak", "signature-missing"]
    # Suppression rules: the longest a rule may last, the largest share of a tenant's
    # recent anomalies its dry run may match, over how many days, and how long an active
    # rule may match nothing before it expires by itself.
    suppression_max_duration_s: float = 14 * 86400.0
    # per tenant, where a tenant's own maximum differs (JSON: {"acme": 604800})
    suppression_max_duration_by_tenant_s: dict[str, float] = {}
    suppression_max_share: float = 0.2
    suppression_dry_run_days: int = 14
    suppression_idle_expiry_s: float = 7 * 86400.0
    # Off in production: a tenant's URL must not reach the service's own network.
    webhook_allow_private: bool = False

    # How long a process trusts its copy of the pilot controls before reading them again.
    controls_cache_s: float = 1.0

    @property
    def embedded(self) -> bool:
        return self.neo4j_uri is None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
