"""One logging setup for every program: JSON lines on stderr.

Each line holds time, level, logger, message and the service; when tracing is on and a span is
current, its trace_id and span_id too, so a log line and its trace can be joined. Extra fields
passed with `extra={...}` become keys of the line. The servers' own loggers (uvicorn, hypercorn,
granian) and libraries' loggers go through the same handler.
"""

import logging
import sys
from typing import TextIO

from opentelemetry import trace
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

# Libraries that log one line per request or per insert at INFO.
QUIET = {"httpx": logging.WARNING, "httpcore": logging.WARNING}
SERVER_LOGGERS = (
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "hypercorn.error",
    "hypercorn.access",
    "_granian",
    "granian",
    "granian.access",
)


class TraceContext(logging.Filter):
    """Adds the current span's ids (hex, as trace backends show them) to the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        return True


def json_handler(service: str, stream: TextIO | None = None) -> logging.Handler:
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            ["asctime", "levelname", "name", "message"],
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            static_fields={"service": service},
            datefmt="%Y-%m-%dT%H:%M:%S%z",
            reserved_attrs=[*RESERVED_ATTRS, "color_message"],  # uvicorn's ANSI copy of the message
        )
    )
    handler.addFilter(TraceContext())
    return handler


def setup_logging(service: str, level: str = "INFO", *, stream: TextIO | None = None) -> None:
    """Install the JSON handler on the root logger (replacing any), once per process."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(json_handler(service, stream))
    root.setLevel(level.upper())
    for name, quiet_level in QUIET.items():
        logging.getLogger(name).setLevel(quiet_level)
    for name in SERVER_LOGGERS:  # servers install their own text handlers: route them to ours
        server_logger = logging.getLogger(name)
        for old in list(server_logger.handlers):
            server_logger.removeHandler(old)
        server_logger.propagate = True


def dict_config(service: str, level: str = "INFO") -> dict[str, object]:
    """The same setup as a `logging.config.dictConfig` dict, for frameworks that configure
    logging themselves from one (faust's worker, granian's worker processes)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"json": {"()": "telemetry.logs.json_handler", "service": service}},
        "root": {"level": level.upper(), "handlers": ["json"]},
        "loggers": {
            **{name: {"level": quiet} for name, quiet in QUIET.items()},
            **{name: {"handlers": [], "propagate": True} for name in SERVER_LOGGERS},
        },
    }
