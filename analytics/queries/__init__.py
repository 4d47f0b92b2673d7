"""Queries as functions returning SQLAlchemy Core ``Select``s, portable across both backends.

Each is named for the question it answers and labels every output column with its unit.
"""
