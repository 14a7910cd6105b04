"""The GraphQL schema: root types, and the limits and caches declared on it."""

from collections.abc import AsyncGenerator, Callable
from functools import partial
from typing import Any

import strawberry
from graphql import GraphQLError
from graphql.validation import ASTValidationRule
from strawberry import relay
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    SchemaExtension,
    ValidationCache,
)
from strawberry.extensions.max_aliases import create_validator as aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule
from strawberry.permission import BasePermission

from trustfabric.resolvers import ingest as ingest_resolvers
from trustfabric.resolvers import lineage as lineage_resolvers
from trustfabric.resolvers import policy as policy_resolvers
from trustfabric.resolvers import provenance as provenance_resolvers
from trustfabric.resolvers import psi as psi_resolvers
from trustfabric.resolvers import rollups as rollup_resolvers
from trustfabric.resolvers import suppressions as suppression_resolvers
from trustfabric.resolvers import viewer as viewer_resolvers
from trustfabric.resolvers import webhooks as webhook_resolvers
from trustfabric.resolvers.permissions import Authenticated, CanWrite, IsAuditor, IsOperator
from trustfabric.schema.extensions.errors import CodedParserCache, ErrorCodes
from trustfabric.schema.extensions.execution import ExecutionContext
from trustfabric.schema.extensions.limits import cost_limit_rule
from trustfabric.schema.extensions.metrics import RequestMetrics
from trustfabric.schema.ingest import IngestResult
from trustfabric.schema.lineage import Impact, Lineage, Subgraph
from trustfabric.schema.policy import (
    CoachingHint,
    DriftProposal,
    Environment,
    PolicyDrift,
    PolicySubmission,
    Promotion,
)
from trustfabric.schema.provenance import NODE_TYPES, Anomaly, AnomalyConnection
from trustfabric.schema.psi import (
    AuditEventPage,
    Dataset,
    DatasetSetup,
    PilotControls,
    ProofBundle,
    PsiJob,
    PsiJobConnection,
    PsiJobEvent,
)
from trustfabric.schema.rollups import RollupReadership, RollupType
from trustfabric.schema.suppressions import AnomalyEvent, SuppressionDryRun, SuppressionRuleType
from trustfabric.schema.viewer import Viewer
from trustfabric.schema.webhooks import DeadLetter, Webhook, WebhookRegistration
from trustfabric.settings import Settings

# typed as Strawberry's parameter is: a list of one subclass is not a list of its base
READ: list[type[BasePermission]] = [Authenticated]
WRITE: list[type[BasePermission]] = [CanWrite]
OPERATOR: list[type[BasePermission]] = [IsOperator]


@strawberry.type(description="What may be read. Every field but proofPublicKey needs a "
                             "bearer token; each reads the caller's tenant unless an operator "
                             "names another.")
