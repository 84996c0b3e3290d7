"""MAE's weight initialisation, shared by the MAE+ encoder and decoder."""
from torch import nn


def mae_init_(module: nn.Module) -> None:
    """Xavier-uniform Linear weights with zero bias, LayerNorm (1, 0); applied with ``module.apply``."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
