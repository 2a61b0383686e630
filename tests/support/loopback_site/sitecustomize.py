"""Runs at the start of a node process a test started with tests.support.sources's
`node_environment`: its loopback clients are sources apart (`each_loopback_address_a_source`)."""

from __future__ import annotations

import runpy
from pathlib import Path

runpy.run_path(str(Path(__file__).resolve().parent.parent / "sources.py"))["install"]()
