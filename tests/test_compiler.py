"""PtxasCompiler (search order, errors, cache, options) and MockPtxCompiler."""
from __future__ import annotations

import stat
import importlib
import sys
from pathlib import Path

import pytest

from hwdrv.errors import ProgramError
from hwdrv.nvidia.compiler import MockPtxCompiler, PtxasCompiler, find_ptxas
from hwdrv.nvidia.cubin import CubinImage

DATA = Path(__file__).parent / "data" / "nvidia"
VECTOR_ADD = (DATA / "vector_add.ptx").read_text()


def fake_ptxas(path: Path, body: str = "") -> Path:
    """A shell script standing in for ptxas: writes its arguments to the -o file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + (body or
                    'out=""; prev=""; for a in "$@"; do [ "$prev" = "-o" ] && out="$a"; '
                    'prev="$a"; done; echo "$@" > "$out"\n'))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture()
def clean_env(monkeypatch, tmp_path):
    """No ptxas anywhere: empty PATH, no CUDA_HOME/HWDRV_PTXAS, no `nvidia` package."""
    monkeypatch.delenv("HWDRV_PTXAS", raising=False)
    monkeypatch.delenv("CUDA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-path"))
    monkeypatch.setattr(sys, "path", [p for p in sys.path if not Path(p, "nvidia").is_dir()])
    sys.modules.pop("nvidia", None)
    return tmp_path


def test_search_order(clean_env, monkeypatch):
    tmp = clean_env
    assert find_ptxas() is None
    # the wheel layout: <site-packages>/nvidia/cu13/bin/ptxas, a namespace package
    wheel = fake_ptxas(tmp / "site" / "nvidia" / "cu13" / "bin" / "ptxas")
    # not syspath_prepend: its undo would restore the path list clean_env stripped, for good
    monkeypatch.setattr(sys, "path", [str(tmp / "site"), *sys.path])
    importlib.invalidate_caches()
    sys.modules.pop("nvidia", None)
    assert find_ptxas() == str(wheel)
    cuda = fake_ptxas(tmp / "cuda" / "bin" / "ptxas")
    monkeypatch.setenv("CUDA_HOME", str(tmp / "cuda"))
    assert find_ptxas() == str(cuda)
    on_path = fake_ptxas(tmp / "pathdir" / "ptxas")
    monkeypatch.setenv("PATH", str(tmp / "pathdir"))
    assert find_ptxas() == str(on_path)
    forced = fake_ptxas(tmp / "forced" / "my-ptxas")
    monkeypatch.setenv("HWDRV_PTXAS", str(forced))
    assert find_ptxas() == str(forced)
    monkeypatch.setenv("HWDRV_PTXAS", str(tmp / "missing"))
    with pytest.raises(ProgramError, match="HWDRV_PTXAS"):
        find_ptxas()


def test_missing_ptxas_says_how_to_get_one(clean_env):
    with pytest.raises(ProgramError, match="nvidia-cuda-nvcc.*HWDRV_PTXAS"):
        PtxasCompiler().compile(VECTOR_ADD)


def test_arguments_options_and_cache(clean_env):
    ptxas = fake_ptxas(clean_env / "bin" / "ptxas")
    comp = PtxasCompiler("sm_90a", opt_level=1, options=("--maxrregcount=32",), ptxas=str(ptxas))
    out = comp.compile(VECTOR_ADD).decode().split()
    assert out[:3] == ["-arch=sm_90a", "-O1", "--maxrregcount=32"]
    assert out[3] == "-o" and out[-1].endswith("kernel.ptx")
    assert comp.compile(VECTOR_ADD.encode()) == comp.compile(VECTOR_ADD)
    assert comp.compiles == 1
    comp.compile(VECTOR_ADD + "\n")
    assert comp.compiles == 2
    assert PtxasCompiler(ptxas=str(ptxas)).compile(VECTOR_ADD).split()[:2] == \
        [b"-arch=sm_90", b"-O3"]


def test_cache_is_bounded(clean_env):
    ptxas = fake_ptxas(clean_env / "bin" / "ptxas")
    comp = PtxasCompiler(ptxas=str(ptxas), cache_entries=2)
    for i in range(3):
        comp.compile(f"// {i}\n" + VECTOR_ADD)
    comp.compile("// 0\n" + VECTOR_ADD)       # evicted: compiled again
    assert comp.compiles == 4


def test_timeout(clean_env):
    ptxas = fake_ptxas(clean_env / "bin" / "ptxas", "while :; do :; done\n")
    with pytest.raises(ProgramError, match="did not finish within 0.5 s"):
        PtxasCompiler(ptxas=str(ptxas), timeout=0.5).compile(VECTOR_ADD)


def test_no_output_is_an_error(clean_env):
    ptxas = fake_ptxas(clean_env / "bin" / "ptxas", "exit 0\n")
    with pytest.raises(ProgramError, match="wrote no cubin"):
        PtxasCompiler(ptxas=str(ptxas)).compile(VECTOR_ADD)


@pytest.mark.parametrize("kwargs", [{"arch": "gfx1100"}, {"arch": "sm90"}, {"opt_level": 7}])
def test_bad_settings(kwargs):
    with pytest.raises(ProgramError):
        PtxasCompiler(**kwargs)


def test_source_must_be_text():
    with pytest.raises(ProgramError, match="str or bytes"):
        MockPtxCompiler().compile(42)  # type: ignore[arg-type]


@pytest.fixture()
def real():
    if find_ptxas() is None:
        pytest.skip("no ptxas found (HWDRV_PTXAS, PATH, $CUDA_HOME/bin, nvidia-cuda-nvcc wheel)")
    return PtxasCompiler("sm_90")


def test_real_ptxas_makes_a_cubin(real):
    img = CubinImage(real.compile(VECTOR_ADD))
    assert img.sm == 90 and list(img.kernels) == ["vector_add"]


def test_real_ptxas_error_keeps_line_numbers(real):
    lines = VECTOR_ADD.splitlines()
    bad_line = next(i for i, l in enumerate(lines) if "add.f32" in l or "add.rn.f32" in l)
    lines[bad_line] = "\tbogus.instruction %f1;"
    with pytest.raises(ProgramError) as e:
        real.compile("\n".join(lines))
    msg = str(e.value)
    assert f"kernel.ptx, line {bad_line + 1}" in msg and "ptxas" in msg
    assert "/tmp" not in msg.split("failed", 1)[1]


def test_real_ptxas_sm90a(real):
    img = CubinImage(PtxasCompiler("sm_90a").compile(VECTOR_ADD.replace(".target sm_90",
                                                                         ".target sm_90a")))
    assert img.sm == 90


def test_mock_compiler_returns_a_cubin_with_ptx_as_code():
    img = CubinImage(MockPtxCompiler().compile(VECTOR_ADD))
    assert img.sm == 90 and list(img.kernels) == ["vector_add"]
    assert img.section(".text.vector_add").data == VECTOR_ADD.encode() + b"\0"


@pytest.mark.parametrize("text,missing", [
    (".target sm_90\n.entry k {}", ".version"),
    (".version 8.0\n.entry k {}", ".target"),
    (".version 8.0\n.target sm_90\n.func f {}", ".entry"),
    ("// .version 8.0\n.target sm_90\n.entry k {}", ".version"),
])
def test_mock_compiler_validates(text, missing):
    with pytest.raises(ProgramError, match=f"no .*{missing}"):
        MockPtxCompiler().compile(text)
