"""Jobs: plain functions ``(engine, settings, *, now) -> Result`` run by the scheduler or CLI."""

from wattledger.analytics.jobs.analytics import AnalyticsResult, run_analytics

__all__ = ["AnalyticsResult", "run_analytics"]
