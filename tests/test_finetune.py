"""Fine-tuning details: the linear-probe head start (LP-FT) and config hashing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import softmax
from sklearn.linear_model import LogisticRegression, Ridge

from taskscout.data.task import Task
from taskscout.encode.encoder import Encoder
from taskscout.evaluate.transfer import get_protocol
from taskscout.train.config import TrainConfig
from taskscout.train.finetune import SequenceModel, TrainingTargets, finetune, fit_probe_head, load_backbone
from tests.conftest import make_task


def _model_and_features(tiny_model_dir, task, outputs):
    encoder, tokenizer, name = load_backbone(str(tiny_model_dir))
    model = SequenceModel(encoder, outputs)
    helper = Encoder.from_module(encoder, tokenizer, name=name, fingerprint="t", max_length=32, cache=False)
    model.eval()
    with torch.inference_mode():
        features = model.pooled(helper.tokenize(task.texts)).double().numpy()
    return model, helper, features


def _head(model, features):
    with torch.inference_mode():
        return model.head(torch.as_tensor(features, dtype=torch.float32)).double().numpy()


@pytest.mark.parametrize("classes", [2, 3])
def test_probe_head_is_the_logistic_regression_on_frozen_features(tiny_model_dir, classes):
    task = make_task(n=60, classes=classes)
    model, helper, features = _model_and_features(tiny_model_dir, task, classes)
    fit_probe_head(model, helper, task, TrainingTargets.of(task))
    reference = LogisticRegression(C=1.0, max_iter=2000).fit(features, task.labels)
    np.testing.assert_allclose(
        softmax(_head(model, features), axis=1), reference.predict_proba(features), atol=2e-4
    )


def test_probe_head_leaves_absent_classes_unpredicted(tiny_model_dir):
    task = make_task(n=60, classes=2)
    model, helper, features = _model_and_features(tiny_model_dir, task, 3)  # the head has a third class
    fit_probe_head(model, helper, task, TrainingTargets.of(task))
    probabilities = softmax(_head(model, features), axis=1)
    assert probabilities[:, 2].max() < 1e-4
    reference = LogisticRegression(C=1.0, max_iter=2000).fit(features, task.labels)
    np.testing.assert_array_equal(probabilities.argmax(axis=1), reference.predict(features))


def test_probe_head_regression_is_ridge_on_standardised_targets(tiny_model_dir):
    task = make_task(n=60, regression=True)
    model, helper, features = _model_and_features(tiny_model_dir, task, 1)
    targets = TrainingTargets.of(task)
    fit_probe_head(model, helper, task, targets)
    reference = Ridge(alpha=1.0).fit(features, (task.labels - targets.mean) / targets.std)
    np.testing.assert_allclose(_head(model, features)[:, 0], reference.predict(features), atol=1e-4)


def test_probe_head_with_one_class_keeps_the_random_head(tiny_model_dir):
    task = make_task(n=20).select(np.flatnonzero(make_task(n=20).labels == 0))
    model, helper, _ = _model_and_features(tiny_model_dir, task, 2)
    before = model.head.weight.detach().clone()
    fit_probe_head(model, helper, task, TrainingTargets.of(task))
    assert torch.equal(before, model.head.weight)


def test_finetune_from_a_probe_head_learns_the_task(tiny_model_dir):
    task = make_task(n=80)
    config = TrainConfig(epochs=1, batch_size=16, learning_rate=1e-4, head_init="probe", max_length=32)
    tuned = finetune(task, str(tiny_model_dir), config)
    assert tuned.evaluate(task)["accuracy"] > 0.9


def test_new_config_fields_do_not_change_existing_hashes():
    # The committed small-v1 runs, cached models and pools are keyed by these hashes.
    assert "head_init" not in TrainConfig().to_dict()
    assert TrainConfig(head_init="probe").to_dict()["head_init"] == "probe"
    assert get_protocol("small-v1").hash() == "e7d3c38e3dcf"
    with pytest.raises(ValueError, match="head_init"):
        TrainConfig(head_init="zeros")


@pytest.mark.parametrize(
    ("warmup_ratio", "total"), [(0.0, 1), (0.0, 7), (0.0, 48), (0.1, 48), (0.1, 126), (0.5, 9)]
)
def test_learning_rate_schedule_per_step(warmup_ratio, total):
    """The fine-tuning schedule, step by step, and where transformers' linear schedule differs from it."""
    from transformers import get_linear_schedule_with_warmup

    from taskscout.train.finetune import warmup_then_linear_decay

    warmup = int(warmup_ratio * total)  # as finetune() computes it
    ours = [warmup_then_linear_decay(s, warmup_steps=warmup, total_steps=total) for s in range(total)]
    # the closed form: (s + 1) / W during warm-up, then (T - s) / (T - W)
    expected = [(s + 1) / warmup if s < warmup else (total - s) / (total - warmup) for s in range(total)]
    assert ours == pytest.approx(expected, abs=0)
    assert ours[-1] > 0 and max(ours) == 1.0

    params = [torch.nn.Parameter(torch.zeros(1))]
    optimizer = torch.optim.SGD(params, lr=1.0)
    library = get_linear_schedule_with_warmup(optimizer, warmup, total)
    rates = []
    for _ in range(total):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        library.step()
    if warmup == 0:
        assert rates == pytest.approx(ours, abs=1e-15)  # identical without warm-up
    else:
        # transformers starts at 0 and is one step behind during warm-up; identical afterwards
        assert rates[0] == 0.0 and rates[:warmup] == pytest.approx([s / warmup for s in range(warmup)])
        assert rates[warmup:] == pytest.approx(ours[warmup:], abs=1e-15)


