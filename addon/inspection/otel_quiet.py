"""The OTLP exporter's failures told once (otel_export.py): a collector that is down or slow is one warning, not
one ERROR per batch (an ERROR at start-up would stop mitmdump), and one line when export works again."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

logger = logging.getLogger(__name__)

# The loggers whose per-batch records QuietExporter tells once instead.
NOISY = ("opentelemetry.exporter", "opentelemetry.sdk._shared_internal", "opentelemetry.sdk.trace.export")


class _LastRecord(logging.Handler):
    """Keeps the last warning or error of the quieted loggers: the reason QuietExporter gives."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.message = ""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.message = record.getMessage()[:300]
        except Exception:  # a record whose arguments do not fit its format
            self.message = str(record.msg)[:300]


class QuietExporter:
    """The OTLP exporter, telling its failures once: one warning when export starts failing (spans are dropped
    meanwhile), one info line when it works again."""

    def __init__(self, exporter: Any, endpoint: str, last: _LastRecord) -> None:
        self.exporter, self.endpoint, self.last = exporter, endpoint, last
        self.failing = False
        self.dropped = 0

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        try:
            result = self.exporter.export(spans)
        except Exception as e:  # the exporter's own bug: never the processor thread's end
            self.last.message, result = f"{type(e).__name__}: {e}"[:300], SpanExportResult.FAILURE
        if result is SpanExportResult.SUCCESS:
            if self.failing:
                logger.info(
                    f"OpenTelemetry: export to {self.endpoint} works again (at least {self.dropped} spans were lost)"
                )
            self.failing, self.dropped = False, 0
        else:
            self.dropped += len(spans)
            if not self.failing:
                logger.warning(
                    f"OpenTelemetry: cannot export spans to {self.endpoint} ({self.last.message or 'no reason given'}); "
                    "spans are dropped until it answers, and requests go on as usual. This is said once."
                )
            self.failing = True
        return result

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def quiet_sdk_logs() -> _LastRecord:
    last = _LastRecord()
    for name in NOISY:
        noisy = logging.getLogger(name)
        noisy.propagate = False
        noisy.addHandler(last)
    return last
