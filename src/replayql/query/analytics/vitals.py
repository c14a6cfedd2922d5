"""`webVitals`: per Core Web Vital, the p75 and the good / needs-improvement / poor shares by the standard
thresholds, optionally by a dimension. A convenience over `aggregate` on web-vital events."""

from __future__ import annotations

from dataclasses import dataclass, replace

from replayql.config import AnalyticsLimits
from replayql.query.analytics.aggregate import AggregateRequest, Dimension, Measure, aggregate
from replayql.query.lists import ReadStore
from replayql.query.sql import AppScope

# (good up to, poor above), in the vital's unit (ms; CLS unitless), as web.dev defines them.
THRESHOLDS: dict[str, tuple[float, float]] = {
    "LCP": (2500, 4000), "FCP": (1800, 3000), "INP": (200, 500), "CLS": (0.1, 0.25), "TTFB": (800, 1800)}
GROUPS = {"PATH": "path", "PATH_PATTERN": "pathPattern", "BROWSER": "session.browser",
          "DEVICE_TYPE": "session.deviceType"}


@dataclass
class VitalSummary:
    name: str
    group: str | None
    count: int
    p75: float | None
    good: float | None
    needs_improvement: float | None
    poor: float | None
    good_threshold: float
    poor_threshold: float


def _band(band: str) -> str:
    """The filter-language condition for a band (good, middle or poor), each vital by its own thresholds."""
    conditions = {"good": "value <= {0!r}", "middle": "value > {0!r} AND value <= {1!r}", "poor": "value > {1!r}"}
    return " OR ".join(f"(name = {name} AND {conditions[band].format(*limits)})" for name, limits in THRESHOLDS.items())


def web_vitals(store: ReadStore, scope: AppScope, request: AggregateRequest, group: str | None,
               limits: AnalyticsLimits) -> tuple[list[VitalSummary], bool]:
    """`request` carries the time range and filters; the summaries come back by vital, then by the group's
    count. The flag says whether `limit` cut groups off."""
    restrict = f"name IN ({', '.join(THRESHOLDS)})"
    measures = [Measure("count", "COUNT"), Measure("p75", "P75", "value"), Measure("good", "RATE", where=_band("good")),
                Measure("middle", "RATE", where=_band("middle")), Measure("poor", "RATE", where=_band("poor"))]
    dimensions = [Dimension("name")] + ([Dimension(GROUPS[group], "grouped")] if group else [])
    table = aggregate(store, scope, replace(request, source="WEB_VITALS", restrict=restrict, measures=measures,
                                            group_by=dimensions, interval=None, order_by="count"), limits)
    out = []
    for row in table.rows:
        name, grouped = row[0], row[1] if group else None
        count, p75, good, middle, poor = row[-5:]
        good_at, poor_at = THRESHOLDS[name]
        out.append(VitalSummary(name, grouped, count, p75, good, middle, poor, good_at, poor_at))
    order = list(THRESHOLDS)
    out.sort(key=lambda s: (order.index(s.name), -s.count, s.group or ""))
    return out, table.truncated
