"""Read-only aggregates for the sync health report."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import Connection, text

_PG_DAILY = text(
    "SELECT source, attributes->>'status' AS status, "
    "(received_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n "
    "FROM source_records WHERE received_at >= :since "
    "AND (received_at AT TIME ZONE 'UTC')::time <= :until "
    "GROUP BY 1, 2, 3"
)
_SQLITE_DAILY = text(
    "SELECT source, json_extract(attributes, '$.status') AS status, "
    "date(received_at) AS day, count(*) AS n "
    "FROM source_records WHERE received_at >= :since AND time(received_at) <= :until "
    "GROUP BY 1, 2, 3"
)


class HealthRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.postgres = conn.dialect.name == "postgresql"

    def last_received(self) -> dict[str, datetime]:
        rows = self.conn.execute(
            text("SELECT source, max(received_at) FROM source_records GROUP BY source")
        )
        return {s: _utc(at) for s, at in rows if at is not None}

    def daily_counts(self, since: datetime, until: time) -> list[tuple[str, str | None, date, int]]:
        """Records received per source, lifecycle status and day, counting on each day only
        up to the time of day `until`: today so far against the same hours of other days."""
        if self.postgres:
            rows = self.conn.execute(_PG_DAILY, {"since": since, "until": until})
        else:
            rows = self.conn.execute(
                _SQLITE_DAILY,
                {"since": since.replace(tzinfo=None), "until": until.strftime("%H:%M:%S.%f")},
            )
        return [
            (s, status, d if isinstance(d, date) else date.fromisoformat(d), int(n))
            for s, status, d, n in rows
        ]

    def received_since(self, since: datetime) -> dict[str, int]:
        rows = self.conn.execute(
            text(
                "SELECT source, count(*) FROM source_records WHERE received_at >= :since "
                "GROUP BY source"
            ),
            {"since": self._at(since)},
        )
        return {s: int(n) for s, n in rows}

    def rejected_since(self, since: datetime) -> dict[str, int]:
        rows = self.conn.execute(
            text(
                "SELECT source, count(*) FROM rejections WHERE created_at >= :since GROUP BY source"
            ),
            {"since": self._at(since)},
        )
        return {s or "": int(n) for s, n in rows}

    def webhook_trouble(self, since: datetime) -> list[dict[str, Any]]:
        """Subscriptions disabled, or with deliveries dead or retrying since `since`."""
        rows = self.conn.execute(
            text(
                "SELECT s.id, s.url, s.status, s.disabled_reason, "
                "sum(CASE WHEN d.status = 'dead' THEN 1 ELSE 0 END) AS dead, "
                "sum(CASE WHEN d.status IN ('pending', 'delivering') AND d.attempts > 0 "
                "THEN 1 ELSE 0 END) AS retrying "
                "FROM webhook_subscriptions s LEFT JOIN webhook_deliveries d "
                "ON d.subscription_id = s.id AND d.created_at >= :since "
                "GROUP BY s.id, s.url, s.status, s.disabled_reason"
            ),
            {"since": self._at(since)},
        )
        return [
            {
                "id": str(i),
                "url": url,
                "status": status,
                "disabled_reason": reason,
                "dead": int(dead or 0),
                "retrying": int(retrying or 0),
            }
            for i, url, status, reason, dead, retrying in rows
        ]

    def alerts_since(self, since: datetime) -> set[str]:
        rows = self.conn.execute(
            text("SELECT payload FROM outbox WHERE type = 'alert.raised' AND created_at >= :since"),
            {"since": self._at(since)},
        )
        keys = set()
        for (payload,) in rows:
            if isinstance(payload, str):
                payload = json.loads(payload)
            if isinstance(payload, dict) and "key" in payload:
                keys.add(payload["key"])
        return keys

    def _at(self, at: datetime) -> datetime:
        return at if self.postgres else at.replace(tzinfo=None)


def _utc(at: Any) -> datetime:
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
