"""utils.signals and the entry points: a signal while a file is being written leaves the earlier file whole and no
temp file behind; files that belong together are renamed together."""
import os
import signal

import pytest

from utils.cli import cli_main
from utils.io import atomic_write_with
from utils.signals import Terminated, signals_deferred, sigterm_raises


def writer_killed_by(signum):
    """A writer that has written half its file when the signal arrives."""
    def write(tmp):
        tmp.write_text("half of a new ")
        os.kill(os.getpid(), signum)
        tmp.write_text("half of a new file")  # never reached: the signal unwinds the writer
    return write


@pytest.fixture(autouse=True)
def python_sigint_handler():
    """Ctrl-C as an interactive process gets it: a process started in the background (`cmd &`, nohup, mutmut's
    workers) inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize(("signum", "code", "line"), [
    (signal.SIGTERM, 143, "terminated (SIGTERM): earlier outputs kept, nothing half-written"),
    (signal.SIGINT, 130, "interrupted: earlier outputs kept, nothing half-written"),
])
def test_a_signal_while_writing_keeps_the_earlier_output_and_no_temp_file(tmp_path, capsys, signum, code, line):
    out = tmp_path / "submission.csv"
    out.write_text("ImageID,ans\nearlier,1\n")
    handler_before = signal.getsignal(signal.SIGTERM)

    @cli_main
    def predicting():
        atomic_write_with(out, writer_killed_by(signum))

    with pytest.raises(SystemExit) as exit_info:
        predicting()
    assert exit_info.value.code == code and capsys.readouterr().err.strip().splitlines()[-1] == line
    assert out.read_text() == "ImageID,ans\nearlier,1\n" and sorted(tmp_path.iterdir()) == [out]
    assert signal.getsignal(signal.SIGTERM) is handler_before  # the entry point put the earlier handler back


def test_signals_wait_until_the_files_that_belong_together_are_in_place(tmp_path):
    model, sidecar = tmp_path / "m.onnx", tmp_path / "m.json"
    with sigterm_raises():
        with pytest.raises(Terminated):
            with signals_deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                model.write_text("graph")
                sidecar.write_text("preprocessing")  # the signal waited: both are written
    assert model.read_text() == "graph" and sidecar.read_text() == "preprocessing"
