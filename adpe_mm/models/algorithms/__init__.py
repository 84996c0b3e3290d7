from .mae_plus import MAEPlus

__all__ = ['MAEPlus']
