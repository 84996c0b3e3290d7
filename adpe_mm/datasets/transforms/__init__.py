from .multi_crop import MultiCrop

__all__ = ['MultiCrop']
