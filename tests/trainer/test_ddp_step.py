"""The Trainer's DDP glue inside one process: a one-member gloo group stands in for the job (the two-process
runs are in test_ddp.py, `slow`), and a communication hook counts DDP's gradient all-reduces."""
from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from helpers import toy_trainer
from utils.dist_info import DistInfo


@pytest.fixture
def ddp_trainer(tmp_path):
    """A toy Trainer that sees itself as rank 0 of 2 (so it wraps DDP), over a one-member group."""
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'group'}", rank=0, world_size=1)
    try:
        def make(**cfg):
            trainer = toy_trainer(**cfg)
            trainer.dist = DistInfo(rank=0, world_size=2)
            trainer.net = trainer._wrap()
            return trainer
        yield make
    finally:
        dist.destroy_process_group()


def count_all_reduces(net: DistributedDataParallel) -> list[int]:
    calls: list[int] = []

    def hook(state, bucket):  # one member: the bucket is already the sum
        calls.append(bucket.index())
        future = torch.futures.Future()
        future.set_result(bucket.buffer())
        return future

    net.register_comm_hook(None, hook)
    return calls


def test_on_a_cpu_the_step_calls_ddp_over_the_model_without_device_ids(ddp_trainer):
    trainer = ddp_trainer()
    assert isinstance(trainer.net, DistributedDataParallel) and trainer.net.module is trainer.model
    assert trainer.net.device_ids is None  # a CPU module: DDP refuses device ids for it


def test_accumulated_batches_are_all_reduced_once_per_update(ddp_trainer):
    trainer = ddp_trainer(accumulate_steps=2)
    calls = count_all_reduces(trainer.net)
    batches = [(images, targets) for images, targets, _ in trainer.train_loader]
    trainer.train_step(*batches[0], 0, update=False)
    assert calls == [] and trainer.global_step == 0  # no_sync: forward and backward both inside it
    trainer.train_step(*batches[1], 1, update=True)
    assert calls == [0] and trainer.global_step == 1  # the toy model's gradients fit in one bucket
    plain = toy_trainer(accumulate_steps=2)
    plain.train_step(*batches[0], 0, update=False)
    plain.train_step(*batches[1], 1, update=True)
    for a, b in zip(trainer.model.parameters(), plain.model.parameters()):
        torch.testing.assert_close(a, b)  # the deferred sync adds up the same gradients
