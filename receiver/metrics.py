"""The service's Prometheus metrics: a small registry of counters, gauges and histograms, and what we record.

The registry is our own (a few dozen lines, no prometheus_client): it renders the text exposition
format 0.0.4 and nothing else. Label values are chosen by us, never taken from a request: the HTTP
route label is the route *template* (`/api/v1/users/{uid}/app-password`), never the concrete path,
so no user id, delivery id or secret ever reaches a metric. Each metric still caps its number of
distinct label sets, so a bug that lets a request choose a label cannot grow memory without bound.
"""

from __future__ import annotations

import math
import re
import threading
from bisect import bisect_left
from collections.abc import Sequence
from itertools import pairwise
from typing import Generic, TypeVar

from aiohttp import web

MAX_LABEL_SETS = 1000
# Every label set past the cap is folded into this one (all its labels set to it).
OVERFLOW_LABEL_VALUE = "other"

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

LabelValues = tuple[str, ...]
_Series = TypeVar("_Series")


def format_value(value: float) -> str:
    """A sample value or bucket bound as Prometheus reads it: `+Inf`, `NaN`, integers without `.0`."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _labels_text(names: Sequence[str], values: Sequence[str]) -> str:
    if not names:
        return ""
    pairs = ",".join(
        f'{name}="{escape_label_value(value)}"' for name, value in zip(names, values, strict=True)
    )
    return "{" + pairs + "}"


class _Metric(Generic[_Series]):
    """Name, help, fixed label names, and one series per label set (capped)."""

    kind = "untyped"

    def __init__(
        self, name: str, help: str, labels: Sequence[str] = (), *, max_label_sets: int = MAX_LABEL_SETS
    ) -> None:
        if not _METRIC_NAME.match(name):
            raise ValueError(f"invalid metric name {name!r}")
        for label in labels:
            if not _LABEL_NAME.match(label) or label.startswith("__"):
                raise ValueError(f"invalid label name {label!r} for {name}")
        if len(set(labels)) != len(labels):
            raise ValueError(f"duplicate label names for {name}")
        if max_label_sets < 1:
            raise ValueError("max_label_sets must be at least 1")
        self.name = name
        self.help = help
        self.label_names: LabelValues = tuple(labels)
        self.max_label_sets = max_label_sets
        self._series: dict[LabelValues, _Series] = {}
        # Recording is normally on the event loop, but a worker thread may record too; the lock keeps
        # `render` from iterating a dict that is being changed.
        self._lock = threading.Lock()
        if not self.label_names:
            # A metric without labels shows its zero from the start, so rate() has a baseline.
            self._series[()] = self._new_series()

    def _new_series(self) -> _Series:
        raise NotImplementedError

    def _key(self, labels: dict[str, object]) -> LabelValues:
        if labels.keys() != set(self.label_names):
            raise ValueError(f"{self.name} takes labels {sorted(self.label_names)}, got {sorted(labels)}")
        return tuple(str(labels[name]) for name in self.label_names)

    def _series_for(self, key: LabelValues) -> _Series:
        """The series of `key`, created if there is room, else the shared overflow series."""
        series = self._series.get(key)
        if series is None:
            if len(self._series) >= self.max_label_sets:
                key = (OVERFLOW_LABEL_VALUE,) * len(self.label_names)
                series = self._series.get(key)
            if series is None:
                series = self._series[key] = self._new_series()
        return series

    def _header(self, exposed_name: str) -> list[str]:
        return [f"# HELP {exposed_name} {_escape_help(self.help)}", f"# TYPE {exposed_name} {self.kind}"]

    def render(self) -> list[str]:
        raise NotImplementedError


class _Value:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0


class _Scalar(_Metric[_Value]):
    """One number per label set; Counter and Gauge differ only in how it changes and is named."""

    def _new_series(self) -> _Value:
        return _Value()

    def _exposed_name(self) -> str:
        return self.name

    def value(self, **labels: object) -> float:
        """The current value of one label set (0 when never recorded)."""
        series = self._series.get(self._key(labels))
        return series.value if series is not None else 0.0

    def render(self) -> list[str]:
        exposed = self._exposed_name()
        lines = self._header(exposed)
        with self._lock:
            for key, series in sorted(self._series.items()):
                lines.append(f"{exposed}{_labels_text(self.label_names, key)} {format_value(series.value)}")
        return lines


class Counter(_Scalar):
    """A count that only goes up; exposed as `<name>_total`, whether or not `name` ends so."""

    kind = "counter"

    def __init__(
        self, name: str, help: str, labels: Sequence[str] = (), *, max_label_sets: int = MAX_LABEL_SETS
    ) -> None:
        super().__init__(name.removesuffix("_total"), help, labels, max_label_sets=max_label_sets)

    def _exposed_name(self) -> str:
        return f"{self.name}_total"

    def inc(self, amount: float = 1, **labels: object) -> None:
        if amount < 0:
            raise ValueError(f"{self.name}: a counter cannot decrease")
        key = self._key(labels)
        with self._lock:
            self._series_for(key).value += amount


class Gauge(_Scalar):
    """A value that is set, not accumulated."""

    kind = "gauge"

    def set(self, value: float, **labels: object) -> None:
        key = self._key(labels)
        with self._lock:
            self._series_for(key).value = value


class _Distribution:
    __slots__ = ("count", "counts", "sum")

    def __init__(self, buckets: int) -> None:
        # Per-bucket (not cumulative) counts; the last one is +Inf. Cumulated when rendered.
        self.counts = [0] * (buckets + 1)
        self.count = 0
        self.sum = 0.0


class Histogram(_Metric[_Distribution]):
    """Observations counted into cumulative `le` buckets, with `_sum` and `_count`."""

    kind = "histogram"

    def __init__(
        self,
        name: str,
        help: str,
        buckets: Sequence[float],
        labels: Sequence[str] = (),
        *,
        max_label_sets: int = MAX_LABEL_SETS,
    ) -> None:
        bounds = [float(b) for b in buckets if not math.isinf(b)]
        if not bounds or any(math.isnan(b) for b in bounds):
            raise ValueError(f"{name}: a histogram needs finite bucket bounds")
        if any(lower >= upper for lower, upper in pairwise(bounds)):
            raise ValueError(f"{name}: bucket bounds must increase strictly")
        if "le" in labels:
            raise ValueError(f"{name}: 'le' is reserved for bucket bounds")
        self.buckets: tuple[float, ...] = tuple(bounds)
        super().__init__(name, help, labels, max_label_sets=max_label_sets)

    def _new_series(self) -> _Distribution:
        return _Distribution(len(self.buckets))

    def observe(self, value: float, **labels: object) -> None:
        key = self._key(labels)
        # The first bound >= value: Prometheus buckets are "less than or equal".
        index = bisect_left(self.buckets, value)
        with self._lock:
            series = self._series_for(key)
            series.counts[index] += 1
            series.count += 1
            series.sum += value

    def render(self) -> list[str]:
        lines = self._header(self.name)
        bounds = [*(format_value(b) for b in self.buckets), "+Inf"]
        names = (*self.label_names, "le")
        with self._lock:
            for key, series in sorted(self._series.items()):
                cumulative = 0
                for bound, count in zip(bounds, series.counts, strict=True):
                    cumulative += count
                    lines.append(f"{self.name}_bucket{_labels_text(names, (*key, bound))} {cumulative}")
                labels = _labels_text(self.label_names, key)
                lines.append(f"{self.name}_sum{labels} {format_value(series.sum)}")
                lines.append(f"{self.name}_count{labels} {series.count}")
        return lines


class Registry:
    """Creates metrics under unique names and renders them all, in creation order."""

    def __init__(self, *, max_label_sets: int = MAX_LABEL_SETS) -> None:
        self.max_label_sets = max_label_sets
        self._metrics: dict[str, Counter | Gauge | Histogram] = {}

    def _add(self, metric: Counter | Gauge | Histogram) -> None:
        if metric.name in self._metrics:
            raise ValueError(f"metric {metric.name} is already registered")
        self._metrics[metric.name] = metric

    def counter(self, name: str, help: str, labels: Sequence[str] = ()) -> Counter:
        metric = Counter(name, help, labels, max_label_sets=self.max_label_sets)
        self._add(metric)
        return metric

    def gauge(self, name: str, help: str, labels: Sequence[str] = ()) -> Gauge:
        metric = Gauge(name, help, labels, max_label_sets=self.max_label_sets)
        self._add(metric)
        return metric

    def histogram(
        self, name: str, help: str, buckets: Sequence[float], labels: Sequence[str] = ()
    ) -> Histogram:
        metric = Histogram(name, help, buckets, labels, max_label_sets=self.max_label_sets)
        self._add(metric)
        return metric

    def render(self) -> str:
        """Every metric in the text exposition format 0.0.4, ending with a newline."""
        lines: list[str] = []
        for metric in self._metrics.values():
            lines.extend(metric.render())
        return "\n".join(lines) + "\n" if lines else ""


# Prometheus' usual latency buckets; Nextcloud calls get a longer tail.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
NEXTCLOUD_BUCKETS = (*LATENCY_BUCKETS, 30.0, 60.0)
BATCH_SIZE_BUCKETS = tuple(float(2**n) for n in range(10))  # 1, 2, 4, ... 512
# A method label outside these is folded, so an odd verb on an unmatched path makes no new series.
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class ServiceMetrics:
    """credledger's own metrics on one registry; callers pass only fixed vocabularies as labels."""

    def __init__(self, *, max_label_sets: int = MAX_LABEL_SETS) -> None:
        registry = self.registry = Registry(max_label_sets=max_label_sets)
        self.http_requests = registry.counter(
            "credledger_http_requests",
            "HTTP requests answered, by route template.",
            ("route", "method", "status"),
        )
        self.http_request_duration = registry.histogram(
            "credledger_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template.",
            LATENCY_BUCKETS,
            ("route",),
        )
        self.events_appended = registry.counter("credledger_events_appended", "Events committed to the log.")
        self.append_batch_size = registry.histogram(
            "credledger_append_batch_size", "Events per group-commit transaction.", BATCH_SIZE_BUCKETS
        )
        self.append_batch_seconds = registry.histogram(
            "credledger_append_batch_seconds", "Time to commit one group-commit transaction.", LATENCY_BUCKETS
        )
        self.signature_failures = registry.counter(
            "credledger_webhook_signature_failures",
            "Webhook deliveries refused for their signature.",
            ("reason",),
        )
        self.webhook_duplicates = registry.counter(
            "credledger_webhook_duplicates", "Redelivered webhooks answered from the stored result."
        )
        self.idempotency_conflicts = registry.counter(
            "credledger_idempotency_conflicts", "Delivery ids reused with a different body (answered 409)."
        )
        self.rate_limited_requests = registry.counter(
            "credledger_rate_limited", "Requests refused by a rate limit, by scope.", ("scope",)
        )
        self.nextcloud_requests = registry.counter(
            "credledger_nextcloud_requests",
            "Calls made to Nextcloud, by kind and outcome.",
            ("kind", "outcome"),
        )
        self.nextcloud_request_duration = registry.histogram(
            "credledger_nextcloud_request_duration_seconds",
            "Time of one call to Nextcloud, by kind.",
            NEXTCLOUD_BUCKETS,
            ("kind",),
        )
        self.sync_runs = registry.counter("credledger_sync_runs", "Sync runs, by outcome.", ("outcome",))
        self.sync_paused = registry.gauge(
            "credledger_sync_paused_until_seconds",
            "Unix time until which sync to Nextcloud is paused after a 429 (0: not paused).",
        )

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request; `route` must be the route template, never the concrete path."""
        method = method.upper()
        if method not in _KNOWN_METHODS:
            method = OVERFLOW_LABEL_VALUE
        self.http_requests.inc(route=route, method=method, status=str(status))
        self.http_request_duration.observe(seconds, route=route)

    def appended(self, count: int) -> None:
        self.events_appended.inc(count)

    def batch(self, size: int, seconds: float) -> None:
        self.append_batch_size.observe(size)
        self.append_batch_seconds.observe(seconds)

    def signature_failure(self, reason: str) -> None:
        """`reason` is one of the verifier's fixed reasons, never the header's content."""
        self.signature_failures.inc(reason=reason)

    def dedupe_hit(self) -> None:
        self.webhook_duplicates.inc()

    def idempotency_conflict(self) -> None:
        self.idempotency_conflicts.inc()

    def rate_limited(self, scope: str) -> None:
        """`scope` is "user" or "address": which limit refused, never whose."""
        self.rate_limited_requests.inc(scope=scope)

    def nextcloud_call(self, kind: str, outcome: str, seconds: float) -> None:
        self.nextcloud_requests.inc(kind=kind, outcome=outcome)
        self.nextcloud_request_duration.observe(seconds, kind=kind)

    def sync_outcome(self, outcome: str) -> None:
        self.sync_runs.inc(outcome=outcome)

    def sync_paused_until(self, unix_seconds: float) -> None:
        self.sync_paused.set(unix_seconds)

    def render(self) -> str:
        return self.registry.render()


METRICS = web.AppKey("metrics", ServiceMetrics)
