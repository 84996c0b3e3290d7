"""Check that a config's data is where the config says, before the runner builds anything.

Without it a COCO config with no ``data/coco`` stops deep inside pycocotools, and an ADE20K one inside
mmseg's file scan, with a bare ``FileNotFoundError``. :func:`check_data_roots` resolves the paths each
dataset and evaluator of the chosen loops will open (``data_root`` joined with ``ann_file`` and every
``data_prefix`` entry, and an evaluator's ``ann_file``) and raises :class:`DataRootError` listing every
missing one with the config key it came from, the layout the dataset type expects and where the docs are.
``tools/train.py`` and ``tools/test.py`` call it.
"""
import os.path as osp
from typing import Iterator, List, Mapping, Sequence, Tuple

# The expected layout per dataset type (the same as docs/transfer.md, "Data layout").
LAYOUTS = {
    'CocoDataset': 'data/coco/{train2017,val2017}/*.jpg and data/coco/annotations/instances_{train,val}2017.json',
    'ADE20KDataset': 'data/ade/ADEChallengeData2016/images/{training,validation}/*.jpg and '
                     'data/ade/ADEChallengeData2016/annotations/{training,validation}/*.png',
    'ImageNet': 'data/imagenet/{train,val}/... and data/imagenet/meta/{train,val}.txt',
    'CustomDataset': '<data_root>/<data_prefix>/<class>/<image> (and <data_root>/<ann_file> when set)',
}
DOCS = 'docs/transfer.md ("Data layout")'
# Which loops a command needs: their dataloader and evaluator config keys.
SPLITS = {'train': ('train_dataloader', None), 'val': ('val_dataloader', 'val_evaluator'),
          'test': ('test_dataloader', 'test_evaluator')}


class DataRootError(FileNotFoundError):
    """Files or folders that a config's datasets or evaluators read do not exist."""


def _join(root: str, path: str) -> str:
    return path if not root or osp.isabs(path) else osp.join(root, path)


def _dataset_paths(dataset: Mapping, key: str) -> Iterator[Tuple[str, str, str]]:
    """(config key, path, dataset type) for every file or folder ``dataset`` reads; wrappers are unfolded."""
    if 'dataset' in dataset:  # RepeatDataset, ClassBalancedDataset, ...
        yield from _dataset_paths(dataset['dataset'], f'{key}.dataset')
        return
    if 'datasets' in dataset:  # ConcatDataset
        for i, sub in enumerate(dataset['datasets']):
            yield from _dataset_paths(sub, f'{key}.datasets.{i}')
        return
    kind = str(dataset.get('type', ''))
    root = dataset.get('data_root') or ''
    if root:
        yield f'{key}.data_root', root, kind
    if dataset.get('ann_file'):
        yield f'{key}.ann_file', _join(root, dataset['ann_file']), kind
    prefix = dataset.get('data_prefix')
    prefixes = prefix.items() if isinstance(prefix, Mapping) else [('', prefix)] if prefix else []
    for name, value in prefixes:
        if value:
            yield f'{key}.data_prefix' + (f'.{name}' if name else ''), _join(root, value), kind


def _evaluator_paths(evaluator, key: str) -> Iterator[Tuple[str, str, str]]:
    evaluators = evaluator if isinstance(evaluator, Sequence) and not isinstance(evaluator, str) else [evaluator]
    for i, metric in enumerate(evaluators):
        if isinstance(metric, Mapping) and metric.get('ann_file'):
            name = key if len(evaluators) == 1 else f'{key}.{i}'
            yield f'{name}.ann_file', metric['ann_file'], str(metric.get('type', ''))


def missing_data_paths(cfg: Mapping, splits: Sequence[str] = ('train', 'val', 'test')) -> List[Tuple[str, str, str]]:
    """(config key, path, dataset or metric type) of every path the ``splits`` of ``cfg`` read that does not
    exist. A split whose loop is off (``val_cfg=None`` ...) or whose dataloader is missing is skipped."""
    missing = []
    for split in splits:
        if split not in SPLITS:
            raise ValueError(f'unknown split {split!r}; expected some of {tuple(SPLITS)}')
        loader_key, evaluator_key = SPLITS[split]
        if cfg.get(f'{split}_cfg', {}) is None or not cfg.get(loader_key):
            continue
        paths = list(_dataset_paths(cfg[loader_key].get('dataset', {}), f'{loader_key}.dataset'))
        if evaluator_key and cfg.get(evaluator_key):
            paths += list(_evaluator_paths(cfg[evaluator_key], evaluator_key))
        # remote URIs (s3://, http://) are the storage backend's business, not checked here
        missing += [(k, p, t) for k, p, t in paths
                    if '://' not in str(p) and not osp.exists(p) and (k, p, t) not in missing]
    return missing


def check_data_roots(cfg: Mapping, splits: Sequence[str] = ('train', 'val', 'test')) -> None:
    """Raise :class:`DataRootError` naming every missing path of the ``splits`` of ``cfg`` (see module doc)."""
    missing = missing_data_paths(cfg, splits)
    if not missing:
        return
    lines = [f'  {key} -> {path} does not exist' for key, path, _ in missing]
    kinds = sorted({kind for _, _, kind in missing})
    layouts = [f'  {kind}: {LAYOUTS[kind]}' for kind in kinds if kind in LAYOUTS]
    message = ['the data this config reads is missing:', *lines]
    if layouts:
        message += ['expected layout:', *layouts]
    message.append(f'Put the data there (a symbolic link works), or point the config at it with --cfg-options '
                   f'(the keys above); see {DOCS}.')
    raise DataRootError('\n'.join(message))
