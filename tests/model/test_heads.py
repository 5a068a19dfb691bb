"""model.heads: the heads by name, each class's probability composed from the three tasks, the ordinal head found."""
import pytest
import torch
from torch import nn

from model.age import AGE_BINS
from model.heads import MultiTaskHead, ShallowHead, build_head, ordinal_head
from utils.labels import decode


def test_every_class_is_the_product_of_its_three_task_probabilities():
    torch.manual_seed(0)
    head = MultiTaskHead(8).eval()
    features = torch.randn(4, 8)
    probs = head(features).exp()
    tasks = [h(features).softmax(1) for h in (head.mask, head.gender, head.age)]
    for c in range(18):
        mask, gender, age = decode(c)
        assert torch.allclose(probs[:, c], tasks[0][:, mask] * tasks[1][:, gender] * tasks[2][:, age], atol=1e-6)


def test_heads_are_built_by_name_with_their_settings():
    linear = build_head("linear", in_features=10, num_classes=5, dropout=0.3)
    assert [type(m) for m in linear] == [nn.Dropout, nn.Linear] and linear[0].p == 0.3
    assert (linear[1].in_features, linear[1].out_features) == (10, 5)
    shallow = build_head("shallow", in_features=10, num_classes=5, hidden_dim=7, activation="relu", dropout=0.1)
    assert isinstance(shallow, ShallowHead) and isinstance(shallow[1], nn.ReLU) and shallow[3].p == 0.1
    assert (shallow[0].in_features, shallow[0].out_features, shallow[2].num_features, shallow[4].out_features) == (
        10, 7, 7, 5)
    assert type(build_head("shallow", in_features=10, num_classes=5)[1]).__name__ == "GELU"  # the default
    multi = build_head("multi", in_features=10, num_classes=18, dropout=0.2, age="ordinal")
    assert isinstance(multi, MultiTaskHead) and multi.ordinal and multi.dropout.p == 0.2
    assert (multi.mask.out_features, multi.gender.out_features, multi.age.out_features) == (3, 2, AGE_BINS)
    plain = build_head("multi", in_features=10, num_classes=18)
    assert not plain.ordinal and plain.age.out_features == 3 and not hasattr(plain, "age_bounds")


@pytest.mark.parametrize("kind, activation, message", [("deep", "gelu", "unknown head 'deep'"),
                                                       ("shallow", "sparkle", "unknown activation 'sparkle'"),
                                                       ("shallow", "", "unknown activation ''")])
def test_an_unknown_head_or_activation_is_refused_by_name(kind, activation, message):
    with pytest.raises(ValueError, match=message):
        build_head(kind, in_features=4, num_classes=18, activation=activation)


def test_the_ordinal_head_emits_its_bins_only_when_asked():
    torch.manual_seed(1)
    head = MultiTaskHead(6, age="ordinal").eval()
    features = torch.randn(3, 6)
    classes = head(features)
    assert classes.shape == (3, 18) and torch.allclose(classes.exp().sum(1), torch.ones(3), atol=1e-5)
    head.emit_bins = True
    both = head(features)
    assert both.shape == (3, 18 + AGE_BINS) and torch.equal(both[:, :18], classes)
    assert torch.allclose(both[:, 18:], head.age(features).log_softmax(1), atol=1e-6)
    plain = MultiTaskHead(6).eval()
    plain.emit_bins = True
    assert plain(features).shape == (3, 18)  # bins only for the ordinal head


def test_the_ordinal_head_is_found_through_a_ddp_style_wrapper_and_only_it():
    class Model(nn.Module):
        def __init__(self, head):
            super().__init__()
            self.head = head

    class Wrapper(nn.Module):
        def __init__(self, module):
            super().__init__()
            self.module = module

    ordinal = MultiTaskHead(4, age="ordinal")
    assert ordinal_head(Model(ordinal)) is ordinal and ordinal_head(Wrapper(Model(ordinal))) is ordinal
    assert ordinal_head(Model(MultiTaskHead(4))) is None and ordinal_head(Model(nn.Linear(4, 18))) is None
    assert ordinal_head(nn.Linear(4, 18)) is None


def test_the_multi_task_heads_dropout_acts_in_training_only():
    torch.manual_seed(2)
    head = MultiTaskHead(64, dropout=0.9)
    features = torch.randn(2, 64)
    assert not torch.allclose(head.train()(features), head.train()(features))
    assert torch.equal(head.eval()(features), head.eval()(features))


def test_a_checkpoint_holds_the_heads_weights_and_fitted_bounds_not_the_class_index():
    """`index` is rebuilt from the label encoding; saving it would make older checkpoints fail a strict load."""
    state = MultiTaskHead(4, age="ordinal").state_dict()
    assert set(state) == {f"{task}.{p}" for task in ("mask", "gender", "age") for p in ("weight", "bias")} | {
        "age_bounds"}
    assert state["age_bounds"].dtype == torch.float32 and state["age_bounds"].tolist() == [30.0, 60.0]
    assert "index" not in MultiTaskHead(4).state_dict()


def test_the_heads_defaults_are_no_dropout_a_gelu_and_three_age_groups():
    shallow = ShallowHead(4, 18)
    assert type(shallow[1]).__name__ == "GELU" and shallow[3].p == 0.0 and shallow[0].out_features == 512
    assert build_head("linear", in_features=4, num_classes=18)[0].p == 0.0
    multi = MultiTaskHead(4)
    assert multi.dropout.p == 0.0 and not multi.ordinal and multi.age.out_features == 3
