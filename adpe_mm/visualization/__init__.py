from .reconstruction import denormalise_prediction, patchify, reconstruction_panel, unpatchify

__all__ = ['patchify', 'unpatchify', 'denormalise_prediction', 'reconstruction_panel']
