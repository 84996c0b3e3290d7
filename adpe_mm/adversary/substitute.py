"""Adversary values that stand in for the adversary parameters during a forward.

A fresh or per-sample adversary is not the persistent ``adv_`` parameter: it is a tensor that an attack
(:mod:`adpe_mm.adversary.attack`) builds for one batch. The modules that own adversaries read them through
:func:`adversary_value`, which returns the stand-in while :func:`substituted` is active and the parameter
otherwise, so the same forward serves the paper's persistent adversaries and the attacks. A stand-in may
carry leading per-sample dimensions ([B, 2] for a coordinate adversary of shape [2]).
"""
from contextlib import contextmanager
from typing import Dict, Iterator, Mapping

import torch
from torch import nn

from .ball import is_adversary

VALUES_ATTR = '_adversary_values'


def named_adversaries(model: nn.Module) -> Dict[str, nn.Parameter]:
    """The model's adversary parameters by qualified name, in ``named_parameters`` order."""
    return {name: p for name, p in model.named_parameters() if is_adversary(p)}


def adversary_value(module: nn.Module, name: str) -> torch.Tensor:
    """What ``module``'s adversary ``name`` is in this forward: its stand-in, or the parameter itself."""
    values = module.__dict__.get(VALUES_ATTR)
    if values is not None and name in values:
        return values[name]
    return getattr(module, name)


@contextmanager
def substituted(model: nn.Module, values: Mapping[str, torch.Tensor]) -> Iterator[None]:
    """Within the block, the adversary parameter of ``model`` named ``k`` (qualified) reads ``values[k]``."""
    modules = dict(model.named_modules())
    owners = []
    for qualified, value in values.items():
        owner, _, leaf = qualified.rpartition('.')
        if owner not in modules or not is_adversary(getattr(modules[owner], leaf, None)):
            raise KeyError(f'{qualified!r} is not an adversary parameter of {type(model).__name__}')
        modules[owner].__dict__.setdefault(VALUES_ATTR, {})[leaf] = value
        owners.append(modules[owner])
    try:
        yield
    finally:
        for module in owners:
            module.__dict__.pop(VALUES_ATTR, None)
