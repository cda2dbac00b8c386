"""The conformance suite once more on the mock with QMD chaining off (HWDRV_NV_QMD_CHAIN=0:
each launch after the first gets WAIT_FOR_IDLE and its own launch methods), so the path that
chaining normally hides is tested too."""
import pytest

import hwdrv
import hwdrv.nvidia.queue as nvq
from conformance_cases import *  # noqa: F401,F403 - the shared cases


@pytest.fixture(scope="module")
def dev_name():
    return "mock:nvidia"


@pytest.fixture(scope="module")
def dev(dev_name):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(nvq, "CHAIN_LAUNCHES", False)
        d = hwdrv.open_device(dev_name)
        yield d
        d.close()


def test_chaining_is_off_here(dev):
    """The fixture really changed the encoding: two launches, two launch-method sequences."""
    from hwdrv.provoke import sample
    p = sample(dev, "vecadd")
    buf = dev.alloc(256)
    q = dev.compute_queue()
    for _ in range(2):
        q.exec(p, grid=(1,), block=(32,), args=[buf, buf, buf, 0])
    from hwdrv.nvidia import pbdecode
    names = [m.name for m in pbdecode.decode(q.words)]
    assert names.count("WAIT_FOR_IDLE") == 1 and names.count("SEND_PCAS_A") == 2, names
