"""Generator of hwdrv/amd/gen/cwsr.py: the gfx11 context-save (CWSR) area layout.

Three pinned sources, read by the generator (nothing is retyped):

- ``cwsr_trap_handler_gfx10.asm`` (Linux 6.1.192), preprocessed with ``cpp -P
  -DASIC_FAMILY=CHIP_PLUM_BONITO`` (gfx11, as its header comment says to build it): the per-wave
  save record the trap handler writes — the order of its areas (from the size sums before each
  area's stores), the SGPR and HWREG area sizes, the HWREG slot order (which value each
  ``write_hwreg_to_mem`` stores, tracked through the moves/getregs that fill its operand), the
  TTMP block's offset and lanes, the bytes of one VGPR row per wave size and the SGPRs saved.
  (The handler sizes its VGPR/LDS areas from GPR_ALLOC/LDS_ALLOC, which it does not save; a
  reader sizes them from the control stack's COMPUTE_RELAUNCH words, as ROCdbgapi does.)
- ``gc_11_0_0_sh_mask.h`` (Linux 6.1.192): COMPUTE_RELAUNCH's IS_EVENT / IS_STATE / PAYLOAD
  fields (the control stack holds COMPUTE_RELAUNCH words written by the CP).
- ROCdbgapi ``src/architecture.cpp``: the payload fields of the gfx10/gfx11 COMPUTE_RELAUNCH
  wave and state words, the control-stack words to skip, the VGPR and LDS granules, and where
  the workgroup ids / wave-in-group live among the saved TTMPs. Its HWREG slot numbers are
  checked against the trap handler's order (two independent sources must agree).
- Linux 6.12.118 (the debugger ioctl's era): its trap handler must give the same facts as 6.1's;
  ``kfd_mqd_manager_v11.c``'s get_wave_state must copy ``header.wave_state`` from the MQD; and
  ``kfd_queue.c``'s ``kfd_queue_ctx_save_restore_size`` is compiled and run by gcc for a table
  of gfx11 targets and CU counts (the sizes CREATE_QUEUE validates the CWSR area against).
"""
from __future__ import annotations

import ast
import hashlib
import os
import re
import subprocess

from . import cc, pins
from .manifest import REPOS

ASM = "drivers/gpu/drm/amd/amdkfd/cwsr_trap_handler_gfx10.asm"
SH_MASK = "drivers/gpu/drm/amd/include/asic_reg/gc/gc_11_0_0_sh_mask.h"
ARCH = "src/architecture.cpp"
MQD_V11 = "drivers/gpu/drm/amd/amdkfd/kfd_mqd_manager_v11.c"
KFD_QUEUE = "drivers/gpu/drm/amd/amdkfd/kfd_queue.c"
#: gfx11 targets (gfx_target_version) and CU counts the KFD queue-size table is evaluated for
QUEUE_SIZE_GFX = (110000, 110001, 110002, 110003, 110500, 110501, 110502, 110503)
QUEUE_SIZE_CUS = (2, 8, 12, 16, 20, 28, 32, 40, 48, 54, 60, 84, 96)
ASIC = "CHIP_PLUM_BONITO"          # the trap handler's gfx11 build (its header comment)
#: trap-handler operand names of the saved values -> SQ_WAVE_* register names
_SAVED = {"s_save_m0": "M0", "s_save_pc_lo": "PC_LO", "s_save_pc_hi": "PC_HI", "s_save_exec_lo": "EXEC_LO",
          "s_save_exec_hi": "EXEC_HI", "s_save_status": "STATUS", "s_save_xnack_mask": "XNACK_MASK"}
_HWREG = {"HW_REG_TRAPSTS": "TRAPSTS", "HW_REG_MODE": "MODE", "HW_REG_SHADER_FLAT_SCRATCH_LO": "FLAT_SCRATCH_LO",
          "HW_REG_SHADER_FLAT_SCRATCH_HI": "FLAT_SCRATCH_HI"}


class GenError(Exception):
    """A pinned source does not have the shape this generator reads."""


