"""The NVIDIA conformance suite on a real GPU: `pytest -m hardware tests/hardware`."""
from conformance_cases import *  # noqa: F401,F403 - the shared cases
