from .adversarial_optim_wrapper import (AdversaryOptimMixin, AdvOptimWrapper, AmpAdvOptimWrapper,
                                        adversary_norm, transform_adversary_grad_)

__all__ = [
    'AdversaryOptimMixin', 'AdvOptimWrapper', 'AmpAdvOptimWrapper', 'adversary_norm',
    'transform_adversary_grad_'
]
