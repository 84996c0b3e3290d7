"""The check that compiled mmcv ops are available, for the subpackages that need them."""

FIX = ('Run `bash tools/install.sh`: it builds mmcv 2.1.0 from source with its C++ ops '
       '(MMCV_WITH_OPS=1, --no-build-isolation) into the project\'s virtual environment.')


def require_mmcv_ops(user: str) -> None:
    """Import ``mmcv.ops``; raise an ImportError that says how to fix it when mmcv has no compiled ops.

    Args:
        user: the module that needs the ops, named in the message (e.g. ``'adpe_mm.det'``).
    """
    try:
        import mmcv.ops  # noqa: F401  (loads the compiled extension mmcv._ext)
    except ImportError as e:
        raise ImportError(
            f'{user} needs mmcv with compiled ops (mmcv._ext, used by mmdet/mmseg for RoIAlign, nms, ...), '
            f'but `import mmcv.ops` failed: {e}. {FIX}') from e
