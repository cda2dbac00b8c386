"""ABI misuse answered by the real NVIDIA driver: `pytest -m hardware tests/hardware`."""
from abi_cases import *  # noqa: F401,F403
