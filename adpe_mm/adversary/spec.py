"""The adversary of a config, ``model.adversary``: validated once here into the dict every module reads."""
from typing import Optional

from .ball import check_ball

PE_TYPES = ('ape', 'rpe')
MODES = ('embed', 'coord')
# How an RPE coordinate adversary reads the table past its last bucket (index_mode='relaxed' only; see
# adpe_mm/models/pos_embed/irpe.py): 'fade' continues the relaxed index to +-beta and fades to zero one bucket
# beyond the edge (the default), 'clamp' is the original lookup (index clamped to the last bucket), kept to
# reproduce runs made with it.
COORD_EDGES = ('fade', 'clamp')
# How an APE embedding adversary meets the mask token (docs/method_notes.md, "Cancellation"): 'add' (default)
# puts it on top of the learned mask token, masked tokens are mask_token + p + a; 'replace' is the authors'
# form, with no mask token in this mode: masked tokens are p + a.
EMBED_FORMS = ('add', 'replace')
KEYS = ('pe', 'mode', 'norm', 'eps', 'edge', 'form')


def parse_adversary(cfg: Optional[dict]) -> Optional[dict]:
    """Validate an AdPE adversary config ``dict(pe='ape'|'rpe', mode='embed'|'coord', norm='l2'|'linf',
    eps=float)`` (RPE coordinate mode also takes ``edge='fade'|'clamp'``, APE embedding mode
    ``form='add'|'replace'``); return a normalised copy, or None for no adversary. Errors name the bad value."""
    if cfg is None:
        return None
    if not isinstance(cfg, dict):
        raise TypeError(f'adversary must be a dict or None, got {cfg!r}')
    unknown = set(cfg) - set(KEYS)
    if unknown:
        raise ValueError(f'unknown adversary keys {sorted(unknown)} (expected {", ".join(KEYS)})')
    if cfg.get('pe') not in PE_TYPES:
        raise ValueError(f'adversary pe must be one of {PE_TYPES}, got {cfg.get("pe")!r}')
    if cfg.get('mode') not in MODES:
        raise ValueError(f'adversary mode must be one of {MODES}, got {cfg.get("mode")!r}')
    ball = check_ball(cfg.get('norm'), cfg.get('eps'))
    out = dict(pe=cfg['pe'], mode=cfg['mode'], norm=ball.norm, eps=ball.eps)
    for key, where, choices in (('edge', ('rpe', 'coord'), COORD_EDGES), ('form', ('ape', 'embed'), EMBED_FORMS)):
        if cfg.get(key) is None:
            continue
        if (cfg['pe'], cfg['mode']) != where:
            raise ValueError(f'adversary {key}={cfg[key]!r} applies to pe={where[0]!r}, mode={where[1]!r} only, '
                             f"got pe={cfg['pe']!r}, mode={cfg['mode']!r}")
        if cfg[key] not in choices:
            raise ValueError(f'adversary {key} must be one of {choices}, got {cfg[key]!r}')
        out[key] = cfg[key]
    return out


def irpe_adversary(adversary: dict) -> dict:
    """The ``adversary`` kwarg of :class:`~adpe_mm.models.pos_embed.IRPE` for a parsed RPE adversary."""
    return {k: v for k, v in adversary.items() if k in ('mode', 'norm', 'eps', 'edge')}
