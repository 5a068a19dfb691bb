"""utils.seed: one seed fixes python, numpy and torch; RNG state survives a weights-only checkpoint."""
import io
import os
import random

import numpy as np
import pytest
import torch

from utils.seed import rng_state, seed_everything, set_rng_state


def draws() -> tuple:
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_one_seed_fixes_every_generator_and_numpy_takes_it_modulo_2_to_the_32():
    seed_everything(7)
    first = draws()
    seed_everything(7)
    assert draws() == first
    seed_everything(8)
    assert all(a != b for a, b in zip(draws(), first))
    seed_everything(2**32 + 7)  # numpy's seed must fit 32 bits; python and torch take it whole
    assert draws()[1] == first[1]


@pytest.fixture
def restore_determinism(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
              torch.backends.cudnn.benchmark)
    yield
    torch.use_deterministic_algorithms(before[0], warn_only=before[1])
    torch.backends.cudnn.benchmark = before[2]


def test_deterministic_asks_torch_for_deterministic_kernels_only_when_told(restore_determinism):
    torch.backends.cudnn.benchmark = True
    seed_everything(1)
    assert not torch.are_deterministic_algorithms_enabled() and "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    seed_everything(1, deterministic=True)
    assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8" and torch.backends.cudnn.benchmark is False


def test_a_saved_rng_state_replays_the_same_draws_after_a_weights_only_load():
    seed_everything(3)
    random.gauss(0, 1)  # python keeps a second gaussian: part of its state
    np.random.standard_normal()
    buffer = io.BytesIO()
    torch.save(rng_state(), buffer)
    expected = (*draws(), random.gauss(0, 1), float(np.random.standard_normal()))
    seed_everything(99)
    buffer.seek(0)
    set_rng_state(torch.load(buffer, weights_only=True))
    assert (*draws(), random.gauss(0, 1), float(np.random.standard_normal())) == expected
