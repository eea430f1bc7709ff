"""Caption metrics vs hand-computed values and an independent CIDEr-D."""

import math
from collections import Counter

import pytest

from keras_lgvq.metrics import caption_metrics as module_under_test
from keras_lgvq.metrics import evaluate_captions
from keras_lgvq.metrics import ptb_tokenize_python

# No Keras backend op runs in this file: one backend of a CI run covers it
# (tests/conftest.py, `host_only`).
pytestmark = pytest.mark.host_only

JAVA_OK, JAVA_REASON = module_under_test.java_status()
requires_java = pytest.mark.skipif(
    not JAVA_OK, reason=f"Java runtime truly absent: {JAVA_REASON}"
)
NAMES = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L",
         "CIDEr-D")
CORPUS_REFS = {
    "a": ["a red bird sitting on a branch.",
          "A small red bird on a tree branch"],
    "b": ["This bird has a white belly and grey wings.",
          "a grey bird with a white belly"],
    "c": ["a black bird with a long tail", "a dark bird, long tail"],
}
CORPUS_PREDS = {
    "a": "a red bird on a branch",
    "b": "a bird with a white belly and grey wings",
    "c": "a black bird with a short tail",
}


def test_bleu_hand_computed():
    # hyp "the cat sat on the mat" vs ref "the cat is on the mat":
    # 1-grams 5/6, 2-grams 3/5 (the cat, on the, the mat), 3-grams 1/4
    # (on the mat), 4-grams 0/3; equal lengths, so no brevity penalty.
    scores = evaluate_captions(
        {0: ["the cat is on the mat"]}, {0: "the cat sat on the mat"},
        use_java=False,
    )
    assert scores["BLEU-1"] == pytest.approx(5 / 6, abs=1e-7)
    assert scores["BLEU-2"] == pytest.approx(math.sqrt(5 / 6 * 3 / 5),
                                             abs=1e-7)
    assert scores["BLEU-3"] == pytest.approx((5 / 6 * 3 / 5 / 4) ** (1 / 3),
                                             abs=1e-7)
    assert scores["BLEU-4"] < 1e-3
    # A shorter hypothesis pays the brevity penalty exp(1 - r / c).
    short = evaluate_captions(
        [["the cat is on the mat"]], ["the cat on the mat"], use_java=False
    )
    assert short["BLEU-1"] == pytest.approx(math.exp(1 - 6 / 5), abs=1e-7)


def test_rouge_l_hand_computed():
    # LCS("the cat on the mat", "the cat is on the mat") = 5 words:
    # P = 5/5, R = 5/6, F_beta with beta = 1.2 (the COCO toolkit's value).
    p, r, beta = 1.0, 5 / 6, 1.2
    want = (1 + beta**2) * p * r / (r + beta**2 * p)
    scores = evaluate_captions(
        [["the cat is on the mat"]], ["the cat on the mat"], use_java=False
    )
    assert scores["ROUGE-L"] == pytest.approx(want, abs=1e-9)


def _cider_d_reference(refs, preds, n=4, sigma=6.0):
    """CIDEr-D (Vedantam et al. 2015) as the COCO toolkit defines it:
    tf-idf n-gram vectors (raw counts x log(|I| / df), df over the images'
    references), clipped cosine to each reference, Gaussian length penalty,
    mean over n = 1..4 and references, times 10."""

    def grams(words, k):
        return Counter(tuple(words[i:i + k]) for i in range(len(words) - k + 1))

    df = Counter()
    for ref_list in refs.values():
        seen = set()
        for r in ref_list:
            for k in range(1, n + 1):
                seen |= set(grams(r.split(), k))
        df.update(seen)
    log_images = math.log(len(refs))

    def vectors(sentence):
        words = sentence.split()
        out = []
        for k in range(1, n + 1):
            vec = {g: c * (log_images - math.log(max(1.0, df[g])))
                   for g, c in grams(words, k).items()}
            out.append((vec, math.sqrt(sum(v * v for v in vec.values()))))
        return out, len(words)

    total = 0.0
    for key, ref_list in refs.items():
        hyp, hyp_len = vectors(preds[key])
        score = 0.0
        for r in ref_list:
            ref, ref_len = vectors(r)
            penalty = math.exp(-((hyp_len - ref_len) ** 2) / (2 * sigma**2))
            for (hv, hn), (rv, rn) in zip(hyp, ref):
                if hn and rn:
                    dot = sum(min(v, rv.get(g, 0.0)) * rv.get(g, 0.0)
                              for g, v in hv.items())
                    score += penalty * dot / (hn * rn) / n
        total += 10.0 * score / len(ref_list)
    return total / len(refs)


