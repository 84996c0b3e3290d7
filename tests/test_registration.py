"""`import adpe_mm` registers the project's components.

Engineers adding a component append its class name to EXPECTED under the registry it is registered in,
as '<library>.<REGISTRY>' (the registry object in ``<library>.registry``).
"""
import importlib

import pytest
import torch
from mmengine.logging import HistoryBuffer

import adpe_mm  # noqa: F401

EXPECTED = {
    'mmpretrain.MODELS': ['MAEPlus', 'MAEPlusFGSM', 'MAEPlusViT', 'IRPEViT', 'MAEPlusDecoder'],
    'mmpretrain.OPTIM_WRAPPERS': ['AdvOptimWrapper', 'AmpAdvOptimWrapper'],
    'mmpretrain.HOOKS': ['AdversaryHook', 'ReconstructionHook', 'AttentionDistanceHook'],
    'mmpretrain.TRANSFORMS': ['MultiCrop'],
}

CASES = [(registry, name) for registry, names in EXPECTED.items() for name in names]


@pytest.mark.parametrize('registry,name', CASES, ids=[f'{r}:{n}' for r, n in CASES])
def test_component_is_registered(registry, name):
    library, registry_name = registry.split('.')
    registry_obj = getattr(importlib.import_module(f'{library}.registry'), registry_name)
    assert name in registry_obj.module_dict
    assert registry_obj.module_dict[name].__module__.startswith('adpe_mm.')


def test_import_registers_mmengine_checkpoint_globals():
    assert HistoryBuffer in torch.serialization.get_safe_globals()
