"""The time window a drift report covers: ISO times or "last 24h", always in UTC.

The request log stamps every line with a UTC ISO time ending in "Z" (``model_server.logs.utc_now``); windows are
half-open, ``[since, until)``, so consecutive windows never count a request twice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

_LAST = re.compile(r"^\s*last\s+(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hours?|d|days?|w|weeks?)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_time(text: str) -> dt.datetime:
    """An ISO 8601 time ("2026-12-01T10:00:00Z", "2026-12-01"); a time without an offset is taken as UTC."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"  # Python 3.10's fromisoformat does not read "Z"
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not an ISO 8601 time: {text!r} (example: 2026-12-01T10:00:00Z)") from None
    return parsed.replace(tzinfo=dt.timezone.utc) if parsed.tzinfo is None else parsed.astimezone(dt.timezone.utc)


@dataclasses.dataclass(frozen=True)
class TimeWindow:
    """``[since, until)``; ``since`` None reaches back to the log's first line."""

    since: dt.datetime | None
    until: dt.datetime

    def __post_init__(self) -> None:
        if self.since is not None and self.since >= self.until:
            raise ValueError(f"the window is empty: --since {self.since.isoformat()} is not before --until")

    def contains(self, ts: dt.datetime) -> bool:
        return (self.since is None or ts >= self.since) and ts < self.until

    def previous(self) -> TimeWindow | None:
        """The window of the same length just before this one (the baseline of drift over time)."""
        if self.since is None:
            return None
        return TimeWindow(self.since - (self.until - self.since), self.since)

    def describe(self) -> str:
        start = "the first line" if self.since is None else iso(self.since)
        return f"{start} to {iso(self.until)}"


def iso(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_window(since: str = "", until: str = "", now: dt.datetime | None = None) -> TimeWindow:
    """``since`` is an ISO time, "last <n><unit>" (s, m, h, d, w; counted back from ``until``) or "" (all);
    ``until`` an ISO time or "" (now)."""
    end = parse_time(until) if until.strip() else (now or dt.datetime.now(dt.timezone.utc))
    if not since.strip():
        return TimeWindow(None, end)
    match = _LAST.match(since)
    if match:
        amount, unit = float(match.group(1)), match.group(2)[0].lower()
        if amount <= 0:
            raise ValueError(f"--since {since!r}: the length must be positive")
        return TimeWindow(end - dt.timedelta(seconds=amount * _UNIT_SECONDS[unit]), end)
    if since.strip().lower().startswith("last"):
        raise ValueError(f"--since {since!r}: write 'last <number><unit>', unit one of s, m, h, d, w (e.g. 'last 24h')")
    return TimeWindow(parse_time(since), end)
