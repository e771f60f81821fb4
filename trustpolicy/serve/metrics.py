"""Counters and histograms for /metrics, in the Prometheus text exposition format (version 0.0.4).

The server is one event loop, so plain dicts need no locks.
"""

from __future__ import annotations

from collections import defaultdict

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_HELP = {
    "requests_total": ("counter", "HTTP requests answered, by route and status"),
    "decisions_total": ("counter", "Package decisions, by outcome: served, refused, audit-served (require would "
                                   "refuse), bad-package, not-found, upstream-error"),
    "verdict_codes_total": ("counter", "Issue codes of the verdicts behind package decisions, by code and level"),
    "cache_total": ("counter", "Package decisions answered from the cache (hit) or after a download (miss)"),
    "verifications_total": ("counter", "Package files verified in a worker"),
    "upstream_requests_total": ("counter", "Downloads from upstream feeds, by feed and outcome"),
    "upstream_seconds": ("histogram", "Time to download a package from its upstream"),
    "verification_seconds": ("histogram", "Time to verify a package in a worker"),
    "policy_reloads_total": ("counter", "Policy reloads, by result"),
}


class Metrics:
    prefix = "trustpolicy_serve_"

    def __init__(self) -> None:
        self._counters: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(lambda: defaultdict(float))
        self._histograms: dict[str, dict[tuple[tuple[str, str], ...], list[float]]] = defaultdict(dict)

    def count(self, name: str, amount: float = 1, **labels: str) -> None:
        self._counters[name][tuple(sorted(labels.items()))] += amount

    def observe(self, name: str, seconds: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        # bucket counts (cumulative when rendered), then sum and count
        values = self._histograms[name].setdefault(key, [0.0] * (len(_BUCKETS) + 2))
        for index, bound in enumerate(_BUCKETS):
            if seconds <= bound:
                values[index] += 1
                break
        values[-2] += seconds
        values[-1] += 1

    def value(self, name: str, **labels: str) -> float:
        return self._counters[name].get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> str:
        lines: list[str] = []
        for name in sorted(set(self._counters) | set(self._histograms)):
            kind, text = _HELP.get(name, ("untyped", name))
            full = self.prefix + name
            lines += [f"# HELP {full} {text}", f"# TYPE {full} {kind}"]
            for key, amount in sorted(self._counters.get(name, {}).items()):
                lines.append(f"{full}{_labels(key)} {_number(amount)}")
            for key, values in sorted(self._histograms.get(name, {}).items()):
                running = 0.0
                for bound, hits in zip(_BUCKETS, values):
                    running += hits
                    lines.append(f"{full}_bucket{_labels(key + (('le', repr(bound)),))} {_number(running)}")
                lines.append(f"{full}_bucket{_labels(key + (('le', '+Inf'),))} {_number(values[-1])}")
                lines.append(f"{full}_sum{_labels(key)} {values[-2]!r}")
                lines.append(f"{full}_count{_labels(key)} {_number(values[-1])}")
        return "\n".join(lines) + "\n"


def _labels(key: tuple[tuple[str, str], ...]) -> str:
    if not key:
        return ""
    escaped = (f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34)).replace(chr(10), chr(92) + "n")}"'
               for k, v in key)
    return "{" + ",".join(escaped) + "}"


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)
