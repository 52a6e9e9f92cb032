"""CREMA-D crowd votes: the table reader, the human-reference measures, and the pairs of the readings rule.

Small tables are written here by hand; the real table's checks skip when ``shared/data`` is absent."""
from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest

from crossemo_core.data.crowd_votes import crowd_pairs, load_cremad_votes, majority_uar, rater_uar, some_raters
from crossemo_core.errors import DataError

SHARED = Path(os.environ.get("CROSSEMO_SHARED_DATA")
              or Path(__file__).resolve().parents[1].parent / "shared" / "data")
CREMA = SHARED / "crema-d"
HEADER = '"","A","D","F","H","N","S","fileName","numResponses","agreement","emoVote"\n'


def write_table(folder: Path, clips: dict[str, list[list[int]]]) -> Path:
    """clips: name -> vote counts (A D F H N S) for voice, face and audio-visual, in that order."""
    lines = [HEADER]
    for i, (name, conditions) in enumerate(clips.items()):
        for c, counts in enumerate(conditions):
            lines.append(f'"{c + 1}{i:05d}",' + ",".join(map(str, counts)) + f',"{name}",{sum(counts)},1,"A"\n')
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tabulatedVotes.csv").write_text("".join(lines))
    return folder


ANGRY, HAPPY, NEUTRAL = [4, 0, 0, 0, 0, 0], [0, 0, 0, 4, 0, 0], [0, 0, 0, 0, 4, 0]


def test_table_is_read_into_shares_and_valences(tmp_path: Path) -> None:
    root = write_table(tmp_path, {"1001_IEO_ANG_HI": [[2, 0, 0, 2, 0, 0], ANGRY, ANGRY],
                                  "1001_TIE_HAP_XX": [[0, 0, 0, 1, 3, 0], HAPPY, HAPPY],
                                  "1002_IEO_NEU_XX": [NEUTRAL, [0, 1, 0, 0, 1, 2], NEUTRAL]})
    votes = load_cremad_votes(root)
    assert len(votes) == 3 and votes.actor.tolist() == ["1001", "1001", "1002"]
    assert votes.level.tolist() == ["HI", "XX", "XX"]
    assert votes.intended_valence.tolist() == [0, 2, 1]
    np.testing.assert_allclose(votes.shares("voice")[0], [0.5, 0, 0, 0.5, 0, 0])
    np.testing.assert_allclose(votes.valence_shares("voice"), [[0.5, 0, 0.5], [0, 0.75, 0.25], [0, 1, 0]])
    np.testing.assert_allclose(votes.valence_shares("face")[2], [0.75, 0.25, 0])  # disgust + sad are negative
    with pytest.raises(DataError, match="unknown rating condition"):
        votes.shares("smell")


@pytest.mark.parametrize("clips, message", [
    ({"1001_IEO_ANG_HI": [ANGRY, ANGRY]}, "has no audiovisual votes"),
    ({"1001_IEO_ANG_HI": [ANGRY, [-1, 0, 0, 1, 0, 0], ANGRY]}, "non-negative with at least one vote"),
    ({"1001_IEO_ANG_HI": [ANGRY, [0] * 6, ANGRY]}, "non-negative with at least one vote"),
    ({"1001_IEO_XYZ_HI": [ANGRY, ANGRY, ANGRY]}, "is not ACTOR_SENTENCE_EMOTION_LEVEL"),
])
def test_a_malformed_table_is_refused_in_one_line(tmp_path: Path, clips: dict, message: str) -> None:
    with pytest.raises(DataError, match=message) as info:
        load_cremad_votes(write_table(tmp_path, clips))
    assert "\n" not in str(info.value)


def test_missing_or_unreadable_tables_are_refused(tmp_path: Path) -> None:
    table = tmp_path / "tabulatedVotes.csv"
    with pytest.raises(DataError, match="no such file"):
        load_cremad_votes(tmp_path)
    table.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DataError, match="not a readable CSV table"):
        load_cremad_votes(tmp_path)
    table.write_text(HEADER + '"100001",1,x,0,0,0,0,"1001_IEO_ANG_HI",1,1,"A"\n')
    with pytest.raises(DataError, match="line 2: the vote counts"):
        load_cremad_votes(tmp_path)
    table.write_text('"","A","D","F","H","N","S","name"\n"100001",1,0,0,0,0,0,"1001_IEO_ANG_HI"\n')
    with pytest.raises(DataError, match="not CREMA-D's vote table .*'fileName'"):
        load_cremad_votes(tmp_path)
    table.write_text(HEADER)
    with pytest.raises(DataError, match="the table has no rows"):
        load_cremad_votes(tmp_path)


def test_a_table_saved_with_a_byte_order_mark_reads_the_same(tmp_path: Path) -> None:
    plain = load_cremad_votes(write_table(tmp_path / "plain", {"1001_IEO_ANG_HI": [ANGRY, HAPPY, NEUTRAL]}))
    marked = tmp_path / "marked"
    marked.mkdir()
    (marked / "tabulatedVotes.csv").write_bytes(b"\xef\xbb\xbf" + (tmp_path / "plain" / "tabulatedVotes.csv")
                                                .read_bytes())
    np.testing.assert_array_equal(load_cremad_votes(marked).votes["face"], plain.votes["face"])