def _files(src: str) -> list[tuple[str, str, str]]:
    lin, dbg, new = REPOS["linux61"].dir, REPOS["rocdbgapi"].dir, REPOS["linux612"].dir
    return [(lin, ASM, os.path.join(src, lin, ASM)), (lin, SH_MASK, os.path.join(src, lin, SH_MASK)),
            (dbg, ARCH, os.path.join(src, dbg, ARCH)), (new, ASM, os.path.join(src, new, ASM)),
            (new, MQD_V11, os.path.join(src, new, MQD_V11)), (new, KFD_QUEUE, os.path.join(src, new, KFD_QUEUE))]


def source_paths(src: str) -> list[str]:
    return [f for _, _, f in _files(src)]


def _num(expr: str) -> int:
    """An integer constant expression of the asm ("(2+7)", "128*4", "0x40"): + - * << only."""
    def ev(n):
        if isinstance(n, ast.Expression):
            return ev(n.body)
        if isinstance(n, ast.Constant) and isinstance(n.value, int):
            return n.value
        if isinstance(n, ast.BinOp):
            ops = {ast.Add: int.__add__, ast.Sub: int.__sub__, ast.Mult: int.__mul__, ast.LShift: int.__lshift__}
            if type(n.op) in ops:
                return ops[type(n.op)](ev(n.left), ev(n.right))
        raise GenError(f"not a constant expression: {expr!r}")
    return ev(ast.parse(expr.strip(), mode="eval"))


def _need(pattern: str, text: str, what: str, flags: int = 0) -> re.Match:
    m = re.search(pattern, text, flags)
    if m is None:
        raise GenError(f"{what}: pattern {pattern!r} not found")
    return m


def _asm_facts(path: str) -> dict:
    pp = subprocess.run(["cpp", "-P", f"-DASIC_FAMILY={ASIC}", path], check=True, capture_output=True,
                        text=True).stdout
    lines = [ln.split("//")[0].strip() for ln in pp.splitlines()]
    text = "\n".join(lines)
    f: dict = {}
    f["SGPR_AREA_BYTES"] = _num(_need(r"function get_sgpr_size_bytes\s+return\s+([^\n]+)", text, "sgpr size").group(1))
    f["HWREG_AREA_BYTES"] = _num(_need(r"function get_hwreg_size_bytes\s+return\s+([^\n]+)", text,
                                       "hwreg size").group(1))
    f["SGPRS_SAVED"] = _num(_need(r"^var s_sgpr_save_num\s*=\s*(\S+)", text, "sgpr count", re.M).group(1))
    # area order: the sizes summed into s_save_mem_offset before each area is written
    def summed(label_re: str) -> list[str]:
        seg = _need(label_re + r"(.*?)s_mov_b32\s+s_save_buf_rsrc2,\s*0x1000000", text, label_re, re.S).group(1)
        return re.findall(r"get_(vgpr|svgpr|sgpr|hwreg)_size_bytes", seg)
    before = {"SGPR": summed(r"s_mov_b32\s+exec_lo,\s*0xFFFFFFFF\s*(?=get_vgpr_size_bytes\(s_save_mem_offset)"),
              "HWREG": summed(r"L_SAVE_HWREG:"), "LDS": summed(r"L_SAVE_LDS_NORMAL:")}
    order = ["VGPR", "SVGPR"]
    for area in sorted(before, key=lambda a: len(before[a])):
        if [x.upper() for x in before[area]] != order:
            raise GenError(f"the {area} area follows {before[area]}, not {order}")
        order.append(area)
    f["AREA_ORDER"] = tuple(order)
    aliases = dict(re.findall(r"^var (\w+)\s*=\s*(\w+)$", text, re.M))
    # HWREG slots: what each write_hwreg_to_mem stores, in order
    seg = _need(r"L_SAVE_HWREG:(.*?)buffer_store_dword\s+v2", text, "hwreg stores", re.S).group(1)
    holds: dict[str, str] = {}
    slots: list[str] = []
    for ln in seg.splitlines():
        m = re.match(r"s_getreg_b32\s+(\w+),\s*hwreg\((\w+)\)$", ln)
        if m:
            holds[m.group(1)] = _HWREG[aliases.get(m.group(2), m.group(2))]
            continue
        m = re.match(r"s_(?:andn2|and|mov)_b32\s+(\w+),\s*(\w+)", ln)
        if m and m.group(2) in _SAVED:
            holds[m.group(1)] = _SAVED[m.group(2)]
            continue
        m = re.match(r"write_hwreg_to_mem\((\w+),", ln)
        if m:
            name = holds.get(m.group(1)) or _SAVED.get(m.group(1))
            if name is None:
                raise GenError(f"write_hwreg_to_mem({m.group(1)}): cannot tell which register it holds")
            slots.append(name)
    f["HWREG_SLOTS"] = tuple(slots)
    # TTMPs: lanes of v0 (lane index == ttmp number) stored at inst_offset past the HWREG area start
    f["TTMP_OFFSET"] = _num(_need(r"global_store_dword_addtid\s+v0,\s*\[s_save_ttmps_lo,\s*s_save_ttmps_hi\]\s+"
                                  r"inst_offset:(\S+)", text, "ttmp store").group(1))
    lanes = [(int(t), _num(lane)) for t, lane in re.findall(r"v_writelane_b32\s+v0,\s*ttmp(\d+),\s*(\S+)", text)]
    if not lanes or any(t != lane for t, lane in lanes):
        raise GenError(f"ttmp lanes {lanes}: expected ttmpN in lane N")
    f["TTMPS_SAVED"] = tuple(t for t, _ in lanes)
    # VGPR store granule: lanes x 4 bytes per VGPR row (offset:128 / offset:256)
    f["VGPR_ROW_BYTES_W32"] = _num(_need(r"L_SAVE_4VGPR_WAVE32:.*?offset:(\d+)\n", text, "w32 vgpr row", re.S).group(1))
    f["VGPR_ROW_BYTES_W64"] = _num(_need(r"L_SAVE_4VGPR_WAVE64:.*?offset:(\d+)\n", text, "w64 vgpr row", re.S).group(1))
    return f


