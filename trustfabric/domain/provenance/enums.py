"""The closed vocabularies of provenance records (the API shows them as GraphQL enums)."""

import enum


class Severity(enum.Enum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


# Most severe first when anomalies are listed by severity.
SEVERITY_RANK: dict[Severity, int] = {
    Severity.CRITICAL: 3, Severity.HIGH: 2, Severity.MEDIUM: 1, Severity.LOW: 0}


class AnomalyOrder(enum.Enum):
    NEWEST = "NEWEST"  # latest observed first; never observed last
    SEVERITY = "SEVERITY"  # most severe first, then newest


class AnomalyStatus(enum.Enum):
    OPEN = "OPEN"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    RESOLVED = "RESOLVED"


class JobKind(enum.Enum):
    BUILD = "BUILD"
    TEST = "TEST"
    SCAN = "SCAN"
    DEPLOY = "DEPLOY"


class JobStatus(enum.Enum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
