"""Fuzz tests: hypothesis with a bounded budget so CI stays fast (raise it locally with FUZZ_EXAMPLES)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "mugpos-fuzz",
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=os.environ.get("FUZZ_RANDOM", "") == "",
)