def _relaunch_fields(path: str) -> dict:
    text = open(path).read()
    out = {}
    for name in ("PAYLOAD", "IS_EVENT", "IS_STATE"):
        m = _need(rf"#define COMPUTE_RELAUNCH__{name}__SHIFT\s+(0x[0-9a-fA-F]+)", text, name)
        k = _need(rf"#define COMPUTE_RELAUNCH__{name}_MASK\s+(0x[0-9a-fA-F]+)L", text, name)
        out[name] = (int(m.group(1), 16), int(k.group(1), 16))
    return out


def _class_body(text: str, name: str) -> str:
    m = _need(rf"\nclass {name}\b.*?\n\{{(.*?)\n\}};", text, f"class {name}", re.S)
    return m.group(1)


def _dbgapi_facts(path: str) -> dict:
    text = open(path).read()
    f: dict = {}
    fields: dict[str, tuple[int, int]] = {}
    for cls in ("gfx10_architecture_t", "gfx11_architecture_t"):          # gfx11 overrides gfx10
        for word, name, lo, hi in re.findall(r"compute_relaunch_(wave|state)_payload_(\w+)\s*\(\s*uint32_t \w+\s*\)"
                                             r"\s*\{\s*return utils::bit_extract \(\w+, (\d+), (\d+)\);",
                                             _class_body(text, cls)):
            fields[f"{word.upper()}_{name.upper()}"] = (int(hi), int(lo))
    f["RELAUNCH_FIELDS"] = dict(sorted(fields.items()))
    it = _need(r"gfx10_architecture_t::control_stack_iterate \((.*?)\n\}", text, "gfx10 control_stack_iterate",
               re.S).group(1)
    f["CONTROL_STACK_SKIP_WORDS"] = int(_need(r"for \(size_t i = (\d+);", it, "control stack skip").group(1))
    if "state1 = control_stack[++i]" not in it:
        raise GenError("gfx10 control_stack_iterate: the second state word is not read")
    vg = _need(r"gfx10_architecture_t::cwsr_record_t::vgpr_count \(\) const\s*\{(.*?)\n\}", text, "vgpr_count",
               re.S).group(1)
    m = _need(r"\(1 \+ utils::bit_extract \(m_compute_relaunch_state, (\d+), (\d+)\)\)\s*\*\s*\(utils::bit_extract "
              r"\(m_compute_relaunch_state, (\d+), (\d+)\) \? (\d+) : (\d+)\)", vg, "vgpr granule")
    if (int(m.group(3)), int(m.group(4))) != fields["STATE_W32_EN"][::-1]:
        raise GenError("vgpr_count's wave32 test reads another field than compute_relaunch_state_payload_w32_en")
    f["STATE_VGPR_BLOCKS"] = (int(m.group(2)), int(m.group(1)))
    f["VGPR_GRANULE_W32"], f["VGPR_GRANULE_W64"] = int(m.group(5)), int(m.group(6))
    f["SHARED_VGPR_GRANULE"] = int(_need(r"shared_vgpr_count \(\) const\s*\{.*?return shared_vgpr_blocks \* (\d+);",
                                         text, "shared vgpr granule", re.S).group(1))
    f["SGPR_COUNT"] = int(_need(r"gfx10_architecture_t::cwsr_record_t::sgpr_count \(\) const\s*\{\s*return (\d+);",
                                text, "sgpr_count").group(1))
    lds = _need(r"gfx10_architecture_t::cwsr_record_t::lds_size \(\) const\s*\{(.*?)\n\}", text, "lds_size",
                re.S).group(1)
    f["LDS_GRANULE_DWORDS"] = int(_need(r"\* (\d+) \* sizeof \(uint32_t\)", lds, "lds granule").group(1))
    # hwreg slots ROCdbgapi reads (gfx9 base, gfx10 renames), checked against the trap handler
    g9 = _need(r"gfx9_architecture_t::cwsr_record_t::register_address \((.*?)\n\}", text, "gfx9 register_address",
               re.S).group(1)
    g10 = _need(r"gfx10_architecture_t::cwsr_record_t::register_address \((.*?)\n\}", text,
                "gfx10 register_address", re.S).group(1)
    slot = {}
    for body in (re.sub(r"/\*.*?\*/", "", b, flags=re.S) for b in (g9, g10)):
        for cases, n in re.findall(r"((?:case amdgpu_regnum_t::\w+:\s*)+)regnum = amdgpu_regnum_t::first_hwreg \+ (\d+);",
                                   body):
            for c in re.findall(r"amdgpu_regnum_t::(\w+)", cases):
                slot[c] = int(n)
    f["DBGAPI_HWREG_SLOTS"] = slot
    f["DBGAPI_HWREG_COUNT"] = int(_need(r"size_t hwreg_count = (\d+);", g9, "hwreg count").group(1))
    f["DBGAPI_TTMP_COUNT"] = int(_need(r"size_t ttmp_count = (\d+);", g9, "ttmp count").group(1))
    f["TTMP_GROUP_IDS"] = int(_need(r"group_ids_address\s*=\s*register_address \(amdgpu_regnum_t::ttmp(\d+)\)", text,
                                    "group ids ttmp").group(1))
    f["TTMP_WAVE_IN_GROUP"] = int(_need(r"ttmp11_address\s*=\s*register_address \(amdgpu_regnum_t::ttmp(\d+)\)",
                                        text, "wave-in-group ttmp").group(1))
    m = _need(r"ttmp11_wave_in_group_mask = utils::bit_mask \((\d+), (\d+)\)", text, "wave-in-group mask")
    f["TTMP_WAVE_IN_GROUP_FIELD"] = (int(m.group(2)), int(m.group(1)))
    return f


