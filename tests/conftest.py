import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

if os.environ.get("PYTEST_XDIST_WORKER"):
    # One thread per xdist worker (and its child processes): torch's default of one thread per core
    # in every worker oversubscribes the machine.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)


def need(tool: str):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (run scripts/setup.sh)")
