import pytest
import torch
from torch import nn

from model.classifier import MaskClassifier
from trainer.trainer import Trainer
from utils.config import OptimizerConfig, SchedulerConfig, TrainerConfig
from utils.run import read_metrics


def toy_trainer(**cfg):
    torch.manual_seed(0)
    cfg.setdefault("amp", "none")  # exact fp32 arithmetic whatever the CPU
    model = MaskClassifier(nn.Flatten(), nn.Linear(12, 18))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    return Trainer(model=model, criterion=nn.CrossEntropyLoss(), optimizer=optimizer, scheduler=None,
                   train_loader=None, val_loader=None, cfg=TrainerConfig(device="cpu", **cfg),
                   device=torch.device("cpu"), metadata={})


def test_gradient_accumulation_equals_one_big_batch():
    x, y = torch.randn(8, 3, 2, 2), torch.randint(0, 18, (8,))
    big = toy_trainer()
    big.train_step(x, y, 0)
    acc = toy_trainer(accumulate_steps=2)
    acc.train_step(x[:4], y[:4], 0, update=False)
    assert acc.global_step == 0
    acc.train_step(x[4:], y[4:], 1, update=True)
    assert acc.global_step == 1
    for a, b in zip(big.model.parameters(), acc.model.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_gradient_clipping_bounds_the_update():
    x, y = torch.randn(8, 3, 2, 2) * 10, torch.randint(0, 18, (8,))
    free, clipped = toy_trainer(), toy_trainer(grad_clip=0.01)
    before = torch.cat([p.detach().flatten().clone() for p in free.model.parameters()])
    free.train_step(x, y, 0)
    clipped.train_step(x, y, 0)
    step_free = (torch.cat([p.detach().flatten() for p in free.model.parameters()]) - before).norm()
    step_clip = (torch.cat([p.detach().flatten() for p in clipped.model.parameters()]) - before).norm()
    assert step_clip <= 0.5 * 0.01 + 1e-6 < step_free


def test_ema_follows_the_weights_and_is_checkpointed(make_trainer, tmp_path):
    extra = {"trainer.ema.decay": 0.5, "trainer.ema.warmup": "false", "trainer.monitor": "'max ema_val_f1'"}
    trainer = make_trainer(**extra)
    head_w = trainer.model.head[-1].weight
    ema_w = trainer.ema.module.head[-1].weight
    before = ema_w.detach().clone()
    x, y = torch.randn(4, 3, 64, 48), torch.randint(0, 18, (4,))
    trainer.freeze.set_train_mode(trainer.model)
    trainer.train_step(x, y, 0)
    assert torch.allclose(ema_w, 0.5 * before + 0.5 * head_w.detach(), atol=1e-6)
    metrics = trainer.run_epoch()
    assert {"ema_val_f1", "ema_val_loss", "val_f1"} <= set(metrics)
    assert trainer.monitor.metric == "ema_val_f1" and trainer.monitor.best == metrics["ema_val_f1"]
    state = torch.load(tmp_path / "best.pth", weights_only=True)
    assert not torch.equal(state["ema"]["head.1.weight"], state["model"]["head.1.weight"])
    from predict.predictor import model_from_checkpoint

    model, _ = model_from_checkpoint(state, "best.pth")
    assert torch.equal(model.head[-1].weight, state["ema"]["head.1.weight"])  # inference uses the EMA


def test_ema_monitor_requires_ema():
    import pytest

    from utils.config import load_config
    from utils.errors import ConfigError

    with pytest.raises(ConfigError, match="needs trainer.ema"):
        load_config(None, ["trainer.monitor='max ema_val_f1'"])


def test_backbone_lr_scale_and_layer_decay():
    from model.classifier import build_model
    from trainer.optim import build_optimizer, build_scheduler
    from utils.config import ModelConfig, OptimizerConfig, SchedulerConfig

    model = build_model(ModelConfig(backbone="resnet18"))
    opt = build_optimizer(OptimizerConfig(lr=1e-3, backbone_lr_scale=0.1), model)
    head_ids = {id(p) for p in model.head.parameters()}
    lrs = {("head" if id(p) in head_ids else "backbone"): g["lr"] for g in opt.param_groups for p in g["params"]}
    assert lrs == {"head": 1e-3, "backbone": 1e-4}
    assert all(g["weight_decay"] == 0 for g in opt.param_groups for p in g["params"] if p.ndim == 1)
    sched = build_scheduler(SchedulerConfig(name="cosine"), opt, epochs=10, updates_per_epoch=5)
    sched.step_update(num_updates=25)  # halfway: every group keeps its ratio
    head_lr = next(g["lr"] for g in opt.param_groups if any(id(p) in head_ids for p in g["params"]))
    back_lr = next(g["lr"] for g in opt.param_groups if not any(id(p) in head_ids for p in g["params"]))
    assert back_lr / head_lr == pytest.approx(0.1)

    decayed = build_optimizer(OptimizerConfig(lr=1e-3, layer_decay=0.5), model)
    stem = next(g["lr"] for g in decayed.param_groups if any(p is model.backbone.conv1.weight for p in g["params"]))
    deep_w = model.backbone.layer4[1].conv2.weight
    deep = next(g["lr"] for g in decayed.param_groups if any(p is deep_w for p in g["params"]))
    assert stem < deep < 1e-3 + 1e-12


def test_optimizer_and_scheduler_by_name():
    from model.classifier import build_model
    from trainer.optim import build_optimizer, build_scheduler
    from utils.config import ModelConfig, OptimizerConfig, SchedulerConfig

    model = build_model(ModelConfig(backbone="resnet18"))
    assert type(build_optimizer(OptimizerConfig(name="sgd", lr=0.1), model)).__name__ == "SGD"
    assert "AdamW" in type(build_optimizer(OptimizerConfig(name="adamw"), model)).__name__
    opt = build_optimizer(OptimizerConfig(name="sgd", lr=0.1), model)
    step = build_scheduler(SchedulerConfig(name="step", decay_epochs=2, decay_rate=0.1), opt, 10, 4)
    step.step_update(num_updates=8)  # epoch 2 reached per update
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01)
    opt = build_optimizer(OptimizerConfig(name="sgd", lr=0.1), model)
    plateau = build_scheduler(SchedulerConfig(name="plateau", decay_rate=0.5), opt, 30, 4, "max")
    for epoch in range(1, 14):
        plateau.step(epoch, 0.5)  # never improves
    assert opt.param_groups[0]["lr"] < 0.1