def _header_written(path: str) -> None:
    """kfd_mqd_manager_v11.c's get_wave_state copies header.wave_state from the MQD (Linux >= 6.4)."""
    body = _need(r"static int get_wave_state\((.*?)\n\}", open(path).read(), "v11 get_wave_state", re.S).group(1)
    for line in ("header.wave_state.control_stack_size = *ctl_stack_used_size;",
                 "header.wave_state.wave_state_size = *save_area_used_size;",
                 "header.wave_state.wave_state_offset = m->cp_hqd_wg_state_offset;",
                 "header.wave_state.control_stack_offset = m->cp_hqd_cntl_stack_offset;",
                 "copy_to_user(ctl_stack, &header, sizeof(header.wave_state))"):
        if line not in body:
            raise GenError(f"kfd_mqd_manager_v11.c get_wave_state: {line!r} not found")


def _queue_sizes(path: str) -> dict:
    """kfd_queue.c's kfd_queue_ctx_save_restore_size, compiled by gcc with stand-in node structs and
    run for every (gfx target, CU count) of QUEUE_SIZE_GFX x QUEUE_SIZE_CUS (2 SIMDs per CU, 1 XCC)."""
    text = open(path).read()
    start = text.index("#define SGPR_SIZE_PER_CU")
    end = text.index("\n}\n", text.index("void kfd_queue_ctx_save_restore_size")) + 3
    prog = ["#include <stdio.h>", "#include <stdint.h>", "typedef uint32_t u32;", "#define PAGE_SIZE 4096",
            "#define ALIGN(x, a) (((x) + (a) - 1) / (a) * (a))", "#define min(a, b) ((a) < (b) ? (a) : (b))",
            "#define NUM_XCC(m) __builtin_popcount(m)",
            "struct kfd_node_properties { u32 gfx_target_version, simd_count, simd_per_cu, array_count,",
            "  simd_arrays_per_engine, lds_size_in_kb, ctl_stack_size, debug_memory_size, cwsr_size, eop_buffer_size; };",
            "struct kfd_node { u32 xcc_mask; };",
            "struct kfd_topology_device { struct kfd_node_properties node_props; struct kfd_node *gpu; };",
            text[start:end], "int main(void) {", "struct kfd_node g = { 1 };"]
    for v in QUEUE_SIZE_GFX:
        for cu in QUEUE_SIZE_CUS:
            prog += ["{ struct kfd_topology_device d = { { 0 }, &g };",
                     f"d.node_props.gfx_target_version = {v}; d.node_props.simd_count = {2 * cu};",
                     "d.node_props.simd_per_cu = 2; d.node_props.array_count = 12; d.node_props.simd_arrays_per_engine = 2;",
                     "d.node_props.lds_size_in_kb = 64; kfd_queue_ctx_save_restore_size(&d);",
                     f'printf("{v} {cu} %u %u %u %u\\n", d.node_props.ctl_stack_size, d.node_props.cwsr_size, '
                     "d.node_props.debug_memory_size, d.node_props.eop_buffer_size); }"]
    prog += ["return 0;", "}"]
    out = cc.compile_and_run("\n".join(prog) + "\n", [])
    table = {}
    for line in out.splitlines():
        v, cu, *vals = (int(x) for x in line.split())
        table[(v, cu)] = tuple(vals)
    return table


