"""Derive: energy attribution, costs, rollups, recommendations, reports and exports."""
