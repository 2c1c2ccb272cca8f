import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


def need(tool: str):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (run scripts/setup.sh)")
