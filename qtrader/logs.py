"""Logging: loguru to stderr; every line carries the run id and mode, secrets masked."""

from __future__ import annotations

import sys
from datetime import UTC
from typing import Any

from loguru import logger

from qtrader.secrets import mask

LEVELS = ("debug", "info", "warning", "error")
_FORMAT = (
    "{time:YYYY-MM-DDTHH:mm:ss.SSS}Z {level: <7} run={extra[run_id]} {extra[mode]} | {message}"
)


ROTATION = "10 MB"
RETENTION = 10


def setup_logging(level: str, json_file: str | None = None) -> None:
    """Human lines to stderr; with `json_file`, also JSON lines (rotated). Both masked."""
    logger.remove()
    logger.configure(extra={"run_id": "-", "mode": "-"}, patcher=_patch)
    logger.add(_masked_stderr, level=level.upper(), format=_FORMAT, colorize=False)
    if json_file:
        logger.add(
            json_file,
            level=level.upper(),
            serialize=True,
            rotation=ROTATION,
            retention=RETENTION,
            encoding="utf-8",
        )


def bind_run(run_id: int | None, mode: str | None) -> None:
    logger.configure(extra={"run_id": run_id if run_id is not None else "-", "mode": mode or "-"})


def _masked_stderr(message: Any) -> None:
    sys.stderr.write(mask(str(message)))


def _patch(record: Any) -> None:
    """UTC times, and no secret in any message, whatever the sink."""
    record["time"] = record["time"].astimezone(UTC)
    record["message"] = mask(record["message"])
