"""The server's log lines: one record, one line, control characters escaped.

A log line may quote what a client sent (an id in an error, a header): a newline in it
forged a line of its own, and NUL or escape sequences reach whoever reads the log in a
terminal. Every record is escaped whole, its traceback included, so a record is always
exactly one line.
"""

import logging
from typing import Any

import uvicorn.config

# C0 controls, DEL, C1 controls and Unicode's own line and paragraph separators
_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_ESCAPES |= {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", ord("\\"): "\\\\",
             0x2028: "\\u2028", 0x2029: "\\u2029"}


def escape(text: str) -> str:
    return text.translate(_ESCAPES)


class EscapingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return escape(super().format(record))


FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# uvicorn's own configuration, with every formatter escaping and the package's loggers
# (the root's handler) written the same way
LOG_CONFIG: dict[str, Any] = {
    **uvicorn.config.LOGGING_CONFIG,
    "formatters": {
        name: {"()": EscapingFormatter, "fmt": FORMAT}
        for name in uvicorn.config.LOGGING_CONFIG["formatters"]
    },
    "root": {"handlers": ["default"], "level": "INFO"},
}