class Query:
    viewer: Viewer = strawberry.field(
        resolver=viewer_resolvers.viewer, permission_classes=READ,
        description="The caller: its token's tenant and role.",
    )
    node: relay.Node = strawberry.field(
        resolver=provenance_resolvers.node, permission_classes=READ,
        description="Any node by its global id (Relay).",
    )
    anomalies: AnomalyConnection = strawberry.field(
        resolver=provenance_resolvers.anomalies, permission_classes=READ,
        description="The caller's anomalies, newest first or by severity (an operator may "
                    "name another tenant).",
    )
    lineage: Lineage = strawberry.field(
        resolver=lineage_resolvers.lineage, permission_classes=READ,
        description="From an anomaly to its root: job, policy version, image, bases, commit, repo.",
    )
    neighbors: Subgraph = strawberry.field(
        resolver=lineage_resolvers.neighbors, permission_classes=READ,
        description="Nodes and edges within `depth` (1-3) hops of a node.",
    )
    path: Subgraph = strawberry.field(
        resolver=lineage_resolvers.path, permission_classes=READ,
        description="The shortest path between two nodes, at most `maxHops` (1-8) long.",
    )
    impact: Impact = strawberry.field(
        resolver=lineage_resolvers.impact, permission_classes=READ,
        description="Blast radius of a commit: images, jobs, tenants and open anomalies after it.",
    )
    psi_job: PsiJob = strawberry.field(
        resolver=psi_resolvers.psi_job, permission_classes=READ,
        description="A PSI job of the caller's tenant (operators: any, without the result).",
    )
    psi_jobs: PsiJobConnection = strawberry.field(
        resolver=psi_resolvers.psi_jobs, permission_classes=READ,
        description="The caller's PSI jobs, newest first (operators may name a tenant): a "
                    "connection, like every list.",
    )
    proof_bundle: ProofBundle | None = strawberry.field(
        resolver=psi_resolvers.proof_bundle, permission_classes=READ,
        description="The signed proof bundle of a finished job, with its explainer.",
    )
    datasets: list[Dataset] = strawberry.field(
        resolver=psi_resolvers.datasets, permission_classes=READ,
        description="Partner datasets (their metadata; never their items).",
    )
    dataset_setup: DatasetSetup = strawberry.field(
        resolver=psi_resolvers.dataset_setup, permission_classes=READ,
        description="The OpenMined setup message of a dataset's current version.",
    )
    proof_public_key: str = strawberry.field(
        resolver=psi_resolvers.proof_public_key,
        description="PEM Ed25519 public key that verifies proof bundles.",
    )
    audit_events: AuditEventPage = strawberry.field(
        resolver=psi_resolvers.audit_events, permission_classes=[IsAuditor],
        description="Audit events, for auditors (own tenant) and operators (any).",
    )
    webhooks: list[Webhook] = strawberry.field(
        resolver=webhook_resolvers.webhooks, permission_classes=READ,
        description="The webhooks registered for the caller's tenant (operators: every "
                    "tenant's).",
    )
    dead_letters: list[DeadLetter] = strawberry.field(
        resolver=webhook_resolvers.dead_letters, permission_classes=READ,
        description="Webhook deliveries that failed every attempt.",
    )
    pilot_controls: PilotControls = strawberry.field(
        resolver=psi_resolvers.pilot_controls, permission_classes=READ,
        description="Flags, scopes, quotas, opt-outs and request-size bounds in force.",
    )

    promotion: Promotion = strawberry.field(
        resolver=policy_resolvers.promotion, permission_classes=READ,
        description="A promotion by the idempotency key it was asked with, with its insight.",
    )
    promotions: list[Promotion] = strawberry.field(
        resolver=policy_resolvers.promotions, permission_classes=READ,
        description="An image's promotions, newest first, each with its insight if denied.",
    )
    environments: list[Environment] = strawberry.field(
        resolver=policy_resolvers.environments, permission_classes=READ,
        description="The caller's environments and the policy versions they run.",
    )
    policy_drift: list[PolicyDrift] = strawberry.field(
        resolver=policy_resolvers.policy_drift, permission_classes=READ,
        description="Environments whose deployed policy is not the declared one, with risk.",
    )
    drift_proposals: list[DriftProposal] = strawberry.field(
        resolver=policy_resolvers.drift_proposals, permission_classes=READ,
        description="Change proposals for drifted environments, newest first.",
    )
    policy_hints: list[CoachingHint] = strawberry.field(
        resolver=policy_resolvers.policy_hints, permission_classes=READ,
        description="Coaching hints for a policy version, over the facts recorded so far.",
    )
    suppression_rules: list[SuppressionRuleType] = strawberry.field(
        resolver=suppression_resolvers.suppression_rules, permission_classes=READ,
        description="The tenant's suppression rules, newest first.",
    )
    export_suppressions: str = strawberry.field(
        resolver=suppression_resolvers.export_suppressions, permission_classes=READ,
        description="The proposed and active rules as a rules.yaml file.",
    )
    dry_run_suppression: SuppressionDryRun = strawberry.field(
        resolver=suppression_resolvers.dry_run_suppression, permission_classes=READ,
        description="What a scope would have suppressed over the last days, before approval.",
    )
    rollup: RollupType = strawberry.field(
        resolver=rollup_resolvers.rollup, permission_classes=READ,
        description="The tenant's health digest of an ISO week; opening it counts as read.",
    )
    rollup_readership: list[RollupReadership] = strawberry.field(
        resolver=rollup_resolvers.rollup_readership, permission_classes=READ,
        description="Operators: which tenants' digests of a week were read.",
    )