def test_a_condition_rated_twice_is_refused_with_both_lines(tmp_path: Path) -> None:
    root = write_table(tmp_path, {"1001_IEO_ANG_HI": [ANGRY, HAPPY, NEUTRAL]})
    table = root / "tabulatedVotes.csv"
    table.write_text(table.read_text() + "\n" + '"100009",0,0,0,1,0,0,"1001_IEO_ANG_HI",1,1,"H"\n')
    with pytest.raises(DataError, match="line 6: clip 1001_IEO_ANG_HI has voice votes on line 2 already"):
        load_cremad_votes(root)


def test_one_rater_and_majority_recall() -> None:
    shares = np.array([[0.6, 0.4], [0.2, 0.8], [0.5, 0.5], [1.0, 0.0]])
    truth = np.array([0, 0, 1, 1])
    # class 0: (0.6 + 0.2) / 2; class 1: (0.5 + 0.0) / 2
    assert rater_uar(shares, truth) == pytest.approx((0.4 + 0.25) / 2)
    # majority: class 0 right once of two; class 1: a tie (half credit) and a miss
    assert majority_uar(shares, truth) == pytest.approx((0.5 + 0.25) / 2)


def test_some_raters_are_drawn_from_each_clips_votes() -> None:
    counts = np.array([[5, 0, 2, 0, 3, 0], [0, 1, 0, 0, 0, 1]])
    drawn = some_raters(counts, 3, np.random.default_rng(0))
    assert drawn[0].sum() == 3 and (drawn[0] <= counts[0]).all()
    np.testing.assert_array_equal(drawn[1], counts[1])  # two raters only: all of them


def test_crowd_pairs_follow_the_protocol_and_the_rule(tmp_path: Path) -> None:
    clips = {}
    for actor in ("1001", "1002"):
        for k, (code, votes) in enumerate([("ANG", ANGRY), ("HAP", HAPPY), ("NEU", NEUTRAL)] * 2):
            clips[f"{actor}_S{k:02d}_{code}_XX"] = [votes, votes, votes]
    votes = load_cremad_votes(write_table(tmp_path, clips))
    pairs = crowd_pairs(votes, rate=0.5, seed=0)
    assert pairs.abnormal.sum() == 6  # half of each actor's six clips
    assert (votes.actor[pairs.voice_source] == votes.actor).all()
    # unanimous raters who read the intended emotion: the rule is 1 exactly on abnormal pairs, 0 on normal ones
    np.testing.assert_allclose(pairs.disagreement, pairs.abnormal.astype(float))
    assert not crowd_pairs(votes, rate=0.0).abnormal.any()
    np.testing.assert_allclose(crowd_pairs(votes, rate=0.5, seed=0, raters=1).disagreement, pairs.disagreement)
    assert pairs.n_other_actor == 0
    with pytest.raises(DataError, match="raters must be at least 1"):
        crowd_pairs(votes, raters=0)


def test_the_script_writes_every_measure(tmp_path: Path) -> None:
    clips = {}
    rng = np.random.default_rng(0)
    for actor in ("1001", "1002", "1003"):
        for k, code in enumerate(["ANG", "HAP", "NEU", "SAD"] * 3):
            level = "XX" if code == "NEU" else "HI"
            clips[f"{actor}_S{k:02d}_{code}_{level}"] = [(rng.integers(0, 4, 6) + np.eye(6, dtype=int)[k % 6]).tolist()
                                                        for _ in range(3)]  # at least one vote each
    root = write_table(tmp_path / "crema-d", clips)
    spec = importlib.util.spec_from_file_location(
        "cremad_human_reference", Path(__file__).resolve().parents[1] / "scripts" / "cremad_human_reference.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "human.json"
    assert script.main(["--data", str(root.parent), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["n_clips"] == 36 and result["n_actors"] == 3
    assert set(result["readings_rule"]) == {"1 per side", "2 per side", "3 per side", "5 per side", "all raters"}
    assert "valence_recall_one_rater_neutral" not in result["reading"]["high_intensity"]["voice"]
    assert 0.0 <= result["perceived_inconsistency_of_recorded_clips"]["majorities_differ"] <= 1.0


@pytest.mark.skipif(not (CREMA / "tabulatedVotes.csv").is_file(), reason=f"{CREMA} not available")
def test_the_real_table() -> None:
    votes = load_cremad_votes(CREMA)
    assert len(votes) == 7442 and len(set(votes.actor.tolist())) == 91
    assert {n: int((votes.intended == i).sum()) for i, n in enumerate(("ANG", "DIS", "FEA", "HAP", "NEU", "SAD"))} \
        == {"ANG": 1271, "DIS": 1271, "FEA": 1271, "HAP": 1271, "NEU": 1087, "SAD": 1271}
    # people read the face's valence better than the voice's (docs/readers.md, "People on the same task")
    face = rater_uar(votes.valence_shares("face"), votes.intended_valence)
    voice = rater_uar(votes.valence_shares("voice"), votes.intended_valence)
    assert 0.5 < voice < face < 0.9