def _cross_check(a: dict, d: dict) -> None:
    """The trap handler's HWREG order against the slots ROCdbgapi reads."""
    want = {"m0": "M0", "pc": "PC_LO", "exec_lo": "EXEC_LO", "exec_hi": "EXEC_HI", "status": "STATUS",
            "trapsts": "TRAPSTS", "mode": "MODE", "flat_scratch": "FLAT_SCRATCH_LO", "xnack_mask_32": "XNACK_MASK"}
    for regnum, name in want.items():
        got = d["DBGAPI_HWREG_SLOTS"].get(regnum)
        if got is None or a["HWREG_SLOTS"][got] != name:
            raise GenError(f"ROCdbgapi reads {regnum} from hwreg slot {got}; the trap handler stores "
                           f"{a['HWREG_SLOTS'][got] if got is not None else '?'} there")
    if d["DBGAPI_HWREG_COUNT"] * 4 != a["TTMP_OFFSET"]:
        raise GenError(f"ROCdbgapi's {d['DBGAPI_HWREG_COUNT']} hwreg dwords != the handler's ttmp offset "
                       f"{a['TTMP_OFFSET']:#x}")
    if a["TTMP_OFFSET"] + 4 * d["DBGAPI_TTMP_COUNT"] != a["HWREG_AREA_BYTES"]:
        raise GenError("hwreg + ttmp blocks do not fill the handler's HWREG area")
    if d["SGPR_COUNT"] * 4 != a["SGPR_AREA_BYTES"]:
        raise GenError("ROCdbgapi's SGPR count does not fill the handler's SGPR area")