@strawberry.type(description="What may be changed: every role but auditor writes its own "
                             "tenant; operators may name another.")
class Mutation:
    ingest: IngestResult = strawberry.field(
        resolver=ingest_resolvers.ingest, permission_classes=WRITE,
        description="Record builds, policy versions, job runs and anomalies in one transaction.",
    )
    request_psi: PsiJob = strawberry.field(
        resolver=psi_resolvers.request_psi, permission_classes=WRITE,
        description="Queue a PSI or PSI-CA run; returns at once with the durable job.",
    )
    cancel_psi_job: PsiJob = strawberry.field(
        resolver=psi_resolvers.cancel_psi_job, permission_classes=WRITE,
        description="Cancel a QUEUED or RUNNING job; returns the job as it then stands.",
    )
    register_dataset: Dataset = strawberry.field(
        resolver=psi_resolvers.register_dataset, permission_classes=WRITE,
        description="Register a partner dataset with its first version.",
    )
    upload_dataset_version: Dataset = strawberry.field(
        resolver=psi_resolvers.upload_dataset_version, permission_classes=WRITE,
        description="Replace a dataset's items with a new version (its version goes up by "
                    "one; earlier setups go stale).",
    )
    update_tenant_controls: PilotControls = strawberry.field(
        resolver=psi_resolvers.update_tenant_controls, permission_classes=OPERATOR,
        description="Operators: a tenant's PSI flags, scopes and quota (audited).",
    )
    set_opt_out: PilotControls = strawberry.field(
        resolver=psi_resolvers.set_opt_out, permission_classes=OPERATOR,
        description="Operators: opt a tenant or partner out (its pending jobs are cancelled).",
    )
    set_request_size_limits: PilotControls = strawberry.field(
        resolver=psi_resolvers.set_request_size_limits, permission_classes=OPERATOR,
        description="Operators: the fewest and most selectors a PSI request may hold (audited).",
    )
    register_webhook: WebhookRegistration = strawberry.field(
        resolver=webhook_resolvers.register_webhook, permission_classes=WRITE,
        description="Deliver this tenant's job events to a URL, signed with HMAC-SHA256.",
    )
    delete_webhook: bool = strawberry.field(
        resolver=webhook_resolvers.delete_webhook, permission_classes=WRITE,
        description="Stop a webhook and cancel its pending deliveries and dead letters; true "
                    "when done.",
    )
    replay_dead_letters: list[strawberry.ID] = strawberry.field(
        resolver=webhook_resolvers.replay_dead_letters, permission_classes=OPERATOR,
        description="Operators: send dead deliveries again.",
    )

    submit_policy_version: PolicySubmission = strawberry.field(
        resolver=policy_resolvers.submit_policy_version, permission_classes=WRITE,
        description="A new immutable policy version; refused with CEL errors and hints.",
    )
    set_environment: Environment = strawberry.field(
        resolver=policy_resolvers.set_environment, permission_classes=WRITE,
        description="Declare an environment's version in force, or report the deployed one.",
    )
    propose_drift_fix: DriftProposal = strawberry.field(
        resolver=policy_resolvers.propose_drift_fix, permission_classes=WRITE,
        description="Propose running the declared version of a LOW-risk drifted "
                    "environment; HIGH risk is refused.",
    )
    review_drift_proposal: DriftProposal = strawberry.field(
        resolver=policy_resolvers.review_drift_proposal, permission_classes=READ,
        description="Reviewers: approve (starts the soak) or reject a proposal, naming the "
                    "contentHash reviewed.",
    )
    promote: Promotion = strawberry.field(
        resolver=policy_resolvers.promote, permission_classes=WRITE,
        description="Promote an image: decided by the target's declared version, explained "
                    "when denied.",
    )
    propose_suppression: SuppressionRuleType = strawberry.field(
        resolver=suppression_resolvers.propose_suppression, permission_classes=WRITE,
        description="Propose a suppression rule; refused when too broad or unbounded.",
    )
    approve_suppression: SuppressionRuleType = strawberry.field(
        resolver=suppression_resolvers.approve_suppression, permission_classes=READ,
        description="Reviewers: make a proposed rule active (never its author's).",
    )
    extend_suppression: SuppressionRuleType = strawberry.field(
        resolver=suppression_resolvers.extend_suppression, permission_classes=WRITE,
        description="Move a rule's end, within the maximum duration.",
    )
    expire_suppression: SuppressionRuleType = strawberry.field(
        resolver=suppression_resolvers.expire_suppression, permission_classes=WRITE,
        description="End a rule now.",
    )
    delete_suppression: SuppressionRuleType = strawberry.field(
        resolver=suppression_resolvers.delete_suppression, permission_classes=WRITE,
        description="Delete a rule (kept in the audit log).",
    )
    import_suppressions: list[SuppressionRuleType] = strawberry.field(
        resolver=suppression_resolvers.import_suppressions, permission_classes=WRITE,
        description="Propose every rule of a rules.yaml file; each still needs approval.",
    )
    label_anomaly: Anomaly = strawberry.field(
        resolver=suppression_resolvers.label_anomaly, permission_classes=WRITE,
        description="Mark an anomaly a true positive (or benign), for dry runs and drills.",
    )
    generate_rollup: RollupType = strawberry.field(
        resolver=rollup_resolvers.generate_rollup, permission_classes=WRITE,
        description="Make the tenant's digest of a week now (once: later calls return it).",
    )
    complete_rollup_action: RollupType = strawberry.field(
        resolver=rollup_resolvers.complete_rollup_action, permission_classes=WRITE,
        description="Mark an action item of a digest done (it is no longer carried).",
    )


