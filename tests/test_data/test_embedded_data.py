"""The embedded photo set built by tools/data/build_embedded_data.py."""
import json
import os
import os.path as osp
import time

import pytest
from PIL import Image


def image_files(root):
    train = osp.join(root, 'train')
    return sorted(osp.relpath(osp.join(d, f), train) for d, _, files in os.walk(train) for f in files)


@pytest.fixture(scope='module')
def manifest(embedded_data):
    with open(osp.join(embedded_data, 'sources.json'), encoding='utf-8') as f:
        return json.load(f)


def test_at_least_20_rgb_images_of_112px(embedded_data):
    files = image_files(embedded_data)
    assert len(files) >= 20
    for rel in files:
        with Image.open(osp.join(embedded_data, 'train', rel)) as img:
            assert img.mode == 'RGB', rel
            assert min(img.size) >= 112, rel


def test_every_image_has_a_source_and_licence(embedded_data, manifest):
    entries = {img['file']: img for img in manifest['images']}
    assert sorted(entries) == image_files(embedded_data)
    for rel, img in entries.items():
        assert img['licence'].strip(), rel
        assert img['package'] and img['original'], rel


def test_annotation_file_lists_every_image_with_its_folder_label(embedded_data):
    with open(osp.join(embedded_data, 'meta', 'train.txt')) as f:
        lines = [line.split() for line in f.read().splitlines()]
    classes = sorted(os.listdir(osp.join(embedded_data, 'train')))
    assert sorted(path for path, _ in lines) == image_files(embedded_data)
    for path, label in lines:
        assert classes[int(label)] == path.split('/')[0]


def test_sources_md_names_every_image(embedded_data):
    with open(osp.join(embedded_data, 'SOURCES.md'), encoding='utf-8') as f:
        text = f.read()
    for rel in image_files(embedded_data):
        assert f'| {rel} |' in text


@pytest.fixture(scope='module')
def fresh_build(tmp_path_factory, data_builder):
    out = tmp_path_factory.mktemp('fresh')
    data_builder.build(str(out), verbose=False)
    return out


def test_rebuild_rewrites_nothing_and_is_fast(fresh_build, data_builder):
    root = fresh_build / 'embedded'
    before = {p: p.stat().st_mtime_ns for p in root.rglob('*') if p.is_file()}
    start = time.perf_counter()
    data_builder.build(str(fresh_build), verbose=False)
    assert time.perf_counter() - start < 2.0
    assert {p: p.stat().st_mtime_ns for p in root.rglob('*') if p.is_file()} == before


def test_rebuild_restores_a_deleted_image(fresh_build, data_builder):
    victim = fresh_build / 'embedded' / 'train' / 'skimage' / 'astronaut.png'
    victim.unlink()
    data_builder.build(str(fresh_build), verbose=False)
    assert victim.exists()


def test_missing_source_fails_naming_the_file(tmp_path, data_builder, monkeypatch):
    missing = data_builder.Photo('skimage', 'scikit-image', 'data/no_such_photo.png', 'skimage', 'nope', 'CC0')
    monkeypatch.setattr(data_builder, 'CURATED', data_builder.CURATED + [missing])
    with pytest.raises(data_builder.MissingSource, match='no_such_photo.png'):
        data_builder.build(str(tmp_path), verbose=False)
