"""Execution state of one chunk of whole CTAs: register file, thread geometry, address spaces.

Lanes are laid out CTA-major; each CTA's lanes are padded to whole warps (padding lanes never
run), so warp-wide operations reshape lanes into (warps, 32)."""
from __future__ import annotations

import numpy as np

from . import clusterregs
from .memory import (DEFAULT_CONFIG, PARAM_WINDOW, WINDOW_SIZE, AddressConfig, ArraySpace, ClusterSharedSpace,
                     GenericSpace, GlobalSpace)

NUM_SMS = 132          # H100 SXM
MAX_WARPS_PER_SM = 64


class State:
    """Registers and memories of the lanes of ``n_ctas`` consecutive CTAs starting at ``cta0``."""

    def __init__(self, *, regs_dtypes: list[np.dtype], grid: tuple[int, int, int], block: tuple[int, int, int],
                 cta0: int, n_ctas: int, global_space: GlobalSpace, shared_size: int, dynamic_shared: int,
                 local_size: int, params: np.ndarray, const_banks: dict[int, np.ndarray],
                 global_addresses: dict[str, int], config: AddressConfig = DEFAULT_CONFIG,
                 calls: bool = False, heap=None, function_addresses: dict[str, int] | None = None,
                 cluster: tuple[int, int, int] | None = None, cluster_bank: int | None = None):
        self.grid, self.block, self.cta0, self.n_ctas = grid, block, cta0, n_ctas
        # the constant bank compiled code reads the cluster shape registers from (clusterregs.py);
        # None: they follow ``cluster``
        self.cluster_bank = cluster_bank
        # A cluster launch runs whole clusters per chunk, their CTAs consecutive in rank order
        self.cluster = cluster or (1, 1, 1)
        self.explicit_cluster = cluster is not None
        self.cluster_size = self.cluster[0] * self.cluster[1] * self.cluster[2]
        self.nthreads = block[0] * block[1] * block[2]
        self.cta_lanes = (self.nthreads + 31) // 32 * 32
        self.L = L = n_ctas * self.cta_lanes
        self.regs = [np.zeros(L, dt) for dt in regs_dtypes]
        self.carry = np.zeros(L, bool)        # CC.CF of add.cc/addc and friends
        self.steps = 0
        self._geo: dict[str, np.ndarray] = {}
        lane = np.arange(L, dtype=np.int64)
        self.lane_cta = lane // self.cta_lanes
        self.lane_t = lane % self.cta_lanes
        self.valid = self.lane_t < self.nthreads
        self.shared_size = shared_size
        self.dynamic_shared = dynamic_shared
        sstride = max(16, (shared_size + 15) // 16 * 16)
        if cluster is None:
            self.shared = ArraySpace("shared", np.zeros(n_ctas * sstride, np.uint8), shared_size, self.lane_cta * sstride)
        else:
            self.shared = ClusterSharedSpace(np.zeros(n_ctas * sstride, np.uint8), shared_size, self.lane_cta * sstride,
                                             sstride, self.geo("cluster_ctarank").astype(np.int64), self.cluster_size)
        # Local memory: the thread's frame sits below the stack pointer inside the part of the
        # local window the launch gave each thread; local addresses are frame-relative.
        self.config = config
        self.frame_base = config.frame_base(local_size)
        lo, hi = config.local_bounds(local_size)
        llimit = hi - lo if local_size else 0
        lstride = max(16, (llimit + 15) // 16 * 16)
        self.local = ArraySpace("local", np.zeros(L * lstride, np.uint8) if llimit else np.zeros(16, np.uint8),
                                llimit, lane * lstride if llimit else np.zeros(L, np.int64),
                                bias=self.frame_base - lo)
        self.param = ArraySpace("param", _padded(params), len(params), None, writable=False)
        self.consts = {b: ArraySpace("const", _padded(v), len(v), None, writable=False) for b, v in const_banks.items()}
        self.global_ = global_space
        self.generic = GenericSpace(global_space, self.shared, self.local, self.param, config, self.frame_base)
        self.global_addresses = global_addresses
        self.output: list[str] = []           # printf lines (builtins.py)
        self.heap = heap                      # the device heap of malloc/free (builtins.DeviceHeap)
        self.mbarrier_tx: dict[int, int] = {}  # transaction counts of mbarriers (ops_mbarrier.py)
        # function addresses the loader gave (name -> value), else the interpreter's own
        self.function_addresses = function_addresses or {}
        self._code_names: dict[int, str] = {v: k for k, v in self.function_addresses.items()}
        self.mbarrier_waiting: np.ndarray | None = None   # lanes whose last mbarrier wait failed
        if calls:                             # device-function calls (see calls.py)
            self.fp = np.zeros(L, np.int64)               # frame pointer: local offset of the frame
            self.sp = np.zeros(L, np.int64)               # stack pointer: lowest local offset in use
            self.depth = np.zeros(L, np.int32)            # calls in progress
            self.cstack = np.zeros((4, L), np.int32)      # PC of each call site, outermost first

    def push_call(self, lanes: np.ndarray, pc: int) -> None:
        """Record that ``lanes`` called from ``pc`` (grows the call-site stack as needed)."""
        d = self.depth[lanes]
        if int(d.max()) >= self.cstack.shape[0]:
            self.cstack = np.concatenate([self.cstack, np.zeros_like(self.cstack)])
        self.cstack[d, lanes] = pc
        self.depth[lanes] = d + 1

    def function_address(self, name: str, default: int) -> int:
        """The address of function ``name`` in this launch (``default``: the interpreter's own,
        ``calls.function_address``, when the loader gave none)."""
        return self.function_addresses.get(name, default)

    def function_at(self, address: int) -> str | None:
        """The function the loader placed at ``address`` (None: not one of the loader's)."""
        return self._code_names.get(address)

    def space(self, name: str):
        return {"global": self.global_, "shared": self.shared, "local": self.local, "param": self.param,
                "generic": self.generic}[name]

    def cvta_base(self, space: str) -> int:
        """What ``cvta.<space>`` adds to a ``space`` address to make it generic: the window base
        the compiled code reads from constant bank 0 (plus the frame base for local)."""
        c = self.config
        if space == "shared":
            return c.shared_window if c.shared_cvta is None else c.shared_cvta
        if space == "local":
            return (c.local_window if c.local_cvta is None else c.local_cvta) + self.frame_base
        return PARAM_WINDOW

    def window(self, space: str) -> tuple[int, int]:
        """[lo, hi) of the generic addresses routed to ``space`` (the programmed windows)."""
        c = self.config
        if space == "local":
            return c.local_window, c.local_window + c.local_window_size
        base = c.shared_window if space == "shared" else PARAM_WINDOW
        return base, base + WINDOW_SIZE

    def const(self, bank: int) -> ArraySpace:
        try:
            return self.consts[bank]
        except KeyError:
            from .errors import IllegalInstruction
            raise IllegalInstruction(f"constant bank {bank} is not bound") from None

    # ---- geometry --------------------------------------------------------------------------
    def geo(self, name: str) -> np.ndarray:
        """A per-lane uint32 geometry array (tid_x, ctaid_y, laneid, warpid, lanemask_lt, ...)."""
        g = self._geo.get(name)
        if g is None:
            g = self._geo[name] = self._make_geo(name)
        return g

    def linear_cta(self, launch_index):
        """Linear CTA id (x + gx*(y + gy*z)) of the CTA at ``launch_index`` in launch order:
        the identity, except in a cluster launch, where clusters run one after another with
        their CTAs in rank order."""
        if self.cluster_size == 1:
            return launch_index
        cx, cy, cz = self.cluster
        gx, gy, _ = self.grid
        nx, ny = gx // cx, gy // cy
        c, r = launch_index // self.cluster_size, launch_index % self.cluster_size
        x = (c % nx) * cx + r % cx
        y = ((c // nx) % ny) * cy + (r // cx) % cy
        z = (c // (nx * ny)) * cz + r // (cx * cy)
        return x + gx * (y + gy * z)

    def _make_geo(self, name: str) -> np.ndarray:
        bx, by, _ = self.block
        gx, gy, _ = self.grid
        t, cta = self.lane_t, self.linear_cta(self.lane_cta + self.cta0)
        u32 = np.uint32
        cx, cy, cz = self.cluster
        if name == "cluster_ctarank":
            return ((self.lane_cta + self.cta0) % self.cluster_size).astype(u32)
        if self.cluster_bank is not None and (name.startswith("cluster_ctaid_") or name.startswith("clusterid_")):
            bank, axis = self.cluster_bank_bytes(), "xyz".index(name[-1])
            read = clusterregs.cluster_ctaid if name.startswith("cluster_ctaid_") else clusterregs.clusterid
            return read(bank, self.geo("ctaid_" + name[-1]), axis)
        if name.startswith("cluster_ctaid_") or name.startswith("clusterid_"):
            axis = name[-1]
            v = self.geo("ctaid_" + axis)
            d = {"x": cx, "y": cy, "z": cz}[axis]
            return (v % d if name.startswith("cluster_ctaid_") else v // d).astype(u32)
        if name == "tid_x":
            return (t % bx).astype(u32)
        if name == "tid_y":
            return ((t // bx) % by).astype(u32)
        if name == "tid_z":
            return (t // (bx * by)).astype(u32)
        if name == "ctaid_x":
            return (cta % gx).astype(u32)
        if name == "ctaid_y":
            return ((cta // gx) % gy).astype(u32)
        if name == "ctaid_z":
            return (cta // (gx * gy)).astype(u32)
        if name == "laneid":
            return (t % 32).astype(u32)
        if name == "warpid":
            return (t // 32).astype(u32)
        if name == "smid":
            return (cta % NUM_SMS).astype(u32)
        lid = self.geo("laneid").astype(np.uint64)
        one = np.uint64(1)
        masks = {"lanemask_eq": one << lid, "lanemask_lt": (one << lid) - one,
                 "lanemask_le": (one << (lid + one)) - one}
        if name in masks:
            return masks[name].astype(u32)
        if name == "lanemask_ge":
            return (~self.geo("lanemask_lt")).astype(u32)
        if name == "lanemask_gt":
            return (~self.geo("lanemask_le")).astype(u32)
        raise KeyError(name)

    def cluster_bank_bytes(self) -> np.ndarray:
        """The bytes of the constant bank holding the cluster words (``cluster_bank``)."""
        return self.const(self.cluster_bank).data

    def cta_of(self, lane: int) -> tuple[int, int, int]:
        c = int(self.linear_cta(int(self.lane_cta[lane]) + self.cta0))
        gx, gy, _ = self.grid
        return (c % gx, (c // gx) % gy, c // (gx * gy))

    def thread_of(self, lane: int) -> tuple[int, int, int]:
        t = int(self.lane_t[lane])
        bx, by, _ = self.block
        return (t % bx, (t // bx) % by, t // (bx * by))


def _padded(b) -> np.ndarray:
    """Bytes -> a 16-byte-padded uint8 array (typed views need whole elements)."""
    raw = np.frombuffer(bytes(b), np.uint8)
    out = np.zeros(max(16, (len(raw) + 15) // 16 * 16), np.uint8)
    out[:len(raw)] = raw
    return out
