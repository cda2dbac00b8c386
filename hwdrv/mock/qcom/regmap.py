"""Register offsets and fields of one Adreno generation, by Mesa name.

hwdrv.qcom.gen.a6xx holds the a6xx names plainly and ``A7XX_``-prefixed ones where a7xx moved a
register or changed a field; ``RegMap("A7XX")`` prefers those, so code names registers once.
"""
from __future__ import annotations

from functools import lru_cache

from hwdrv.errors import InvalidArgument
from hwdrv.ioctl.bindings import Field
from hwdrv.qcom.gen import a6xx as A

CHIPS = ("A6XX", "A7XX")


class RegMap:
    def __init__(self, chip: str):
        if chip not in CHIPS:
            raise InvalidArgument(f"unknown Adreno generation {chip!r}; known: {CHIPS}")
        self.chip = chip
        self._prefix = "" if chip == "A6XX" else chip + "_"

    @lru_cache(maxsize=None)
    def _lookup(self, name: str):
        if self._prefix and hasattr(A, self._prefix + name):
            return getattr(A, self._prefix + name)
        if not hasattr(A, name):
            raise InvalidArgument(f"{name} is not in hwdrv.qcom.gen.a6xx (add it to the a6xx target in "
                                  "autogen/manifest.py)")
        return getattr(A, name)

    def __getattr__(self, name: str) -> int:
        if name.startswith("_"):
            raise AttributeError(name)
        v = self._lookup(name)
        if not isinstance(v, int):
            raise InvalidArgument(f"{name} is not a register offset")
        return v

    def field(self, name: str) -> Field:
        v = self._lookup(name)
        if not isinstance(v, Field):
            raise InvalidArgument(f"{name} is not a register field")
        return v
