from .adversarial_optim_wrapper import (WRAPPER_HINT, AdversaryOptimMixin, AdvOptimWrapper, AmpAdvOptimWrapper,
                                        adversary_norm, refuse_unwrapped_adversaries, transform_adversary_grad_)

__all__ = [
    'AdversaryOptimMixin', 'AdvOptimWrapper', 'AmpAdvOptimWrapper', 'WRAPPER_HINT', 'adversary_norm',
    'refuse_unwrapped_adversaries', 'transform_adversary_grad_'
]
