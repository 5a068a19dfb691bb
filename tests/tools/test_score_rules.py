"""The scorer refuses what the leaderboard would refuse; it scores only a complete, clean submission."""
import pandas as pd
import pytest

from tools.score import main, score_files
from utils.errors import DataError

TRUTH = "ImageID,ans\na,0\nb,5\nc,17\n"


def files(tmp_path, submission, truth=TRUTH):
    (tmp_path / "sub.csv").write_text(submission)
    (tmp_path / "truth.csv").write_text(truth)
    return tmp_path / "sub.csv", tmp_path / "truth.csv"


@pytest.mark.parametrize("submission, message", [
    ("ImageID,ans\na,0\nb,5\nc,17\nc,17\n", "line 5: ImageID 'c' appears more than once"),
    ("ImageID,ans\na,0\nb,5\n", "no prediction for 1 ImageID(s) of"),
    ("ImageID,ans\na,0\nb,5\nc,17\nd,1\n", "1 ImageID(s) not in"),
    ("ImageID,ans\na,0\nb,18\nc,17\n", "line 3: ans '18' is not a class id 0..17"),
    ("ImageID,ans\na,0\nb,-1\nc,17\n", "line 3: ans '-1'"),
    ("ImageID,ans\na,0\nb,²\nc,17\n", "line 3: ans '²'"),
    ("ImageID,ans\na,0\nb,1.5\nc,17\n", "line 3: ans '1.5'"),
    ("ImageID,ans\n", "no rows"),
])
def test_what_the_leaderboard_refuses_is_refused(tmp_path, submission, message):
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        score_files(*files(tmp_path, submission))


def test_a_clean_submission_is_scored_in_any_row_order(tmp_path, capsys):
    sub, truth = files(tmp_path, "ImageID,ans\nc,17\na,0\nb,4\n")
    scores = main([str(sub), str(truth)])
    assert scores["acc"] == pytest.approx(2 / 3)
    assert "macro-F1" in capsys.readouterr().out


def test_predictions_for_compare_carry_the_truths_person_and_need_it(tmp_path, capsys):
    from tools.score import main
    from utils.predictions import read_predictions

    truth = tmp_path / "truth.csv"
    truth.write_text("ImageID,ans,person\na.jpg,3,7\nb.jpg,4,7\nc.jpg,0,9\n")
    sub = tmp_path / "sub.csv"
    sub.write_text("ImageID,ans\nc.jpg,1\na.jpg,3\nb.jpg,5\n")
    main([str(sub), str(truth), "--predictions", str(tmp_path / "p.csv")])
    read = read_predictions(tmp_path / "p.csv")
    assert list(read.paths) == ["a.jpg", "b.jpg", "c.jpg"] and list(read.people) == ["7", "7", "9"]
    assert list(read.labels) == [3, 4, 0] and list(read.preds) == [3, 5, 1]
    assert pd.read_csv(tmp_path / "p.csv")["pred"].dtype.kind == "i"  # class ids as written, not 5.0
    plain = tmp_path / "plain.csv"
    plain.write_text("ImageID,ans\na.jpg,3\nb.jpg,4\nc.jpg,0\n")
    with pytest.raises(SystemExit) as stop:
        main([str(sub), str(plain), "--predictions", str(tmp_path / "q.csv")])
    assert stop.value.code == 2 and "no person column" in capsys.readouterr().err
    assert not (tmp_path / "q.csv").exists()
    with pytest.raises(SystemExit):
        main([str(sub), str(truth), "--predictions", str(truth)])  # never over its own input
    assert truth.read_text().startswith("ImageID,ans,person")
