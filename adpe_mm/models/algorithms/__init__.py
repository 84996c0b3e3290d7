from .mae_plus import MAEPlus

__all__ = ['MAEPlus']
from .fgsm import MAEPlusFGSM  # noqa: E402,F401
