"""The metrics registry: Prometheus text format, label rules, bounded label sets, the service's names."""

from __future__ import annotations

import pytest

from receiver.metrics import OVERFLOW_LABEL_VALUE, Counter, Histogram, Registry, ServiceMetrics


def test_render_matches_the_text_exposition_format() -> None:
    """A counter, a gauge and a histogram render exactly as Prometheus 0.0.4 text."""
    registry = Registry()
    requests = registry.counter("app_requests", "Requests served.", ("route",))
    registry.gauge("app_paused_until_seconds", "Paused until.").set(1.5)
    latency = registry.histogram("app_latency_seconds", "Latency.", (0.1, 1))
    requests.inc(route="/a")
    requests.inc(2, route="/a")
    latency.observe(0.05)
    latency.observe(0.5)
    latency.observe(3)

    assert registry.render() == (
        "# HELP app_requests_total Requests served.\n"
        "# TYPE app_requests_total counter\n"
        'app_requests_total{route="/a"} 3\n'
        "# HELP app_paused_until_seconds Paused until.\n"
        "# TYPE app_paused_until_seconds gauge\n"
        "app_paused_until_seconds 1.5\n"
        "# HELP app_latency_seconds Latency.\n"
        "# TYPE app_latency_seconds histogram\n"
        'app_latency_seconds_bucket{le="0.1"} 1\n'
        'app_latency_seconds_bucket{le="1"} 2\n'
        'app_latency_seconds_bucket{le="+Inf"} 3\n'
        "app_latency_seconds_sum 3.55\n"
        "app_latency_seconds_count 3\n"
    )


def test_counter_name_gets_total_suffix_once() -> None:
    """A counter declared with `_total` is not exposed as `_total_total`."""
    registry = Registry()
    registry.counter("app_events_total", "Events.")

    assert "app_events_total 0\n" in registry.render()


def test_label_values_are_escaped() -> None:
    """Backslash, double quote and newline in a label value are escaped."""
    counter = Counter("app_things", "Things.", ("name",))
    counter.inc(name='a\\b"c\nd')

    assert 'app_things_total{name="a\\\\b\\"c\\nd"} 1' in counter.render()


def test_help_text_is_escaped() -> None:
    """A newline in help text cannot start a new exposition line."""
    counter = Counter("app_things", "one\ntwo \\")

    assert counter.render()[0] == "# HELP app_things_total one\\ntwo \\\\"


def test_histogram_buckets_are_cumulative_and_inclusive() -> None:
    """A value equal to a bound counts in that bound's bucket and every larger one."""
    histogram = Histogram("app_size", "Sizes.", (1, 2, 4), ("kind",))
    for value in (1, 2, 2, 3, 100):
        histogram.observe(value, kind="x")

    buckets = [line for line in histogram.render() if "_bucket" in line]
    assert buckets == [
        'app_size_bucket{kind="x",le="1"} 1',
        'app_size_bucket{kind="x",le="2"} 3',
        'app_size_bucket{kind="x",le="4"} 4',
        'app_size_bucket{kind="x",le="+Inf"} 5',
    ]


def test_unknown_label_is_refused() -> None:
    """A label not declared at creation raises ValueError."""
    counter = Counter("app_things", "Things.", ("route",))

    with pytest.raises(ValueError, match="takes labels"):
        counter.inc(route="/a", user="alice")


def test_missing_label_is_refused() -> None:
    """Leaving out a declared label raises ValueError."""
    histogram = Histogram("app_latency", "Latency.", (1,), ("route",))

    with pytest.raises(ValueError, match="takes labels"):
        histogram.observe(0.2)


def test_counter_cannot_decrease() -> None:
    """A negative increment raises ValueError."""
    with pytest.raises(ValueError, match="cannot decrease"):
        Counter("app_things", "Things.").inc(-1)


def test_le_is_reserved_in_histograms() -> None:
    """A histogram cannot declare its own `le` label."""
    with pytest.raises(ValueError, match="reserved"):
        Histogram("app_latency", "Latency.", (1,), ("le",))


def test_duplicate_metric_name_is_refused() -> None:
    """Two metrics under one name raise ValueError."""
    registry = Registry()
    registry.counter("app_things", "Things.")

    with pytest.raises(ValueError, match="already registered"):
        registry.gauge("app_things", "Things again.")


def test_label_sets_past_the_cap_fold_into_other() -> None:
    """Past the cap, new label sets all count in one `other` series and memory stays bounded."""
    counter = Counter("app_things", "Things.", ("route", "method"), max_label_sets=3)
    for n in range(10):
        counter.inc(route=f"/r{n}", method="GET")

    samples = counter.render()[2:]
    assert len(samples) == 4
    assert f'app_things_total{{route="{OVERFLOW_LABEL_VALUE}",method="{OVERFLOW_LABEL_VALUE}"}} 7' in samples


def test_existing_label_sets_keep_counting_past_the_cap() -> None:
    """A label set seen before the cap was reached still has its own series."""
    counter = Counter("app_things", "Things.", ("route",), max_label_sets=1)
    counter.inc(route="/a")
    counter.inc(route="/b")
    counter.inc(route="/a")

    assert counter.value(route="/a") == 2


def test_service_metrics_exposes_the_documented_names() -> None:
    """Each ServiceMetrics method feeds the metric named in the design."""
    metrics = ServiceMetrics()
    metrics.observe_request("/api/v1/users/{uid}/app-password", "POST", 201, 0.02)
    metrics.appended(3)
    metrics.batch(3, 0.004)
    metrics.signature_failure("bad_signature")
    metrics.dedupe_hit()
    metrics.idempotency_conflict()
    metrics.rate_limited("address")
    metrics.nextcloud_call("validate", "ok", 0.3)
    metrics.sync_outcome("ok")
    metrics.sync_paused_until(1_760_000_000)

    text = metrics.render()
    for sample in (
        'credledger_http_requests_total{route="/api/v1/users/{uid}/app-password",method="POST",status="201"}'
        " 1",
        'credledger_http_request_duration_seconds_count{route="/api/v1/users/{uid}/app-password"} 1',
        "credledger_events_appended_total 3",
        'credledger_append_batch_size_bucket{le="4"} 1',
        "credledger_append_batch_seconds_count 1",
        'credledger_webhook_signature_failures_total{reason="bad_signature"} 1',
        "credledger_webhook_duplicates_total 1",
        "credledger_idempotency_conflicts_total 1",
        'credledger_rate_limited_total{scope="address"} 1',
        'credledger_nextcloud_requests_total{kind="validate",outcome="ok"} 1',
        'credledger_nextcloud_request_duration_seconds_count{kind="validate"} 1',
        'credledger_sync_runs_total{outcome="ok"} 1',
        "credledger_sync_paused_until_seconds 1760000000",
    ):
        assert sample + "\n" in text


def test_batch_size_buckets_double_up_to_512() -> None:
    """The batch size histogram has buckets 1, 2, 4, ... 512 and +Inf."""
    bounds = [
        line.split('le="')[1].split('"')[0]
        for line in ServiceMetrics().render().splitlines()
        if line.startswith("credledger_append_batch_size_bucket")
    ]

    assert bounds == ["1", "2", "4", "8", "16", "32", "64", "128", "256", "512", "+Inf"]


def test_unusual_http_methods_fold_into_other() -> None:
    """A request with a made-up method makes no series of its own."""
    metrics = ServiceMetrics()
    metrics.observe_request("unmatched", "BREW", 405, 0.001)

    assert metrics.http_requests.value(route="unmatched", method="other", status="405") == 1
