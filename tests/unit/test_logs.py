"""Log lines: one a record, whatever a client put in the text it quotes."""

import logging
import sys

from trustfabric.web.logs import LOG_CONFIG, EscapingFormatter, escape


def test_control_characters_are_escaped():
    assert escape("a\nb\r\x00\x1b[31m\u2028\\") == "a\\nb\\r\\x00\\x1b[31m\\u2028\\\\"
    assert escape("plain id-1.2") == "plain id-1.2"


def test_a_record_with_a_traceback_is_one_line():
    forged = 'abc\n2026-01-01 INFO uvicorn.access: 10.0.0.1 "GET /admin" 200'
    try:
        raise ValueError(f"Value cannot represent a GlobalID: {forged}")
    except ValueError:
        record = logging.LogRecord("trustfabric.graphql", logging.ERROR, __file__, 1,
                                   "unexpected error at %s", (forged,), sys.exc_info())
    line = EscapingFormatter("%(levelname)s %(name)s: %(message)s").format(record)
    assert "\n" not in line and "\r" not in line
    assert "Traceback" in line and "uvicorn.access" in line  # kept, as text of this record


def test_the_served_configuration_escapes_every_handler():
    formatters = LOG_CONFIG["formatters"]
    assert formatters and all(f["()"] is EscapingFormatter for f in formatters.values())
    assert LOG_CONFIG["root"]["handlers"] == ["default"]  # the package's own loggers too
    assert "default" in LOG_CONFIG["handlers"]
