"""utils.console: one stderr handler on the root logger, writing to whatever stderr is at the time."""
import logging
import re

import pytest

from utils.console import StderrHandler, console_logging, setup_logging


@pytest.fixture
def root_logger():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    root.handlers = [h for h in handlers if not isinstance(h, StderrHandler)]
    yield root
    root.handlers, root.level = handlers, level


def test_logging_is_set_up_once_on_the_stderr_of_the_moment(root_logger, capsys):
    setup_logging()
    setup_logging()
    assert sum(isinstance(h, StderrHandler) for h in root_logger.handlers) == 1
    assert root_logger.level == logging.INFO
    logging.getLogger("train").info("epoch 1 done")
    logging.getLogger("train").debug("not shown")
    err = capsys.readouterr().err  # capsys replaced sys.stderr after the handler was made
    assert re.fullmatch(r"\d\d:\d\d:\d\d INFO epoch 1 done\n", err)


def test_the_level_is_the_callers(root_logger, capsys):
    setup_logging(logging.WARNING)
    assert root_logger.level == logging.WARNING
    logging.getLogger("x").info("quiet")
    assert capsys.readouterr().err == ""


def test_inside_console_logging_lines_still_reach_stderr(root_logger, capsys):
    with console_logging():
        logging.getLogger("x").warning("through tqdm")
    assert capsys.readouterr().err.endswith(" WARNING through tqdm\n")