def test_esm_sgd_schedule_is_transformers_linear_decay():
    """fit_sgd's schedule (transformers, no warm-up) equals the hand-written 1 - s / steps it replaced."""
    from transformers import get_linear_schedule_with_warmup

    steps = 20
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = get_linear_schedule_with_warmup(optimizer, num_warmup_steps=0, num_training_steps=steps)
    rates = []
    for _ in range(steps + 2):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates == pytest.approx([max(0.0, 1 - s / steps) for s in range(steps + 2)], abs=1e-15)


@pytest.mark.parametrize("pair", [False, True])
def test_batch_logits_are_in_input_order_whatever_the_batching(tiny_model_dir, pair):
    # batch_logits batches rows longest first (little padding); each row's output must still be the
    # one the row gets alone (no padding at all), in the task's order.
    from taskscout.train.finetune import batch_logits

    rng = np.random.default_rng(0)
    base = make_task(n=23, pair=pair)
    texts = [" ".join([t] * int(rng.integers(1, 4))) for t in base.texts]  # lengths vary 1-3x
    task = Task(base.name, texts, base.labels, base.task_type, text_pairs=base.text_pairs, language="en")
    model, helper, _ = _model_and_features(tiny_model_dir, task, 2)
    batched = batch_logits(model, helper, task, batch_size=4)
    alone = np.concatenate(
        [batch_logits(model, helper, task.select([i]), batch_size=1) for i in range(len(task))]
    )
    assert batched.shape == (len(task), 2)
    np.testing.assert_allclose(batched, alone, atol=1e-5)
    pooled = batch_logits(model, helper, task, batch_size=5, pooled=True)
    assert pooled.shape == (len(task), model.head.in_features)


def test_fused_adamw_trains_as_the_per_tensor_loop(tiny_model_dir, monkeypatch):
    # finetune uses the fused AdamW kernel (much faster on the CPU); it must follow the same formula.
    task = make_task(n=48)
    config = TrainConfig(epochs=2, batch_size=16, learning_rate=1e-4, warmup_ratio=0.1, max_length=32)
    fused = finetune(task, str(tiny_model_dir), config)
    adamw = torch.optim.AdamW
    monkeypatch.setattr(torch.optim, "AdamW", lambda *a, fused=None, **k: adamw(*a, **k))
    loop = finetune(task, str(tiny_model_dir), config)
    moved = 0.0
    for (name, a), (_, b) in zip(fused.model.named_parameters(), loop.model.named_parameters(), strict=True):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), atol=1e-6, err_msg=name)
    start, _, _ = load_backbone(str(tiny_model_dir))
    for a, b in zip(fused.model.encoder.parameters(), start.parameters(), strict=True):
        moved = max(moved, float((a - b).detach().abs().max()))
    assert moved > 1e-4  # the comparison is between models that trained, not two copies of the start
