"""tools/demo.py (`make demo`) as a user sees it, on a short schedule: the
progress bar with its ETA, the table of numbers before and after training
beside the target, each task's time and the total time."""
import re

import pytest

from tool_helpers import run_tool

pytestmark = pytest.mark.slow


def test_demo_prints_progress_table_and_total_time(tmp_path):
    # one epoch of the classification demo (30 iterations)
    proc = run_tool('demo.py', '--tasks', 'cls', '--max-iters', '1',
                    '--work-dir', tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    bars = re.findall(r'\[demo\] cls \[([#.]{24})\] (\d+)/(\d+) iters '
                      r'loss [\d.]+, \d+:\d\d elapsed, ETA (\d+:\d\d)', out)
    assert bars, out[-3000:]
    bar, done, total, eta = bars[-1]
    assert done == total == '30' and bar == '#' * 24 and eta == '0:00'
    assert re.search(r'\| classification \(8 classes\) \| top-1 \(%\) \| '
                     r'[\d.]+ \| [\d.]+ \| >= 90 \((met|NOT met)\) \|', out)
    assert re.search(r'\| classification \(8 classes\) \| time \(min:s\): '
                     r'training / whole task \| \| \d+:\d\d / \d+:\d\d \|',
                     out)
    assert re.search(r'\[demo\] total time \d+:\d\d \(min:s\) for 1 task',
                     out)
    assert list((tmp_path / 'cls' / 'predictions').glob('*.png'))
