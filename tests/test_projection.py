"""2-D maps of embeddings: deterministic by seed, one row per point, clear errors; UMAP in a slow test only."""
import numpy as np
import pytest

from crossemo_core.data.loaders.synthetic import make_synthetic
from crossemo_core.data.protocol import make_abnormal_pairs
from crossemo_core.errors import DataError
from crossemo_core.projection import PAIR_STATUS, embedding_map, project, sample_pairs, umap_available


@pytest.fixture(scope="module")
def pairs():
    corpus = make_synthetic(n_speakers=4, clips_per_speaker=10, face_dim=3, voice_dim=4, face_length=(2, 3),
                            voice_length=(2, 3), seed=0)
    return make_abnormal_pairs(corpus, 0.5, seed=0)[0]


def _embeddings(n, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, dim)), rng.normal(size=(n, dim))


def test_tsne_is_deterministic_by_seed():
    for n in (40, 205):  # exact t-SNE below 200 points, Barnes-Hut above
        x = np.random.default_rng(0).normal(size=(n, 5))
        a, b = project(x, "tsne", seed=3), project(x, "tsne", seed=3)
        assert a.shape == (n, 2) and np.isfinite(a).all()
        np.testing.assert_allclose(a, b)


def test_small_inputs_get_a_smaller_perplexity():
    assert project(np.random.default_rng(0).normal(size=(6, 3)), "tsne").shape == (6, 2)


@pytest.mark.parametrize("points, message", [
    (np.zeros((3, 2)), "at least 4"),
    (np.zeros(5), "2-D"),
    (np.full((6, 2), np.nan), "NaN"),
])
def test_bad_points_raise_clear_errors(points, message):
    with pytest.raises(DataError, match=message):
        project(points)


def test_unknown_method():
    with pytest.raises(DataError, match="unknown projection"):
        project(np.zeros((5, 2)), "pca")


def test_sample_pairs():
    assert list(sample_pairs(5, None)) == [0, 1, 2, 3, 4]
    assert list(sample_pairs(5, 10)) == [0, 1, 2, 3, 4]
    s = sample_pairs(100, 10, seed=1)
    assert len(s) == 10 and len(set(s)) == 10 and list(s) == sorted(s)
    np.testing.assert_array_equal(s, sample_pairs(100, 10, seed=1))
    with pytest.raises(DataError):
        sample_pairs(100, 1)


def test_embedding_map_rows_and_labels(pairs):
    face, voice = _embeddings(len(pairs))
    table = embedding_map(face, voice, pairs, method="tsne", seed=0, max_pairs=30)
    assert len(table) == 60
    assert set(table.columns) >= {"x", "y", "modality", "emotion", "pair", "pair_kind", "status", "clip_id",
                                  "speaker"}
    assert (table["modality"] == "face").sum() == 30 and (table["modality"] == "voice").sum() == 30
    faces, voices = table[table["modality"] == "face"], table[table["modality"] == "voice"]
    assert (faces["status"] == PAIR_STATUS[0]).all()
    idx = voices["pair"].to_numpy()
    expected = np.where(pairs.is_abnormal[idx], PAIR_STATUS[2], PAIR_STATUS[1])
    np.testing.assert_array_equal(voices["status"].to_numpy(), expected)
    np.testing.assert_array_equal(voices["emotion"].to_numpy(), np.asarray(pairs.class_names)[pairs.voice_label[idx]])
    np.testing.assert_array_equal(voices["clip_id"].to_numpy(), pairs.voice_clip_id[idx])
    assert (faces["pair_kind"].to_numpy() == voices["pair_kind"].to_numpy()).all()


def test_embedding_map_checks_shapes(pairs):
    face, voice = _embeddings(len(pairs))
    with pytest.raises(DataError, match="pairs"):
        embedding_map(face[:-1], voice[:-1], pairs)
    one = pairs.subset(np.array([0]))
    with pytest.raises(DataError, match=r"^a map of face and voice points needs at least 2 pairs \(4 points\); got 1"):
        embedding_map(face[:1], voice[:1], one)  # "needs at least 4 points; got 2", where the page counts pairs


def test_umap_is_reported_available():
    assert umap_available()  # umap-learn is in requirements.txt


@pytest.mark.slow
def test_umap_is_deterministic_by_seed():
    x = np.random.default_rng(0).normal(size=(80, 6))
    a, b = project(x, "umap", seed=2), project(x, "umap", seed=2)
    assert a.shape == (80, 2)
    np.testing.assert_allclose(a, b)
