"""The profile status rule, shared by the profile service (which shows it) and segmentation
(which evaluates conditions on it, in Python and in SQL): one definition, one place.

By days since the last activity: NEW (first seen <= 30 days ago and at most one order),
ACTIVE (<= 90 days), CHURN_RISK (90-180 days), LAPSED (> 180 days).
"""

from __future__ import annotations

__all__ = ["ACTIVE_DAYS", "CHURN_RISK_DAYS", "DAY", "NEW_DAYS", "status_at"]

DAY = 86_400.0
NEW_DAYS, ACTIVE_DAYS, CHURN_RISK_DAYS = 30.0, 90.0, 180.0


def status_at(created_at: float, last_activity_at: float, orders: int, now: float) -> str:
    idle_days = (now - last_activity_at) / DAY
    if (now - created_at) / DAY <= NEW_DAYS and orders <= 1:
        return "NEW"
    if idle_days <= ACTIVE_DAYS:
        return "ACTIVE"
    if idle_days <= CHURN_RISK_DAYS:
        return "CHURN_RISK"
    return "LAPSED"