def generate(src: str) -> str:
    files = _files(src)
    bad = pins.mismatches(files)
    if bad:
        raise GenError("; ".join(bad))
    a = _asm_facts(files[0][2])
    if _asm_facts(files[3][2]) != a:
        raise GenError("the gfx11 trap handler of Linux 6.12 saves waves in another layout than 6.1's")
    rl = _relaunch_fields(files[1][2])
    d = _dbgapi_facts(files[2][2])
    _cross_check(a, d)
    _header_written(files[4][2])
    sizes = _queue_sizes(files[5][2])
    L = ['"""gfx11 context-save (CWSR) area layout: the per-wave record the KFD trap handler writes, the',
         "control stack's COMPUTE_RELAUNCH words and their payload fields.", "",
         "Generated by `python -m autogen generate cwsr` (autogen/cwsr.py); do not edit.", "Sources:"]
    for repo_dir, rel, full in files:
        r = next(r for r in REPOS.values() if r.dir == repo_dir)
        L.append(f"- {r.repo} {r.tag or r.commit} {rel} sha256 {hashlib.sha256(open(full, 'rb').read()).hexdigest()}")
    L += ['"""', "", "# trap handler (cpp -DASIC_FAMILY=" + ASIC + "): areas of one wave record, lowest address first"]
    for k in ("AREA_ORDER", "SGPR_AREA_BYTES", "HWREG_AREA_BYTES", "SGPRS_SAVED", "VGPR_ROW_BYTES_W32",
              "VGPR_ROW_BYTES_W64", "HWREG_SLOTS", "TTMP_OFFSET", "TTMPS_SAVED"):
        v = a[k]
        L.append(f"{k} = {v!r}" if not isinstance(v, int) or v < 16 else f"{k} = {v:#x}")
    L += ["", "# COMPUTE_RELAUNCH (gc_11_0_0_sh_mask.h): (shift, mask)"]
    for k, v in rl.items():
        L.append(f"COMPUTE_RELAUNCH_{k} = ({v[0]}, {v[1]:#x})")
    L += ["", "# ROCdbgapi (gfx10/gfx11 cwsr_record_t): payload fields (hi, lo) of the wave / state words"]
    L.append("RELAUNCH_FIELDS = {")
    for k, v in d["RELAUNCH_FIELDS"].items():
        L.append(f"    {k!r}: {v!r},")
    L.append("}")
    for k in ("STATE_VGPR_BLOCKS", "CONTROL_STACK_SKIP_WORDS", "VGPR_GRANULE_W32", "VGPR_GRANULE_W64", "SHARED_VGPR_GRANULE",
              "SGPR_COUNT", "LDS_GRANULE_DWORDS", "TTMP_GROUP_IDS", "TTMP_WAVE_IN_GROUP", "TTMP_WAVE_IN_GROUP_FIELD"):
        L.append(f"{k} = {d[k]!r}")
    L += ["", "# kfd_queue.c kfd_queue_ctx_save_restore_size (Linux 6.12, run by gcc): (gfx_target_version, CUs) ->",
          "# (ctl_stack_size, cwsr_size, debug_memory_size, eop_buffer_size), 2 SIMDs per CU, 1 XCC",
          "KFD_QUEUE_SIZES = {"]
    for k, v in sizes.items():
        L.append(f"    {k!r}: ({', '.join(f'{x:#x}' for x in v)}),")
    L += ["}", ""]
    return "\n".join(L)