@strawberry.type(description="Pushed over graphql-ws; a revoked token's subscription ends "
                             "within two token-cache lifetimes.")
class Subscription:
    psi_job_events: AsyncGenerator[PsiJobEvent, None] = strawberry.subscription(
        resolver=psi_resolvers.psi_job_events, permission_classes=READ,
        description="State changes of the caller's PSI jobs (or of one job).",
    )
    anomaly_events: AsyncGenerator[AnomalyEvent, None] = strawberry.subscription(
        resolver=suppression_resolvers.anomaly_events, permission_classes=READ,
        description="The caller's anomalies as they are recorded, with their paging decision.",
    )


class Schema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Strawberry logs every error with the variables' values in its message; ErrorCodes
        logs the unexpected ones, and a client's mistakes are not the server's to log."""


def validation_rules(settings: Settings) -> list[type[ASTValidationRule]]:
    """The limits every document is checked against, beside GraphQL's own rules."""
    return [
        depth_rule(settings.max_query_depth, None),
        aliases_rule(settings.max_aliases),
        cost_limit_rule(settings.max_query_cost),
    ]


def build_schema(settings: Settings) -> strawberry.Schema:
    # Factories, not instances; rules built once, so the validation cache hits (decision 0007).
    extensions: list[Callable[[], SchemaExtension]] = [
        RequestMetrics,
        ErrorCodes,
        partial(AddValidationRules, validation_rules(settings)),
        partial(CodedParserCache, maxsize=1024, max_tokens=settings.max_tokens,
                max_selections=settings.max_query_cost),
        partial(ValidationCache, maxsize=1024),
    ]
    if not settings.introspection:
        extensions.append(DisableIntrospection)
    return Schema(
        query=Query, mutation=Mutation, subscription=Subscription,
        types=list(NODE_TYPES.values()), extensions=extensions,
        execution_context_class=ExecutionContext,
    )
