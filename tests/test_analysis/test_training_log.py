"""read_scalars: mmengine json logs of one work dir, resumed runs included."""
import json

from adpe_mm.analysis import read_scalars


def write_run(work_dir, timestamp, records):
    vis = work_dir / timestamp / 'vis_data'
    vis.mkdir(parents=True)
    (vis / 'scalars.json').write_text(''.join(json.dumps(r) + '\n' for r in records))


def test_resumed_runs_join_in_step_order_and_the_later_value_wins(tmp_path):
    write_run(tmp_path, '20260101_000000', [dict(adv_norm=.1, iter=1, step=1), dict(adv_norm=.2, iter=2, step=2)])
    write_run(tmp_path, '20260102_000000', [dict(adv_norm=.25, iter=2, step=2), dict(adv_norm=.3, iter=3, step=3),
                                            dict(accuracy=50., mode='val', step=3)])
    scalars = read_scalars(str(tmp_path))
    assert scalars['adv_norm'] == ([1, 2, 3], [.1, .25, .3])
    assert 'accuracy' not in scalars
