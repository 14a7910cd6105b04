"""Errors the API reports on purpose, each with a stable code for `extensions.code`."""


class AppError(Exception):
    code = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str, **extensions: object) -> None:
        super().__init__(message)
        self.message = message
        self.extensions = extensions


class BadUserInput(AppError):
    code = "BAD_USER_INPUT"


class Conflict(BadUserInput):
    """The change collides with data already recorded (a unique key): told to the caller as
    bad input, and recognised by type by code that may retry it."""

    def __init__(self, message: str = "the change conflicts with existing data") -> None:
        super().__init__(message)


class NotFound(AppError):
    code = "NOT_FOUND"

    def __init__(self, what: str, **extensions: object) -> None:
        super().__init__(f"{what} not found", **extensions)


class Unauthenticated(AppError):
    code = "UNAUTHENTICATED"


class Forbidden(AppError):
    code = "FORBIDDEN"


class QuotaExceeded(AppError):
    code = "QUOTA_EXCEEDED"


class Unavailable(AppError):
    code = "UNAVAILABLE"


class Contended(Unavailable):
    """Concurrent changes to the same records outlasted the retries: a busy moment, not an
    outage. Callers whose change others are making too may leave it to them."""
