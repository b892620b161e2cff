"""Dense torch CPU peers for the benchmark harness (torch imported lazily; optional)."""
from __future__ import annotations


def torch_version():
    """The installed torch version, or None."""
    try:
        import torch
    except Exception:
        return None
    return torch.__version__


def dense_conv3x3(weight, x, threads=1):
    """A callable running torch's float32 channels-last conv2d (padding 1) of ``x`` (B, C, H, W)
    with ``weight``, on ``threads`` threads; None when torch is not installed."""
    try:
        import torch
    except Exception:
        return None
    import numpy as np
    torch.set_num_threads(threads)
    tw = torch.from_numpy(np.ascontiguousarray(weight, dtype=np.float32)).contiguous(memory_format=torch.channels_last)
    tx = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).contiguous(memory_format=torch.channels_last)

    def run():
        with torch.no_grad():
            return torch.nn.functional.conv2d(tx, tw, padding=1)
    return run
