"""The operator's door: `/metrics` for Prometheus and `/dashboard`, a live page for whoever runs a pod.

`door(app)` gives the HTTP server both (its door hook), to mount behind its guard. What they show is recorded
in `mugpos.telemetry`; see docs/operations.md for the metric list and a Grafana dashboard.
"""

from mugpos.dashboard.routes import door, routes

__all__ = ["door", "routes"]
