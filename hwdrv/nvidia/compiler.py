"""PTX compilers for the NVIDIA backend.

* :class:`PtxasCompiler` runs NVIDIA's ``ptxas`` to turn PTX into an sm_90 cubin (the real GPU).
* :class:`MockPtxCompiler` returns a cubin-shaped ELF whose code is the PTX text
  (:mod:`hwdrv.nvidia.mockcubin`) for ``mock:nvidia``, whose GPU executes PTX.

Both take ``str`` or ``bytes`` PTX and return the binary that ``Device.program`` loads.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

from ..errors import ProgramError
from . import mockcubin
from .ptxscan import decode_utf8, scan_entries

PTXAS_ENV = "HWDRV_PTXAS"
CUDA_HOME_ENV = "CUDA_HOME"
# Where the PyPI wheels put ptxas inside the `nvidia` namespace package: nvidia-cuda-nvcc 13.x
# ships nvidia/cu13/bin/ptxas, the 12.x wheels nvidia/cuda_nvcc/bin/ptxas.
WHEEL_PTXAS_PATHS = (("cu13", "bin", "ptxas"), ("cuda_nvcc", "bin", "ptxas"))
DEFAULT_TIMEOUT_S = 120.0
DEFAULT_CACHE_ENTRIES = 128
_ARCH_RE = re.compile(r"sm_\d{2,3}[af]?")
_INPUT_NAME = "kernel.ptx"


def find_ptxas() -> str | None:
    """Path of a ptxas executable, searching in order: ``$HWDRV_PTXAS`` (which must then be
    usable), ``PATH``, ``$CUDA_HOME/bin``, and the ``nvidia-cuda-nvcc`` wheel (found through
    the ``nvidia`` namespace package's search paths). None if there is none."""
    forced = os.environ.get(PTXAS_ENV)
    if forced:
        if not (os.path.isfile(forced) and os.access(forced, os.X_OK)):
            raise ProgramError(f"{PTXAS_ENV}={forced!r} is not an executable file")
        return forced
    found = shutil.which("ptxas")
    if found:
        return found
    cuda_home = os.environ.get(CUDA_HOME_ENV)
    if cuda_home:
        candidate = Path(cuda_home, "bin", "ptxas")
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return _wheel_ptxas()


def _wheel_ptxas() -> str | None:
    try:
        spec = importlib.util.find_spec("nvidia")
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    for base in spec.submodule_search_locations or ():
        for parts in WHEEL_PTXAS_PATHS:
            candidate = Path(base, *parts)
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    return None


def _source_bytes(ptx: str | bytes) -> bytes:
    if isinstance(ptx, str):
        return ptx.encode("utf-8")
    if isinstance(ptx, (bytes, bytearray, memoryview)):
        return bytes(ptx)
    raise ProgramError(f"PTX must be str or bytes, not {type(ptx).__name__}")


class PtxasCompiler:
    """PTX -> cubin with ptxas.

    ``arch`` is the device's (``"sm_90"``; ``"sm_90a"`` for kernels using wgmma/setmaxnreg).
    ``opt_level`` is passed as ``-O<n>`` (default 3), ``options`` are appended verbatim.
    ``ptxas`` overrides the search of :func:`find_ptxas`. Each run gets a private temporary
    directory and is killed after ``timeout`` seconds. Results are cached in memory (LRU of
    ``cache_entries``) by (source hash, arch, options, ptxas path); ``compiles`` counts real
    ptxas runs. A ptxas failure raises ProgramError with ptxas's own messages (line numbers
    refer to the PTX given; the temporary file is shown as ``kernel.ptx``)."""

    def __init__(self, arch: str = "sm_90", opt_level: int = 3, options: tuple[str, ...] = (),
                 ptxas: str | None = None, timeout: float = DEFAULT_TIMEOUT_S,
                 cache_entries: int = DEFAULT_CACHE_ENTRIES):
        if not isinstance(arch, str) or not _ARCH_RE.fullmatch(arch):
            raise ProgramError(f"arch {arch!r} is not a ptxas SM name like 'sm_90' or 'sm_90a'")
        if opt_level not in range(4):
            raise ProgramError(f"opt_level must be 0..3, got {opt_level!r}")
        self.arch, self.opt_level = arch, opt_level
        self.options = tuple(options)
        self.timeout = timeout
        self._ptxas = ptxas
        self._cache: OrderedDict[tuple, tuple[bytes, str]] = OrderedDict()
        self._cache_entries = cache_entries
        self._lock = threading.Lock()
        self.compiles = 0

    @property
    def ptxas(self) -> str:
        """The ptxas executable used; ProgramError saying how to get one if there is none."""
        if self._ptxas is None:
            found = find_ptxas()
            if found is None:
                raise ProgramError(
                    f"ptxas not found: install hwdrv's 'nvidia' extra (pip install "
                    f"nvidia-cuda-nvcc), put ptxas on PATH, set {CUDA_HOME_ENV}, or set "
                    f"{PTXAS_ENV} to its path")
            self._ptxas = found
        return self._ptxas

    def compile(self, ptx: str | bytes) -> bytes:
        """The cubin ptxas makes of ``ptx``."""
        return self.compile_with_log(ptx)[0]

    def compile_with_log(self, ptx: str | bytes, extra: tuple[str, ...] = ()) \
            -> tuple[bytes, str]:
        """The cubin and ptxas's output (e.g. its ``-v`` resource report with ``extra=("-v",)``)."""
        src = _source_bytes(ptx)
        args = (f"-arch={self.arch}", f"-O{self.opt_level}", *self.options, *extra)
        key = (hashlib.sha256(src).hexdigest(), args, self.ptxas)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        result = self._run(src, args)
        with self._lock:
            self._cache[key] = result
            while len(self._cache) > self._cache_entries:
                self._cache.popitem(last=False)
            self.compiles += 1
        return result

    def _run(self, src: bytes, args: tuple[str, ...]) -> tuple[bytes, str]:
        with tempfile.TemporaryDirectory(prefix="hwdrv-ptxas-") as tmp:
            inp, out = Path(tmp, _INPUT_NAME), Path(tmp, "kernel.cubin")
            inp.write_bytes(src)
            cmd = [self.ptxas, *args, "-o", str(out), str(inp)]
            try:
                proc = subprocess.run(cmd, capture_output=True, timeout=self.timeout, cwd=tmp)
            except subprocess.TimeoutExpired:
                raise ProgramError(f"ptxas ({self.arch}) did not finish within {self.timeout} s; "
                                   f"raise PtxasCompiler(timeout=...) for very large kernels") \
                    from None
            except OSError as e:
                raise ProgramError(f"cannot run ptxas at {self.ptxas!r}: {e}") from e
            log = (proc.stdout + proc.stderr).decode("utf-8", "replace").replace(str(inp),
                                                                                 _INPUT_NAME)
            if proc.returncode != 0:
                raise ProgramError(f"ptxas {' '.join(args)} failed (exit {proc.returncode}):\n"
                                   f"{log.strip()}")
            if not out.is_file():
                raise ProgramError(f"ptxas {' '.join(args)} exited 0 but wrote no cubin:\n"
                                   f"{log.strip()}")
            return out.read_bytes(), log

    def __repr__(self) -> str:
        return f"<PtxasCompiler {self.arch} -O{self.opt_level} {' '.join(self.options)}>"


class MockPtxCompiler:
    """The compiler of ``mock:nvidia``: checks that the PTX is a module (``.version``,
    ``.target``, at least one ``.entry``) and returns the mock cubin of it
    (:func:`hwdrv.nvidia.mockcubin.build`): the same sections and ``.nv.info`` records a ptxas
    cubin has, with the PTX text as code. Full checking of the PTX is the mock GPU's parser's job
    when it runs a kernel."""

    arch = "sm_90"

    def compile(self, ptx: str | bytes) -> bytes:
        """The mock cubin of ``ptx``; ProgramError if it lacks .version, .target or an .entry."""
        src = _source_bytes(ptx)
        nul = src.find(b"\0")
        if nul >= 0:
            raise ProgramError(f"PTX text contains a NUL byte (at {nul}); the mock GPU reads "
                               f"kernel text up to the first NUL")
        decode_utf8(src)
        directives, entries = scan_entries(src)
        missing = [f".{d}" for d in ("version", "target") if not directives.get(d)]
        if not entries:
            missing.append(".entry")
        if missing:
            raise ProgramError(f"PTX module has no {', no '.join(missing)} directive; a module "
                               f"needs .version, .target and at least one .entry")
        return mockcubin.build(src)

    def __repr__(self) -> str:
        return "<MockPtxCompiler (PTX-coded cubins for mock:nvidia)>"
