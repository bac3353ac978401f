"""The shared shape of every settings dataclass: built from a config slice, strict about keys.

Each experiment (training, autoencoder pretraining, PSO) keeps its hyperparameters in one frozen
dataclass whose fields are exactly the keys of its ``config.yaml`` section. ``from_params``
builds it from that section (the JSON a workflow rule passes) and names any key it does not
know, so a typo in the config is an error instead of a silently ignored setting.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from trainact.names import ACTIVATIONS, PAPER_FILTERS

SettingsT = TypeVar("SettingsT", bound="ConfigSection")

#: RMSProp's decay rho (torch's ``alpha``): the paper's 0.95 (Section 2.2). The one home in Python
#: of this default: the trainer's and the autoencoder's settings and the benchmark read it.
RMSPROP_RHO = 0.95
#: RMSProp's epsilon: paper silent; Keras' RMSprop default (the paper's rho naming is Keras').
RMSPROP_EPS = 1e-7


class ConfigSection:
    """Mixin for frozen dataclasses that mirror one config section (named by ``SECTION``)."""

    SECTION: ClassVar[str] = "settings"
    # Settings a checkpoint may have been written under and still be resumed: they change
    # neither the results nor the run's state (the device, evaluation chunking, run length).
    RESUMABLE_ACROSS: ClassVar[tuple[str, ...]] = ("device",)

    @classmethod
    def from_params(cls: type[SettingsT], params: Mapping[str, Any], **overrides: Any) -> SettingsT:
        """Build from a config slice; ``overrides`` that are not ``None`` win (CLI flags)."""
        known = {f.name for f in dataclasses.fields(cls)}
        merged = {**dict(params), **{k: v for k, v in overrides.items() if v is not None}}
        unknown = sorted(set(merged) - known)
        if unknown:
            raise ValueError(f"unknown {cls.SECTION} setting(s) {unknown}; known: {sorted(known)}")
        tuple_fields = {f.name for f in dataclasses.fields(cls) if str(f.type).startswith("tuple")}
        for key in tuple_fields & set(merged):
            merged[key] = tuple(merged[key])
        return cls(**merged)

    def as_dict(self) -> dict[str, Any]:
        """Plain values (tuples as lists), ready for JSON."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def checkpoint_fingerprint(self, **modules: Any) -> dict[str, Any]:
        """What a checkpoint must match to be resumed: every setting but ``RESUMABLE_ACROSS``,
        and the ``repr`` of each module (its structure), under the module's keyword."""
        fingerprint = {k: v for k, v in self.as_dict().items() if k not in self.RESUMABLE_ACROSS}
        fingerprint.update({name: repr(module) for name, module in modules.items()})
        return fingerprint

    @classmethod
    def fail(cls, key: str, value: Any, why: str) -> None:
        """Raise the one error shape every settings check uses: ``section.key = value: why``."""
        raise ValueError(f"{cls.SECTION}.{key} = {value!r}: {why}")

    def check_network(self) -> None:
        """The settings' ``size`` and ``activation`` name one of the paper's networks (the
        autoencoder's and PSO's settings carry the network they train)."""
        if self.size not in PAPER_FILTERS:
            self.fail("size", self.size, f"choose one of {sorted(PAPER_FILTERS)}")
        if self.activation not in ACTIVATIONS:
            self.fail("activation", self.activation, f"choose one of {list(ACTIVATIONS)}")


def schedule_problems(lr_boundaries: Any, learning_rates: Any) -> list[tuple[str, Any, str]]:
    """What is wrong with a step schedule (eq. (1)), as ``(key, value, why)`` per problem: one
    learning rate per interval between strictly increasing boundaries. The one home of this
    check: ``TrainSettings`` raises the first problem, the workflow's config check lists all."""
    problems = []
    if len(learning_rates) != len(lr_boundaries) + 1:
        problems.append(
            (
                "learning_rates",
                list(learning_rates),
                f"needs one more entry than train.lr_boundaries = {list(lr_boundaries)!r}",
            )
        )
    if list(lr_boundaries) != sorted(set(lr_boundaries)):
        problems.append(("lr_boundaries", list(lr_boundaries), "must be strictly increasing"))
    return problems


#: The train settings that make a learning-rate schedule: a trunk and its branches (the schedule
#: axis, trainact.training.schedules) share every other setting.
SCHEDULE_KEYS: tuple[str, ...] = ("epochs", "lr_boundaries", "learning_rates")
