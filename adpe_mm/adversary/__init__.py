"""AdPE's adversaries: the ball they live in, the config that declares them and the attack that trains them.

The ground floor of the package: it imports nothing from ``adpe_mm``. The models own adversary parameters
and read them through :func:`adversary_value`; the optimizer wrappers ascend and project them; sequential
mode, fresh and per-sample adversaries, the strength probe and the study's attack run :func:`pgd_attack`.
"""
from .attack import STARTS, AttackResult, pgd_attack, start_values
from .ball import (ADV_PREFIX, NORMS, AdversaryBall, AdversaryParameter, adversary_norm, adversary_parameter,
                   ascent_direction, check_ball, is_adversary, pgd_step_, project_, project_l2_, project_linf_,
                   uniform_in_ball)
from .spec import COORD_EDGES, EMBED_FORMS, MODES, PE_TYPES, irpe_adversary, parse_adversary
from .substitute import adversary_value, named_adversaries, substituted

__all__ = [
    'STARTS', 'AttackResult', 'pgd_attack', 'start_values', 'ADV_PREFIX', 'NORMS', 'AdversaryBall',
    'AdversaryParameter', 'adversary_norm', 'adversary_parameter', 'ascent_direction', 'check_ball',
    'is_adversary', 'pgd_step_', 'project_', 'project_l2_', 'project_linf_', 'uniform_in_ball', 'COORD_EDGES',
    'EMBED_FORMS', 'MODES', 'PE_TYPES', 'irpe_adversary', 'parse_adversary', 'adversary_value',
    'named_adversaries', 'substituted'
]
