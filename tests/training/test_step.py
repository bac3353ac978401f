"""The one training step (trainact.training.step): the trainer, the autoencoder and the benchmarks
step through it, so it must be exactly the hand-written step it replaced."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from trainact.nn.models import build_model
from trainact.training.random_state import seed_everything
from trainact.training.settings import RMSPROP_EPS, RMSPROP_RHO
from trainact.training.step import EpochTotals, classifier_step, rmsprop, train_step
from trainact.training.train_settings import TrainSettings

TINY_MODEL = {"filters": {"small": [4, 4, 4]}, "hidden": 8, "impl": "eager"}


def batches(count: int = 3, size: int = 6):
    generator = torch.Generator().manual_seed(0)
    for _ in range(count):
        yield (
            torch.rand(size, 3, 32, 32, generator=generator),
            torch.randint(0, 10, (size,), generator=generator),
        )


def two_models():
    seed_everything(0)
    model = build_model("small", "relu", TINY_MODEL)
    return model, copy.deepcopy(model)


def test_rmsprop_is_torchs_with_rho_as_alpha_and_the_paper_defaults():
    optimizer = rmsprop([nn.Parameter(torch.zeros(2))], lr=0.1, rho=0.9, eps=1e-5)
    assert isinstance(optimizer, torch.optim.RMSprop)
    assert (optimizer.defaults["alpha"], optimizer.defaults["eps"], optimizer.defaults["lr"]) == (
        0.9,
        1e-5,
        0.1,
    )
    assert (TrainSettings().rho, TrainSettings().eps) == (RMSPROP_RHO, RMSPROP_EPS) == (0.95, 1e-7)


def test_classifier_steps_give_the_parameters_and_sums_of_a_hand_written_loop():
    shared, by_hand = two_models()
    loss_fn = nn.CrossEntropyLoss()
    optimizer = rmsprop(shared.parameters(), lr=1e-3, rho=RMSPROP_RHO, eps=RMSPROP_EPS)
    reference = torch.optim.RMSprop(by_hand.parameters(), lr=1e-3, alpha=0.95, eps=1e-7)
    totals = EpochTotals("cpu")
    loss_sum, correct = torch.zeros((), dtype=torch.float64), torch.zeros((), dtype=torch.int64)
    phases = []
    for images, labels in batches():
        classifier_step(shared, loss_fn, optimizer, images, labels, totals, phase=phases.append)
        logits = by_hand(images)
        loss = loss_fn(logits, labels)
        reference.zero_grad(set_to_none=True)
        loss.backward()
        reference.step()
        loss_sum += loss.detach().double() * labels.shape[0]
        correct += (logits.detach().argmax(1) == labels).sum()
    for a, b in zip(shared.state_dict().values(), by_hand.state_dict().values()):
        assert torch.equal(a, b)
    assert torch.equal(totals.loss_sum, loss_sum) and torch.equal(totals.correct, correct)
    assert phases == ["forward", "backward", "optimizer", "bookkeeping"] * 3


def test_train_step_takes_any_forward_and_loss_as_the_autoencoder_does():
    """The autoencoder's step: reconstruct a frozen input through an encoder and a decoder."""
    torch.manual_seed(0)
    encoder, decoder = nn.Linear(5, 3), nn.Linear(3, 5)
    encoder2, decoder2 = copy.deepcopy(encoder), copy.deepcopy(decoder)
    optimizer = rmsprop([*encoder.parameters(), *decoder.parameters()], lr=1e-2, rho=0.95, eps=1e-7)
    reference = torch.optim.RMSprop(
        [*encoder2.parameters(), *decoder2.parameters()], lr=1e-2, alpha=0.95, eps=1e-7
    )
    target = torch.randn(8, 5)
    for _ in range(3):
        loss, output = train_step(lambda h: decoder(encoder(h)), F.mse_loss, optimizer, target, target)
        expected = F.mse_loss(decoder2(encoder2(target)), target)
        reference.zero_grad(set_to_none=True)
        expected.backward()
        reference.step()
        assert torch.equal(loss, expected.detach()) and not loss.requires_grad and not output.requires_grad
    for a, b in zip(
        [*encoder.parameters(), *decoder.parameters()], [*encoder2.parameters(), *decoder2.parameters()]
    ):
        assert torch.equal(a, b)
