"""PTX interpreter: the instruction set of the mock NVIDIA (Hopper, sm_90) GPU.

    from hwdrv.mock.nvidia import ptx
    module = ptx.parse(text)                       # PTXError (a ProgramError) on bad/unsupported PTX
    module.entries["k"].params                     # [Param(name, type, size, align, offset)]
    ptx.launch(module, "k", grid=(x, y, z), block=(x, y, z), params=..., memory=page_table)

Beyond the binding signature, launch() takes keyword-only ``global_addresses`` (device VAs of
module .global variables; ``Module.global_image`` gives their initial bytes), ``max_steps``,
``deadline`` (time.monotonic() value) and ``cancel`` (threading.Event) to stop a hung kernel
with LaunchTimeout, ``chunk_threads`` (how many threads, in whole CTAs, run as one numpy
vector; default 65536), ``stack_size`` (per-thread stack of kernels that call or alloca, when no
``address_config`` gives local memory), ``heap`` (the DeviceHeap of device malloc/free) and
``function_addresses`` (the loader's address of each function: what function pointers hold).
``LaunchResult.output`` holds printf lines.

A module loads if it parses; a kernel holding an instruction the interpreter cannot execute is
listed in ``Entry.unsupported`` and its launch faults with IllegalInstruction before any thread
runs. A Python exception inside an instruction is an InterpreterDefect. docs/ptx-support.md
lists what runs and what does not.

Generic addresses: shared memory at SHARED_WINDOW + offset, local at LOCAL_WINDOW + offset,
kernel parameters at PARAM_WINDOW + offset (each window 4 GiB); everything else is global. A
launch's ``address_config`` (an AddressConfig) moves the shared/local windows, sets what ``cvta``
adds, and places the ``.local`` frame under a stack pointer inside a per-thread local size, as the
mock GPU does from what the driver programmed; ``shared_bytes`` bounds shared memory per CTA.
Module .const variables live in constant bank 3 (``Module.const_layout``/``const_image``).

Kernels run vectorised with numpy over whole CTAs. Faults raise MockFault subclasses
(the page table's MemoryFault, AddressSpaceFault, IllegalInstruction and its DeviceAssert,
LaunchTimeout, InterpreterDefect) carrying
cta/thread/warp/lane/pc/line/instruction attributes for the SM error state."""
from .ast import Param, Variable
from .builtins import DeviceAssert, DeviceHeap
from .errors import AddressSpaceFault, IllegalInstruction, InterpreterDefect, LaunchTimeout, PTXError
from .executor import LaunchResult, launch
from .memory import (LOCAL_WINDOW, LOCAL_WINDOW_BYTES, PARAM_WINDOW, SHARED_WINDOW, WINDOW_SIZE, AddressConfig,
                     GlobalMemory)
from .module import Entry, Module, parse

__all__ = ["parse", "launch", "Module", "Entry", "Param", "Variable", "LaunchResult", "PTXError",
           "IllegalInstruction", "DeviceAssert", "DeviceHeap", "InterpreterDefect", "LaunchTimeout",
           "AddressSpaceFault", "GlobalMemory", "SHARED_WINDOW", "LOCAL_WINDOW", "PARAM_WINDOW", "WINDOW_SIZE",
           "LOCAL_WINDOW_BYTES", "AddressConfig"]
