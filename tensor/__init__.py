"""tensor: a small lazy tensor library on hwdrv's raw queues.

    from tensor import Tensor, dtypes
    a = Tensor([[1.0, 2.0], [3.0, 4.0]])          # default device: HWDRV_DEVICE, a GPU, or the mock
    b = (a.exp() + 1).softmax(axis=-1) @ a.T
    print(b.numpy())

Realizing a tensor schedules its graph into fused kernels (``schedule.py``), lowers each to
IR (``lower.py``, ``ir.py``), renders PTX (``render/ptx.py``), compiles it with the device's
compiler and launches it through hwdrv queues (``runtime.py``). ``TENSOR_DEBUG=1`` prints
each launch; ``=2`` also the IR and PTX."""
from .device import close_all, default_device, runtime
from .dtype import DType, dtypes
from .tensor import Tensor, where

__all__ = ["Tensor", "DType", "dtypes", "where", "runtime", "default_device", "close_all"]
