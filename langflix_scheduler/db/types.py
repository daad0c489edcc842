"""The database types other layers name in signatures (sessions and connections passed to
callbacks that ``db/`` runs), so that only ``db/`` imports SQLAlchemy."""

from __future__ import annotations

from sqlalchemy.engine import Connection, Row
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

#: A SQL condition on rows (built by ``db/`` functions, passed back to them).
Filter = ColumnElement[bool]

__all__ = ["Connection", "Filter", "Row", "Session"]
