"""VQA accuracy / WUPS vs hand-computed values over Debian's WordNet 3.0.

Needs `apt-get install wordnet-base` (scripts/test.sh installs it); without
it the tests fail with that command.
"""

import gzip
import os

import pytest

from keras_lgvq.metrics import WupsScorer
from keras_lgvq.metrics import evaluate_vqa
from keras_lgvq.metrics import load_wordnet
from keras_lgvq.metrics import vqa_metrics as module_under_test

# No Keras backend op runs in this file: one backend of a CI run covers it
# (tests/conftest.py, `host_only`).
pytestmark = pytest.mark.host_only


@pytest.fixture(scope="module")
def wordnet():
    return load_wordnet()


def _wup_from_paths(s1, s2):
    """Wu-Palmer from root paths: 2 * depth(lcs) / (depth(s1) + depth(s2)),
    depths counted in nodes from `entity`, best over all path pairs."""
    best = 0.0
    for p1 in s1.hypernym_paths():
        for p2 in s2.hypernym_paths():
            common = 0
            for a, b in zip(p1, p2):
                if a != b:
                    break
                common += 1
            best = max(best, 2 * common / (len(p1) + len(p2)))
    return best


def _senses(wordnet, a, b):
    return [(x, y) for x in wordnet.synsets(a, pos="n")
            for y in wordnet.synsets(b, pos="n")]


def test_dog_cat_wu_palmer_by_hand(wordnet):
    # WordNet 3.0: dog.n.01 -> canine -> carnivore, cat.n.01 -> feline ->
    # carnivore; carnivore.n.01 is node 12 on the path from entity.n.01, so
    # each word is at depth 14 and wup = 2 * 12 / (14 + 14) = 6 / 7 (the
    # NLTK WordNet HOWTO's 0.857 for dog/cat).
    dog, cat = wordnet.synset("dog.n.01"), wordnet.synset("cat.n.01")
    path = next(p for p in dog.hypernym_paths()
                if "carnivore.n.01" in [s.name() for s in p])
    assert len(path) == 14 and path[11].name() == "carnivore.n.01"
    assert _wup_from_paths(dog, cat) == pytest.approx(6 / 7)
    assert dog.wup_similarity(cat) == pytest.approx(6 / 7)
    scorer = WupsScorer(wordnet)
    assert scorer.word_similarity("dog", "cat") == pytest.approx(6 / 7)


@pytest.mark.parametrize(
    "a,b", [("dog", "cat"), ("red", "blue"), ("car", "bicycle"),
            ("kitchen", "bathroom"), ("two", "three"), ("table", "chair")]
)
def test_word_similarity_is_max_over_noun_senses(wordnet, a, b):
    pairs = _senses(wordnet, a, b)
    want = max(x.wup_similarity(y) for x, y in pairs)
    scorer = WupsScorer(wordnet)
    assert scorer.word_similarity(a, b) == pytest.approx(want, abs=1e-12)
    assert scorer.word_similarity(b, a) == pytest.approx(want, abs=1e-12)
    # Where both senses have a single root path (a tree), nltk's Wu-Palmer
    # equals the textbook 2 * depth(lcs) / (depth(a) + depth(b)).
    for x, y in pairs:
        if len(x.hypernym_paths()) == 1 == len(y.hypernym_paths()):
            assert x.wup_similarity(y) == pytest.approx(
                _wup_from_paths(x, y), abs=1e-12
            )


def test_wups_thresholds_and_sets(wordnet):
    scorer = WupsScorer(wordnet)
    assert scorer.wups("dog", "cat", 0.9) == pytest.approx(0.1 * 6 / 7)
    assert scorer.wups("dog", "cat", 0.0) == pytest.approx(6 / 7)
    assert scorer.wups("Dog ", "dog", 0.9) == 1.0
    assert scorer.wups("xyzzy", "dog", 0.0) == 0.0  # not in WordNet
    # Sets: min(prod_a max_t, prod_t max_a) = min(1 * 6/7, 1).
    assert scorer.wups("dog, cat", "dog", 0.0) == pytest.approx(6 / 7)
    assert scorer.wups("dog", "dog, cat", 0.0) == pytest.approx(6 / 7)


def test_evaluate_vqa_per_type(wordnet):
    preds = ["dog", "two", "red", "dog", "kitchen"]
    truth = ["cat", "two", "red", "dog", "xyzzy"]
    types = ["object", "number", "color", "object", "location"]
    out = evaluate_vqa(preds, truth, question_types=types, wordnet=wordnet)
    dog_cat = 6 / 7
    assert out["count"] == 5
    assert out["accuracy"] == pytest.approx(3 / 5)
    assert out["WUPS@0.9"] == pytest.approx((0.1 * dog_cat + 3) / 5)
    assert out["WUPS@0.0"] == pytest.approx((dog_cat + 3) / 5)
    obj = out["per_type"]["object"]
    assert obj["count"] == 2 and obj["accuracy"] == 0.5
    assert obj["WUPS@0.0"] == pytest.approx((dog_cat + 1) / 2)
    assert out["per_type"]["location"]["WUPS@0.0"] == 0.0
    assert set(out["per_type"]) == {"object", "number", "color", "location"}


def test_bad_inputs(wordnet):
    with pytest.raises(ValueError, match="same length"):
        evaluate_vqa(["a"], ["a", "b"], wordnet=wordnet)
    with pytest.raises(ValueError, match="strings"):
        evaluate_vqa(["a", 3], ["a", "b"], wordnet=wordnet)
    with pytest.raises(ValueError, match="question_types"):
        evaluate_vqa(["a"], ["a"], question_types=[], wordnet=wordnet)
    with pytest.raises(ValueError, match="thresholds"):
        evaluate_vqa(["a"], ["a"], thresholds=(1.5,), wordnet=wordnet)
    with pytest.raises(ValueError, match="empty"):
        evaluate_vqa([], [], wordnet=wordnet)


def test_missing_wordnet_names_the_debian_package(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install -y "
                       "wordnet-base"):
        load_wordnet(str(tmp_path))


def test_lexnames_table_matches_debian_man_page(wordnet):
    man = "/usr/share/man/man5/lexnames.5WN.gz"
    if not os.path.isfile(man):
        pytest.skip(f"{man} absent (man pages excluded on this system)")
    with gzip.open(man, "rt", encoding="latin-1") as f:
        text = f.read()
    for i, name in enumerate(module_under_test.WORDNET_LEXNAMES):
        assert f"{i:02d}\t{name}\t" in text or f"{i:02d}\t{name} " in text
    assert wordnet.synset("dog.n.01").lexname() == "noun.animal"
