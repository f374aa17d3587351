"""Grafana's published dashboard schema, installed with npm, and the check that uses it (check.py)."""