def test_cider_d_matches_independent_reference():
    scores = evaluate_captions(CORPUS_REFS, CORPUS_PREDS, use_java=False)
    refs = {k: [ptb_tokenize_python(r) for r in v]
            for k, v in CORPUS_REFS.items()}
    preds = {k: ptb_tokenize_python(v) for k, v in CORPUS_PREDS.items()}
    want = _cider_d_reference(refs, preds)
    assert want > 0.5
    assert scores["CIDEr-D"] == pytest.approx(want, rel=1e-9)
    # One image: every n-gram is in every image's references, idf = 0.
    single = evaluate_captions([["a red bird"]], ["a red bird"], use_java=False)
    assert single["CIDEr-D"] == 0.0


def test_without_java_meteor_is_unavailable_not_replaced(monkeypatch,
                                                         tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no java on PATH
    module_under_test.java_status.cache_clear()
    try:
        scores = evaluate_captions(CORPUS_REFS, CORPUS_PREDS)
        assert scores["METEOR"] is None
        assert "default-jre-headless" in scores["unavailable"]["METEOR"]
        assert "not replaced" in scores["unavailable"]["METEOR"]
        assert scores["tokenizer"] == "ptb-python"
        assert tuple(k for k in scores if k in NAMES) == NAMES
        assert all(isinstance(scores[k], float) for k in NAMES
                   if k != "METEOR")
        with pytest.raises(RuntimeError, match="Java"):
            evaluate_captions(CORPUS_REFS, CORPUS_PREDS, use_java=True)
    finally:
        module_under_test.java_status.cache_clear()


def test_python_tokenizer_examples():
    assert ptb_tokenize_python("A bird's wing, isn't it?") == (
        "a bird 's wing is n't it"
    )
    assert ptb_tokenize_python('The "black-and-white" bird... (small)') == (
        "the black-and-white bird -lrb- small -rrb-"
    )
    assert ptb_tokenize_python("It can't cost $5,000 -- or 3.5%!") == (
        "it ca n't cost $ 5,000 or 3.5 %"
    )


def test_bad_inputs():
    with pytest.raises(ValueError, match="same image ids"):
        evaluate_captions({"a": ["x"]}, {"b": "x"}, use_java=False)
    with pytest.raises(ValueError, match="align"):
        evaluate_captions([["x"]], ["x", "y"], use_java=False)
    with pytest.raises(ValueError, match="non-empty"):
        evaluate_captions([[""]], ["x"], use_java=False)
    with pytest.raises(ValueError, match="list of caption"):
        evaluate_captions(["a red bird"], ["x"], use_java=False)
    with pytest.raises(ValueError, match="caption string"):
        evaluate_captions([["x"]], [3], use_java=False)
    with pytest.raises(ValueError, match="both be dicts"):
        evaluate_captions({"a": ["x"]}, ["x"], use_java=False)


# An empty prediction is scored (as 0), not refused.
def test_empty_prediction_scores_zero():
    scores = evaluate_captions([["a red bird"], ["a blue bird"]],
                             ["a red bird", ""], use_java=False)
    assert 0.0 < scores["ROUGE-L"] < 1.0


@requires_java
def test_java_path_meteor_hand_computed():
    # METEOR-1.5 on a hypothesis that matches all m = 7 reference words in
    # 2 chunks: P = R = 1 so Fmean = 1, and the score is
    # 1 - gamma * (chunks / m) ** beta with English defaults gamma = 0.6,
    # beta = 0.2.
    ref = "a red bird sits on a branch"
    moved = evaluate_captions([[ref]], ["on a branch a red bird sits"],
                              use_java=True)
    assert moved["tokenizer"] == "ptb-java" and moved["unavailable"] == {}
    assert moved["METEOR"] == pytest.approx(1 - 0.6 * (2 / 7) ** 0.2,
                                            abs=1e-6)


@requires_java
def test_java_and_python_tokenizers_agree_on_captions():
    captions = [
        "A man's dog, isn't it? \"Quoted\" (paren) [bracket] {brace}",
        ("The bird -- a small one... sits on a black-and-white fence; "
         "it's 3.5 m tall!"),
        ("I can't, won't, don't; they'd've gone. U.S. cars cost $5,000 & "
         "more/less."),
        "She said: 'hello' -- and left... 50% of 2/3 birds' wings.",
        "gonna wanna cannot o'clock e-mail it's ok.",
        "a bird with a long ,pointy beak .and black crown",
        "This bird has a white belly , grey wings and a black bill.",
        "a red/blue car ... wow!!! what?!",
    ]
    gts, _ = module_under_test._ptb_java(
        list(range(len(captions))), [[c] for c in captions], captions
    )
    for i, caption in enumerate(captions):
        assert ptb_tokenize_python(caption) == gts[i][0], caption
    # The whole report is the same up to METEOR, which needs Java.
    with_java = evaluate_captions(CORPUS_REFS, CORPUS_PREDS, use_java=True)
    without = evaluate_captions(CORPUS_REFS, CORPUS_PREDS, use_java=False)
    for name in NAMES:
        if name != "METEOR":
            assert with_java[name] == pytest.approx(without[name], abs=1e-12)
    assert 0.0 < with_java["METEOR"] < 1.0
