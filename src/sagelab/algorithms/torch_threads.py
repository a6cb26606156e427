"""How many threads the PyTorch algorithms (NTM, DeepAR, Object2Vec) give torch.

Small networks on small batches lose to thread overhead: torch's OpenMP workers spin while they wait, and on a
machine whose cores other work also uses, two spinning threads can make a small job ten times slower than one.
So training and inference use one thread unless the work is big enough to pay for more; then every core.
The previous setting is restored on exit (tests train in-process).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def torch_threads(large: bool) -> Iterator[int]:
    import torch

    previous = torch.get_num_threads()
    wanted = (os.cpu_count() or 1) if large else 1
    torch.set_num_threads(wanted)
    try:
        yield wanted
    finally:
        torch.set_num_threads(previous)
