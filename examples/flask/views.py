"""Imported lazily by app.py on the first request."""

RELEASE = "@release@"