def test_val_ratio_zero_trains_on_everyone(demo_data, tmp_path):
    import train
    from helpers import ROOT, tiny_overrides

    result = train.main(["--config", str(ROOT / "configs/demo.yaml"),
                         *tiny_overrides(demo_data, tmp_path, **{"data.val_ratio": 0, "trainer.epochs": 2})])
    rows = read_metrics(f"{result['run_dir']}/metrics.csv")
    assert [r["epoch"] for r in rows] == [1, 2] and "val_f1" not in rows[-1]
    best = torch.load(f"{result['run_dir']}/best.pth", weights_only=True)
    assert best["epoch"] == 2  # without validation the final model is the last epoch
    n_images = 7 * len(__import__("pandas").read_csv(demo_data / "train" / "train.csv"))
    assert f"{n_images} train / 0 val images" in open(f"{result['run_dir']}/train.log").read()


@pytest.mark.parametrize("layer_decay", [None, 0.75])
def test_no_weight_decay_parameters_get_none(layer_decay):
    from model.classifier import build_model
    from trainer.optim import build_optimizer, no_weight_decay_names
    from utils.config import ModelConfig, OptimizerConfig

    model = build_model(ModelConfig(backbone="vit_tiny_patch16_224"))
    exempt = no_weight_decay_names(model.backbone)
    assert {"pos_embed", "cls_token"} <= exempt
    optimizer = build_optimizer(OptimizerConfig(weight_decay=0.05, layer_decay=layer_decay), model)
    decay_of = {id(p): g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    names = dict(model.named_parameters())
    present = [f"backbone.{n}" for n in exempt if f"backbone.{n}" in names]
    assert len(present) >= 2 and all(decay_of[id(names[n])] == 0.0 for n in present)
    assert decay_of[id(names["backbone.blocks.0.attn.qkv.weight"])] == 0.05
    assert len(decay_of) == len(names)


class TwoParts(torch.nn.Module):
    """The smallest model with the classifier's two parts (a backbone with a norm layer, a head)."""

    def __init__(self):
        super().__init__()
        self.backbone = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
        self.head = torch.nn.Linear(4, 2)


def test_groups_carry_the_configured_decay_momentum_and_backbone_scale():
    from trainer.optim import build_optimizer

    opt = build_optimizer(OptimizerConfig(name="sgd", lr=0.1, momentum=0.5, weight_decay=0.01, backbone_lr_scale=0.1),
                          TwoParts())
    groups = [(g["part"], len(g["params"]), g["weight_decay"], g["lr"], g["momentum"], g["initial_lr"])
              for g in opt.param_groups]
    assert groups == [("backbone", 3, 0.0, pytest.approx(0.01), 0.5, 0.1),  # biases and norm weights: no decay
                      ("backbone", 1, 0.01, pytest.approx(0.01), 0.5, 0.1),
                      ("head", 1, 0.0, 0.1, 0.5, 0.1), ("head", 1, 0.01, 0.1, 0.5, 0.1)]


def test_cosine_with_warmup_and_multistep_follow_their_formulas_per_update():
    import math

    from trainer.optim import build_optimizer, build_scheduler, part_lrs

    opt = build_optimizer(OptimizerConfig(name="sgd", lr=0.1, backbone_lr_scale=0.1), TwoParts())
    sched = build_scheduler(SchedulerConfig(name="cosine", warmup_epochs=1, warmup_lr=1e-4, min_lr=1e-5), opt,
                            epochs=5, updates_per_epoch=10)
    expected = {0: 1e-4, 5: 1e-4 + 5 * (0.1 - 1e-4) / 10,  # linear warm-up over the first epoch's 10 updates
                10: 1e-5 + 0.5 * (0.1 - 1e-5) * (1 + math.cos(math.pi * 10 / 50)), 50: 1e-5}
    for update, lr in expected.items():
        sched.step_update(num_updates=update)
        assert part_lrs(opt) == {"lr_head": pytest.approx(lr), "lr_backbone": pytest.approx(0.1 * lr)}
    opt = build_optimizer(OptimizerConfig(name="sgd", lr=0.1), TwoParts())
    sched = build_scheduler(SchedulerConfig(name="multistep", decay_epochs=2, decay_rate=0.5), opt, epochs=10,
                            updates_per_epoch=3)
    for update, lr in {3: 0.1, 9: 0.05, 12: 0.025, 18: 0.0125, 27: 0.0125}.items():  # milestones: epochs 2, 4, 6
        sched.step_update(num_updates=update)
        assert part_lrs(opt)["lr_head"] == pytest.approx(lr)
    assert build_scheduler(SchedulerConfig(name="none"), opt, epochs=10, updates_per_epoch=3) is None
    opt = build_optimizer(OptimizerConfig(name="sgd", lr=0.1), TwoParts())
    sched = build_scheduler(SchedulerConfig(name="cosine", warmup_epochs=0, min_lr=1e-5), opt, epochs=4,
                            updates_per_epoch=0)  # an empty loader counts as one update an epoch
    sched.step_update(num_updates=4)
    assert part_lrs(opt)["lr_head"] == pytest.approx(1e-5)


def test_part_lrs_reports_each_parts_fastest_group_and_unnamed_groups_as_the_head():
    from trainer.optim import part_lrs

    weights = [torch.nn.Parameter(torch.zeros(1)) for _ in range(4)]
    opt = torch.optim.SGD([{"params": [weights[0]], "lr": 0.3, "part": "backbone"},
                           {"params": [weights[1]], "lr": 0.1, "part": "backbone"},
                           {"params": [weights[2]], "lr": 0.2}, {"params": [weights[3]], "lr": 0.5}], lr=1.0)
    assert part_lrs(opt) == {"lr_backbone": 0.3, "lr_head": 0.5}


def test_a_plateau_schedule_maximises_unless_told_the_monitor_minimises():
    from trainer.optim import build_scheduler
    from trainer.plateau import PlateauScheduler

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    plateau = build_scheduler(SchedulerConfig(name="plateau"), opt, epochs=4, updates_per_epoch=2)
    assert isinstance(plateau, PlateauScheduler) and plateau.plateau.mode == "max"
    assert build_scheduler(SchedulerConfig(name="plateau"), opt, epochs=4, updates_per_epoch=2,
                           monitor_mode="min").plateau.mode == "min"
    assert build_scheduler(SchedulerConfig(name="none"), opt, epochs=4, updates_per_epoch=2) is None


def test_layer_decay_scales_each_layer_by_the_configured_factor_and_decay():
    from model.classifier import build_model
    from trainer.optim import param_groups
    from utils.config import ModelConfig, OptimizerConfig

    model = build_model(ModelConfig(backbone="vit_tiny_patch16_224"))
    groups = param_groups(OptimizerConfig(weight_decay=0.03, layer_decay=0.6), model)  # not timm's defaults
    scales = sorted({g["lr_scale"] for g in groups if g["part"] == "backbone"}, reverse=True)
    assert len(scales) == 13 and all(b / a == pytest.approx(0.6) for a, b in zip(scales, scales[1:]))
    assert {g["weight_decay"] for g in groups} == {0.0, 0.03}
