"""Fuzzing: random bytes, truncations and byte flips of real cubins may only ever raise
ProgramError, from parsing and from linking what parsed."""
from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwdrv.errors import ProgramError
from hwdrv.nvidia.compiler import PtxasCompiler, find_ptxas
from hwdrv.nvidia.cubin import CubinImage
from hwdrv.nvidia.compiler import MockPtxCompiler

DATA = Path(__file__).parent / "data" / "nvidia"
CODE_VA = 0x7F00_0000_0000
GLOBAL_VA = 0x7E00_0000_0000
FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def _seeds() -> list[bytes]:
    # committed ptxas output and the mock compiler's cubins of the same PTX (no ptxas needed)
    seeds = [p.read_bytes() for p in sorted(DATA.glob("*.cubin"))]
    seeds += [MockPtxCompiler().compile((DATA / f"{n}.ptx").read_text())
              for n in ("two_kernels", "globals", "big_params", "launch_bounds", "local_array")]
    if find_ptxas() is not None:
        comp = PtxasCompiler("sm_90")
        for name in ("two_kernels", "globals", "big_params", "launch_bounds"):
            seeds.append(comp.compile((DATA / f"{name}.ptx").read_text()))
    return seeds


SEEDS = _seeds()


def exercise(data: bytes) -> None:
    """Parse and, if that worked, link and query everything; only ProgramError may escape."""
    try:
        img = CubinImage(data)
    except ProgramError:
        return
    for name, k in img.kernels.items():
        assert img.kernel(name) is k
        for n in k.constant_banks:
            img.constant_bank(name, n)
    try:
        img.link(CODE_VA, GLOBAL_VA)
    except ProgramError:
        return
    for name in img.kernels:
        img.text_address(name)


def test_seeds_parse_and_link():
    for seed in SEEDS:
        img = CubinImage(seed)
        assert img.kernels
        img.link(CODE_VA, GLOBAL_VA)


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes(data):
    exercise(data)


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes_behind_an_elf_magic(data):
    exercise(b"\x7fELF\x02\x01\x01\x41\x08" + data)


@FUZZ
@given(st.data())
def test_truncations(data):
    seed = data.draw(st.sampled_from(SEEDS))
    exercise(seed[:data.draw(st.integers(0, len(seed) - 1))])


@FUZZ
@given(st.data())
def test_byte_flips(data):
    seed = bytearray(data.draw(st.sampled_from(SEEDS)))
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(seed) - 1))
        seed[at] = data.draw(st.integers(0, 255))
    exercise(bytes(seed))


@FUZZ
@given(st.data())
def test_header_and_table_flips(data):
    """Flips aimed at the ELF header and the section header table, where structure lives."""
    seed = bytearray(data.draw(st.sampled_from(SEEDS)))
    shoff = int.from_bytes(seed[40:48], "little")
    region = data.draw(st.sampled_from([(0, 64), (shoff, len(seed))]))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(region[0], min(region[1], len(seed)) - 1))
        seed[at] = data.draw(st.integers(0, 255))
    exercise(bytes(seed))


@FUZZ
@given(st.binary(max_size=256))
def test_cubin_of_random_bytes_only_raises_program_error(data):
    for blob in (data, b"\x7fELF" + data):
        try:
            CubinImage(blob)
        except ProgramError:
            pass


PTX_SEEDS = [(DATA / f"{n}.ptx").read_bytes() for n in ("vector_add", "globals", "local_array", "two_kernels",
                                                         "block_reduce", "reqntid")]


@FUZZ
@given(st.data())
def test_mock_compiler_on_mangled_ptx(data):
    """The mock compiler on PTX with bytes flipped, cut or spliced: a ProgramError or a cubin the
    loader reads and links (never another exception)."""
    src = bytearray(data.draw(st.sampled_from(PTX_SEEDS)))
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(src) - 1))
        how = data.draw(st.sampled_from(["flip", "cut", "dup"]))
        if how == "flip":
            src[at] = data.draw(st.sampled_from(b"{}();,.[]<>=%0123456789 \n\0\xff"))
        elif how == "cut":
            del src[at:at + data.draw(st.integers(1, 64))]
        else:
            src[at:at] = src[at:at + data.draw(st.integers(1, 64))]
    try:
        binary = MockPtxCompiler().compile(bytes(src))
    except ProgramError:
        return
    exercise(binary)
    assert CubinImage(binary).kernels
