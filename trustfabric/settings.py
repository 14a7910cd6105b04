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
    embedded_heap: str = "2g"
    # ArcadeDB's page cache in MB (0: its default, a quarter of the heap; at most 80 % of
    # it). Once full, every page written pushes an older one out, and its collector's work
    # grows with that churn: at 550 PSI jobs/s offered it fills in about 4 minutes with a
    # 2 GB heap, and the jobs served fall by a fifth (docs/bench/soak.md).
    embedded_page_cache_mb: int = 0
    # ArcadeDB WAL flush on commit: 0 = OS decides, 1 = flush to the OS, 2 = fsync.
    # 1 survives a crash of the database process; 2 also survives a power loss.
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
    # Added to the crypto processes' niceness (0-19: lowering it needs privileges). They
    # answer whole batches and can wait; the API's event loop is the one serial part, and
    # every process waits on it when a busy core delays it. At 550 jobs/s offered for 2
    # minutes: nice 0 served 491-492 jobs/s with 1.70-1.71 of the 2 cores busy; nice 5 502
    # (1.81), nice 10 506 (1.84).
    psi_worker_nice: int = Field(10, ge=0, le=19)
    psi_lease_s: float = 30.0
    psi_poll_interval_s: float = 0.05
    # Jobs per worker batch (and per claim and completion statement), and batches answered
    # at once (one in the crypto processes while the next is claimed and the last written).
    # Larger batches cost less a job, and keep more jobs waiting in the pipeline: at 550
    # jobs/s offered for a minute, 64 × 2 served 387-423/s with p95 0.70 s, 96 × 2 449/s
    # and 0.67 s, 128 × 2 472/s and 0.70 s, 192 × 2 466/s and 1.08 s, 128 × 3 481/s and
    # 0.79 s.
    psi_batch_size: int = 128
    psi_batches_in_flight: int = 2
    # ... and at most this many selectors, so that a batch of 100-selector requests takes
    # no longer to answer than one of 16-selector requests; in the process running the
    # worker, the queue's floor (one batch) shrinks with it.
    psi_batch_selectors: int = 2048
    # New jobs are refused while the jobs queued (admitted, not yet claimed; at least one
    # batch) would take longer than this to start at the measured rate: the part of the
    # 0.9 s latency objective left for waiting, the rest goes to the request, the crypto and
    # the writes (at 400 jobs/s offered, 0.5 gave p95 1.8 s and 0.25 gave 1.2 s).
    psi_queue_wait_s: float = 0.25
    # ... or while the API's event loop wakes this late (it is short of CPU).
    psi_max_loop_lag_s: float = 0.05
    # The least time between two job writes of a kind (accepting, claiming, finishing).
    # The database's cost is mostly per transaction, so under load this keeps transactions
    # few and batches large; idle, a job waits for nobody.
    psi_write_spacing_s: float = 0.05
    # Job events (the outbox behind subscriptions and webhooks) are kept this long.
    psi_event_retention_s: float = 3600.0
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
