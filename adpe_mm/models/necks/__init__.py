from .mae_plus_decoder import MAEPlusDecoder

__all__ = ['MAEPlusDecoder']
