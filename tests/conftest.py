"""Shared test set-up: one thread per test and fixed seeds.

The tests use tiny models, where thread start-up and contention cost more than
they give (measured: 36 s with 2 threads vs 4 s with 1 for the nets tests on a
busy 2-core machine).
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
