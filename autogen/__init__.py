"""hwdrv's header generator: C headers -> hwdrv/*/gen/*.py (a maintainer tool, not installed).

Run ``python -m autogen --help``; README.md says how to fetch the pinned sources.
"""
