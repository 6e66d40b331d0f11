import os
from pathlib import Path

import pytest

# One intra-op thread per test process: on a 2-core machine shared with data-loader workers and
# subprocesses, OpenMP threads that spin against each other make tiny models 10x slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# The ONNX export cache (srnpose.inference.backends.cache_dir) of this test run, not the user's: a fresh
# folder per run, shared by the run's subprocesses.
if "SRNPOSE_CACHE_DIR" not in os.environ:
    import tempfile

    os.environ["SRNPOSE_CACHE_DIR"] = tempfile.mkdtemp(prefix="srnpose-test-cache-")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def pytest_configure(config):
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA
