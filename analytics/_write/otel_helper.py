"""The OpenTelemetry SDK's log records, built and exported in a helper process.

Building, emitting and OTLP-encoding a log record costs the SDK about 75 µs of Python
per entry. In the service's process that work shares the GIL with the event loop,
which then waits for it; in a process of its own it costs the service only writing
the entry's JSON line to a pipe (from a thread, with the GIL released while the
pipe takes it).

The protocol is lines. The service writes to the helper's stdin each entry's JSON
line, or ``!flush`` to have everything sent so far exported. The helper answers on
its stdout ``ready``, once; after every export ``counts EXPORTED FAILED UNBUILT``
(cumulative); and ``flushed EXPORTED FAILED UNBUILT`` after a flush. At the end of
its stdin (the service closed it, or died: the kernel closes it then) the helper
exports what it holds, within the exporter's timeout, answers ``counts`` one last
time and exits: it never outlives the service for long.

``python -m analytics._write.otel_main CONFIG`` runs the helper (:func:`main`);
CONFIG is the JSON of :class:`HelperConfig`.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import IO, Any

from .._models import MetricEntry, MetricType

__all__ = ["HelperConfig", "HelperProcess", "attribute_value", "log_record", "main"]

logger = logging.getLogger("analytics")

_INT64 = 2**63

HELPER_NICENESS = 10
"""How much lower than the service the helper runs: on a machine whose cores are busy,
the service's event loop gets a core before the helper does. Nothing of the helper's
holds anything the service waits for (it has a GIL of its own), so this cannot
invert priorities; records wait a little longer in its queue instead."""


def attribute_value(value: Any) -> str | bool | int | float:
    """An OpenTelemetry attribute value for a JSON value: scalars as they are (an
    integer beyond 64 bits as text), lists and dicts as compact JSON text."""
    kind = value.__class__
    if kind is str or kind is bool or kind is float:
        return value  # type: ignore[no-any-return]
    if kind is int:
        return value if -_INT64 <= value < _INT64 else str(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def log_record(entry: MetricEntry, sdk: SimpleNamespace) -> Any:
    """The OpenTelemetry log record of ``entry`` (``sdk``: the SDK's classes)."""
    attributes: dict[str, Any] = {"analytics.type": entry.type.value, "analytics.id": entry.id}
    if entry.session_id is not None:
        attributes["session.id"] = entry.session_id
    if entry.user_id is not None:
        attributes["user.id"] = entry.user_id
    for key, value in entry.data.items():
        if value is not None:
            attributes[key] = attribute_value(value)
    for key, value in entry.metadata.items():
        if value is not None:
            attributes[f"metadata.{key}"] = attribute_value(value)
    severity = sdk.SeverityNumber
    return sdk.LogRecord(
        timestamp=round(entry.timestamp.timestamp() * 1_000_000) * 1000,  # exact to the µs
        severity_number=severity.ERROR
        if entry.type is MetricType.ERROR_OCCURRED
        else severity.INFO,
        body=entry.to_json_line().decode().rstrip("\n"),
        attributes=attributes,
        event_name=f"analytics.{entry.type.value}",
    )


@dataclass(frozen=True)
class HelperConfig:
    """What the helper needs to export: the exporter's and the batch processor's
    options, and the resource (already merged with the ``OTEL_*`` variables)."""

    endpoint: str | None
    headers: dict[str, str] | None
    timeout: float | None
    max_queue_size: int
    max_export_batch_size: int
    schedule_delay: float
    resource: dict[str, Any]


class HelperProcess:
    """The service's side: starts the helper, sends it lines, reads its counts.

    ``send`` and ``flush`` block (call them from a thread); the counts are updated by
    a reader thread as the helper reports them.
    """

    def __init__(self, config: HelperConfig) -> None:
        self.config = config
        self.exported = 0
        self.failed = 0
        self.unbuilt = 0
        self.lost = 0
        """Lines sent to a helper that died before it accounted for them."""
        self.pid: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._sent = 0  # lines sent to the current helper
        self._base = (0, 0, 0)  # the counts of helpers that ended
        self._write = threading.Lock()
        self._changed = threading.Condition()
        self._ready = False
        self._flushes = 0
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        """Start the helper (blocks for the fork and exec only, not its imports)."""
        package = Path(__file__).resolve().parents[2]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(package), env.get("PYTHONPATH", "")) if p
        )
        process = subprocess.Popen(
            [sys.executable, "-m", f"{__package__}.otel_main", json.dumps(asdict(self.config))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            close_fds=True,
        )
        self._process, self.pid, self._sent = process, process.pid, 0
        assert process.stdout is not None
        self._reader = threading.Thread(
            target=self._read, args=(process.stdout,), name="analytics-otel-helper", daemon=True
        )
        self._reader.start()

    def restart(self) -> None:
        """Start a new helper in place of one that died; what the dead one never
        accounted for counts as ``lost``."""
        process = self._process
        if process is not None:
            process.kill()  # if it is not quite dead yet
            process.wait()
            if process.stdin is not None:
                try:
                    process.stdin.close()
                except OSError:
                    pass
        if self._reader is not None:
            self._reader.join(5.0)  # its last counts are in
        self._ended()
        with self._changed:
            self._ready = False
        self.start()

    def wait_ready(self, timeout: float) -> bool:
        """Whether the helper said it is ready within ``timeout`` seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: self._ready or not self.alive, timeout)

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def send(self, lines: Sequence[bytes]) -> bool:
        """Write ``lines`` (each ending in a newline) to the helper; False if it is gone
        (the lines then count as ``lost``)."""
        process = self._process
        with self._write:
            if process is None or process.stdin is None or process.poll() is not None:
                self.lost += len(lines)
                return False
            try:
                process.stdin.write(b"".join(lines))
                process.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                self.lost += len(lines)
                return False
            self._sent += len(lines)
            return True

    def flush(self, timeout: float) -> bool:
        """Have the helper export what it holds; whether it said so in ``timeout``."""
        with self._changed:
            expected = self._flushes + 1
        if not self.send([b"!flush\n"]):
            return False
        self._sent -= 1  # a command, not a record
        with self._changed:
            return self._changed.wait_for(
                lambda: self._flushes >= expected or not self.alive, timeout
            )

    def stop(self, timeout: float) -> bool:
        """Close the helper's stdin and wait ``timeout`` seconds for it to export and
        exit; past that, kill it. Whether it exited by itself."""
        process = self._process
        if process is None:
            return True
        with self._write:
            try:
                if process.stdin is not None:
                    process.stdin.close()
            except OSError:
                pass
        try:
            process.wait(timeout)
            clean = True
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            clean = False
        if self._reader is not None:
            self._reader.join(5.0)
        self._ended()
        return clean

    def _read(self, stdout: IO[bytes]) -> None:
        for raw in stdout:
            words = raw.split()
            if not words:
                continue
            with self._changed:
                if words[0] == b"ready":
                    self._ready = True
                elif words[0] in (b"counts", b"flushed") and len(words) == 4:
                    exported, failed, unbuilt = (int(w) for w in words[1:])
                    base = self._base
                    self.exported = base[0] + exported
                    self.failed = base[1] + failed
                    self.unbuilt = base[2] + unbuilt
                    if words[0] == b"flushed":
                        self._flushes += 1
                self._changed.notify_all()
        stdout.close()  # the helper has exited: its end of the pipe is closed
        with self._changed:
            self._changed.notify_all()

    def _ended(self) -> None:
        """Account for a helper that is gone: what it never reported is lost."""
        with self._changed:
            accounted = (self.exported - self._base[0]) + (self.failed - self._base[1])
            accounted += self.unbuilt - self._base[2]
            self.lost += max(0, self._sent - accounted)
            self._sent = 0
            self._base = (self.exported, self.failed, self.unbuilt)
            self._process = None


def main(argv: Sequence[str] | None = None) -> int:
    """The helper: read entry lines from stdin, export them as log records."""
    from .otel import import_sdk

    args = sys.argv[1:] if argv is None else list(argv)
    os.nice(HELPER_NICENESS)  # the service's own threads first, when the cores are busy
    config = HelperConfig(**json.loads(args[0]))
    sdk = import_sdk()
    out = sys.stdout.buffer
    counts = {"exported": 0, "failed": 0, "unbuilt": 0}
    say = threading.Lock()

    def report(word: str) -> None:
        with say:
            out.write(
                f"{word} {counts['exported']} {counts['failed']} {counts['unbuilt']}\n".encode()
            )
            out.flush()

    log_exporter: Any = sdk.OTLPLogExporter

    class CountedLogExporter(log_exporter):  # type: ignore[misc]
        def export(self, batch: Any) -> Any:
            try:
                result = super().export(batch)
            except Exception:
                result = None
            key = "exported" if result is sdk.LogRecordExportResult.SUCCESS else "failed"
            counts[key] += len(batch)
            report("counts")
            return result

    export: dict[str, Any] = {"endpoint": config.endpoint, "headers": config.headers}
    if config.timeout is not None:
        export["timeout"] = config.timeout
    provider = sdk.LoggerProvider(resource=sdk.Resource(config.resource))
    provider.add_log_record_processor(
        sdk.BatchLogRecordProcessor(
            CountedLogExporter(**export),
            schedule_delay_millis=config.schedule_delay * 1000,
            max_queue_size=config.max_queue_size,
            max_export_batch_size=min(config.max_export_batch_size, config.max_queue_size),
        )
    )
    emit = provider.get_logger("analytics").emit
    report("ready")
    for line in sys.stdin.buffer:
        if line.startswith(b"!flush"):
            provider.force_flush()
            report("flushed")
            continue
        try:
            emit(log_record(MetricEntry.from_json_line(line), sdk))
        except Exception:
            counts["unbuilt"] += 1
            if counts["unbuilt"] == 1:
                logger.exception("the OTel helper could not build a record")
    provider.shutdown()
    report("counts")
    return 0
