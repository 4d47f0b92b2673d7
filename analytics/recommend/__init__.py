"""Recommendations: where traffic should move, with savings, confidence and risks."""

from wattledger.analytics.recommend.routes import Interval, RouteKey, RouteStats, load_routes
from wattledger.analytics.recommend.rules import Candidate, PoolStats, Rejection

__all__ = [
    "Candidate",
    "Interval",
    "PoolStats",
    "Rejection",
    "RouteKey",
    "RouteStats",
    "load_routes",
]
