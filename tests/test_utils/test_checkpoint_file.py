"""An empty, truncated or foreign file given as a checkpoint is named and described in one line by every
reader: mmengine's CheckpointLoader (--resume, load_from, tools/test.py, init_cfg), the backbone loader, the
converters and the command-line tools; a real checkpoint still loads unchanged."""
import os.path as osp
import re
import shutil
import subprocess
import sys
import zipfile

import pytest
import torch
from mmengine.runner import load_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader
from torch import nn

import adpe_mm  # noqa: F401  (puts the check in front of mmengine's local loader)
from adpe_mm.utils.checkpoint_file import read_checkpoint
from adpe_mm.utils import CheckpointFileError, check_checkpoint_file, load_checkpoint_file
from conftest import REPO_ROOT, SMOKE_CONFIG, tool_env


@pytest.fixture
def files(tmp_path, embedded_data):
    good = str(tmp_path / 'good.pth')
    torch.save(dict(state_dict=nn.Linear(3, 2).state_dict(), meta=dict(iter=7)), good)
    data = open(good, 'rb').read()
    legacy = str(tmp_path / 'legacy.pth')
    torch.save(dict(state_dict=nn.Linear(3, 2).state_dict()), legacy, _use_new_zipfile_serialization=False)
    paths = dict(good=good, legacy=legacy, empty=str(tmp_path / 'empty.pth'), cut=str(tmp_path / 'cut.pth'),
                 legacy_cut=str(tmp_path / 'legacy_cut.pth'), png=str(tmp_path / 'photo.pth'),
                 zip=str(tmp_path / 'other.zip'))
    open(paths['empty'], 'wb').close()
    open(paths['cut'], 'wb').write(data[:len(data) // 2])  # what a kill during torch.save leaves
    open(paths['legacy_cut'], 'wb').write(open(legacy, 'rb').read()[:200])
    shutil.copy(osp.join(embedded_data, 'train', 'skimage', 'chelsea.png'), paths['png'])
    with zipfile.ZipFile(paths['zip'], 'w') as z:
        z.writestr('readme.txt', 'not a checkpoint')
    return paths


EXPECTED = dict(empty='is an empty file (0 bytes)', cut='is truncated', legacy_cut='is truncated',
                png='is not a checkpoint: it is a PNG image', zip='is a zip archive but not a torch checkpoint')


def test_good_files_pass_and_load_as_before(files):
    check_checkpoint_file(files['good'])
    assert load_checkpoint_file(files['good'])['meta']['iter'] == 7
    assert set(load_checkpoint_file(files['legacy'])['state_dict']) == {'weight', 'bias'}


@pytest.mark.parametrize('kind', sorted(EXPECTED))
def test_bad_files_are_named_and_described(files, kind):
    with pytest.raises(CheckpointFileError) as err:
        load_checkpoint_file(files[kind])
    message = str(err.value)
    assert files[kind] in message and EXPECTED[kind] in message and '\n' not in message


@pytest.mark.parametrize('reader', ['CheckpointLoader', 'load_checkpoint', 'read_checkpoint'])
@pytest.mark.parametrize('kind', ['empty', 'cut'])
def test_every_reader_reports_it(files, reader, kind):
    with pytest.raises(CheckpointFileError, match=re.escape(EXPECTED[kind])):
        if reader == 'CheckpointLoader':  # --resume, load_from, tools/test.py, Pretrained init_cfg
            CheckpointLoader.load_checkpoint(files[kind], map_location='cpu')
        elif reader == 'load_checkpoint':
            load_checkpoint(nn.Linear(3, 2), files[kind])
        else:  # the fine-tune / detection / segmentation backbones and the converters
            read_checkpoint(files[kind])


def test_mmengine_still_loads_a_good_file(files):
    model = nn.Linear(3, 2)
    load_checkpoint(model, files['good'])
    assert torch.equal(model.weight, torch.load(files['good'], weights_only=True)['state_dict']['weight'])


def _run(args, cwd):
    return subprocess.run([sys.executable] + args, cwd=cwd, env=tool_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=600)


def test_the_tools_print_one_line_without_a_traceback(files, tmp_path, embedded_data):
    data = [f'{split}_dataloader.dataset.data_root={embedded_data}' for split in ('train', 'val', 'test')]
    runs = {  # tool -> (its command line, the bad file in it)
        'tools/test.py': (['tools/test.py', SMOKE_CONFIG, files['empty'], '--cfg-options'] + data, files['empty']),
        'tools/train.py': (['tools/train.py', SMOKE_CONFIG, '--resume', files['cut'], '--work-dir',
                            str(tmp_path / 'w'), '--cfg-options'] + data, files['cut']),
        'tools/model_converters/pretrain_to_backbone.py': (
            ['tools/model_converters/pretrain_to_backbone.py', files['png'], str(tmp_path / 'out.pth')],
            files['png']),
        'tools/model_converters/publish_model.py': (
            ['tools/model_converters/publish_model.py', files['cut'], str(tmp_path / 'release')], files['cut']),
    }
    for tool, (args, bad) in runs.items():
        proc = _run([osp.join(REPO_ROOT, args[0])] + args[1:], cwd=str(tmp_path))
        assert proc.returncode == 1, (tool, proc.stdout[-2000:], proc.stderr[-2000:])
        assert 'Traceback' not in proc.stderr, (tool, proc.stderr[-3000:])
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith(f'{tool}: error: ') and bad in last, (tool, last)
