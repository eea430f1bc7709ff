"""VQA metrics: accuracy and WUPS (Malinowski & Fritz, 2014), per type.

WUPS scores an answer by its WordNet Wu-Palmer similarity to the ground
truth instead of exact match. For one answer word `a` and truth `t`:
`wup(a, t)` = 1 if they are equal, else the maximum Wu-Palmer similarity
over all pairs of their WordNet *noun* senses (0 when either has none),
multiplied by 0.1 when below the threshold. For answer sets A and T
(comma-separated) the question's score is
`min(prod_a max_t wup(a, t), prod_t max_a wup(a, t))`; WUPS is the mean.
Standard reports are WUPS@0.9 and WUPS@0.0 (COCO-QA, Ren et al. 2015).

WordNet 3.0 is read offline with nltk's `WordNetCorpusReader` from the
Debian package `wordnet-base` (`/usr/share/wordnet`); nothing is downloaded.
"""

import functools
import io
import os
import warnings
from collections import defaultdict

WORDNET_DIRS = ("/usr/share/wordnet",)
WORDNET_PACKAGE = "wordnet-base"
_REQUIRED_FILES = ("data.noun", "index.noun", "data.adj", "noun.exc")
# WordNet 3.0's lexicographer files, in file-number order (wndb(5WN),
# lexnames(5WN)). Debian ships no `lexnames` file, which nltk's reader
# insists on opening; it only labels synsets (`Synset.lexname()`).
WORDNET_LEXNAMES = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act",
    "noun.animal", "noun.artifact", "noun.attribute", "noun.body",
    "noun.cognition", "noun.communication", "noun.event", "noun.feeling",
    "noun.food", "noun.group", "noun.location", "noun.motive",
    "noun.object", "noun.person", "noun.phenomenon", "noun.plant",
    "noun.possession", "noun.process", "noun.quantity", "noun.relation",
    "noun.shape", "noun.state", "noun.substance", "noun.time", "verb.body",
    "verb.change", "verb.cognition", "verb.communication",
    "verb.competition", "verb.consumption", "verb.contact",
    "verb.creation", "verb.emotion", "verb.motion", "verb.perception",
    "verb.possession", "verb.social", "verb.stative", "verb.weather",
    "adj.ppl",
)
_SYNTACTIC_CATEGORY = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}


def _lexnames_text():
    return "".join(
        f"{i:02d}\t{name}\t{_SYNTACTIC_CATEGORY[name.split('.')[0]]}\n"
        for i, name in enumerate(WORDNET_LEXNAMES)
    )


def find_wordnet_dir(path=None):
    """Return the folder with WordNet 3.0's database files, or raise.

    Args:
        path: str or None. A folder holding `data.noun`, `index.noun`, ...;
            None: `$KERAS_LGVQ_WORDNET`, then `/usr/share/wordnet`.

    Raises:
        FileNotFoundError: no such folder; the message names the Debian
            package to install.

    Examples:

    ```python
    keras_lgvq.metrics.vqa_metrics.find_wordnet_dir()
    ```
    """
    if path is not None:
        candidates = [path]
    else:
        candidates = [os.environ.get("KERAS_LGVQ_WORDNET")] + list(
            WORDNET_DIRS
        )
    for folder in candidates:
        if folder and all(
            os.path.isfile(os.path.join(folder, name))
            for name in _REQUIRED_FILES
        ):
            return folder
    searched = ", ".join(c for c in candidates if c)
    raise FileNotFoundError(
        f"WordNet 3.0 database files ({', '.join(_REQUIRED_FILES)}) not found "
        f"in: {searched}. WUPS needs them offline; install the Debian package "
        f"with:\n    apt-get install -y {WORDNET_PACKAGE}\nor point "
        "$KERAS_LGVQ_WORDNET at a folder holding WordNet 3.0's dict files."
    )


@functools.lru_cache(maxsize=4)
def load_wordnet(path=None):
    """Open WordNet 3.0 with nltk's reader over Debian's files (cached).

    Two gaps of the Debian layout are bridged without writing any file: the
    missing `lexnames` table is served from `WORDNET_LEXNAMES`, and the
    version mapping that would need `index.sense` is skipped (it only
    matters for Open Multilingual WordNet, which is not used).

    Args:
        path: str or None. See `find_wordnet_dir`.

    Returns:
        `nltk.corpus.reader.wordnet.WordNetCorpusReader`.

    Examples:

    ```python
    wn = keras_lgvq.metrics.vqa_metrics.load_wordnet()
    wn.synsets("dog", pos="n")[0].wup_similarity(wn.synset("cat.n.01"))
    ```
    """
    try:
        import nltk.data
        from nltk.corpus.reader.wordnet import WordNetCorpusReader
    except ImportError as error:
        raise ImportError(
            "WUPS needs `nltk` (only its WordNet reader; no nltk data is "
            "downloaded): pip install nltk"
        ) from error
    folder = find_wordnet_dir(path)
    # nltk >= 3.9 reads corpora only below its data paths; this is its
    # documented way to authorise a folder.
    if folder not in nltk.data.path:
        nltk.data.path.append(folder)

    class DebianWordNetReader(WordNetCorpusReader):
        def open(self, file):
            if file == "lexnames" and not os.path.isfile(
                os.path.join(folder, "lexnames")
            ):
                return io.StringIO(_lexnames_text())
            return super().open(file)

        def map_wn(self, version="wordnet"):
            return None

    with warnings.catch_warnings():
        # "The multilingual functions are not available ...": expected, no
        # Open Multilingual WordNet is attached.
        warnings.filterwarnings("ignore", message=".*multilingual.*")
        return DebianWordNetReader(folder, None)


def normalize_answer(answer):
    """Lower-case, strip and collapse spaces of an answer string.

    Args:
        answer: str.

    Examples:

    ```python
    keras_lgvq.metrics.vqa_metrics.normalize_answer(" Red ")  # "red"
    ```
    """
    return " ".join(answer.lower().split())


def _answer_set(answer):
    items = [normalize_answer(a) for a in answer.split(",")]
    return [a for a in items if a]


class WupsScorer:
    """Word-level Wu-Palmer similarity with WUPS thresholding (cached).

    Args:
        wordnet: a `WordNetCorpusReader` or None (`load_wordnet()`).

    Examples:

    ```python
    scorer = keras_lgvq.metrics.vqa_metrics.WupsScorer()
    scorer.word_similarity("dog", "cat")        # max over noun senses
    scorer.wups("dog", "cat", threshold=0.9)    # x 0.1 below 0.9
    ```
    """

    def __init__(self, wordnet=None):
        self.wordnet = wordnet if wordnet is not None else load_wordnet()
        self._similarity = functools.lru_cache(maxsize=None)(self._compute)

    def _compute(self, a, b):
        # WordNet spells multi-word lemmas with underscores.
        senses_a = self.wordnet.synsets(a.replace(" ", "_"), pos="n")
        senses_b = self.wordnet.synsets(b.replace(" ", "_"), pos="n")
        best = 0.0
        for x in senses_a:
            for y in senses_b:
                value = x.wup_similarity(y)
                if value is not None and value > best:
                    best = value
        return best

    def word_similarity(self, a, b):
        """Max Wu-Palmer similarity over noun senses; 1.0 if `a == b`.

        Args:
            a: str. One answer word.
            b: str. One answer word.
        """
        a, b = normalize_answer(a), normalize_answer(b)
        if a == b:
            return 1.0
        if not a or not b:
            return 0.0
        return self._similarity(*sorted((a, b)))

    def thresholded(self, a, b, threshold):
        """`word_similarity(a, b)`, times 0.1 when below `threshold`.

        Args:
            a: str. One answer word.
            b: str. One answer word.
            threshold: float in [0, 1].
        """
        value = self.word_similarity(a, b)
        return value if value >= threshold else 0.1 * value

    def wups(self, prediction, truth, threshold):
        """WUPS of one question: answer sets compared both ways, min taken.

        Args:
            prediction: str. Predicted answer (comma-separated for sets).
            truth: str. Ground-truth answer (comma-separated for sets).
            threshold: float in [0, 1].
        """
        pred, true = _answer_set(prediction), _answer_set(truth)
        if not pred or not true:
            return float(pred == true)

        def covered(xs, ys):
            score = 1.0
            for x in xs:
                score *= max(self.thresholded(x, y, threshold) for y in ys)
            return score

        return min(covered(pred, true), covered(true, pred))


def evaluate_vqa(predictions, answers, question_types=None,
                thresholds=(0.9, 0.0), wordnet=None):
    """Accuracy and WUPS@threshold overall and per question type.

    Args:
        predictions: list of str. Predicted answers.
        answers: list of str. Ground-truth answers, aligned.
        question_types: list of str/int or None. A type per question
            (COCO-QA: object / number / color / location) for the
            per-type breakdown.
        thresholds: tuple of float. WUPS thresholds; keys "WUPS@0.9" etc.
        wordnet: `WordNetCorpusReader` or None (`load_wordnet()`).

    Returns:
        dict: "accuracy", "WUPS@<t>" for each threshold (fractions in [0, 1];
        papers print ×100), "count", and "per_type": type -> the same keys.

    Examples:

    ```python
    keras_lgvq.metrics.evaluate_vqa(
        ["dog", "two", "red"], ["cat", "two", "blue"],
        question_types=["object", "number", "color"])
    ```
    """
    for name, values in (("predictions", predictions), ("answers", answers)):
        if isinstance(values, str) or not isinstance(values, (list, tuple)):
            raise ValueError(f"`{name}` must be a list of answer strings.")
        bad = [v for v in values if not isinstance(v, str)]
        if bad:
            raise ValueError(
                f"`{name}` must hold strings; found {type(bad[0]).__name__}."
            )
    if len(predictions) != len(answers):
        raise ValueError(
            f"`predictions` ({len(predictions)}) and `answers` "
            f"({len(answers)}) must have the same length."
        )
    if not answers:
        raise ValueError("`predictions` and `answers` are empty.")
    if question_types is not None and len(question_types) != len(answers):
        raise ValueError(
            f"`question_types` has {len(question_types)} entries; expected "
            f"one per answer ({len(answers)})."
        )
    for t in thresholds:
        if not 0.0 <= float(t) <= 1.0:
            raise ValueError(f"`thresholds` must lie in [0, 1]; got {t}.")
    scorer = WupsScorer(wordnet)
    keys = [f"WUPS@{float(t):g}" for t in thresholds]
    if "WUPS@0" in keys:
        keys[keys.index("WUPS@0")] = "WUPS@0.0"
    rows = []
    for pred, true in zip(predictions, answers):
        row = {"accuracy": float(
            _answer_set(pred) == _answer_set(true)
        )}
        for key, t in zip(keys, thresholds):
            row[key] = scorer.wups(pred, true, float(t))
        rows.append(row)

    def mean(items):
        return {
            k: sum(r[k] for r in items) / len(items) for k in items[0]
        } | {"count": len(items)}

    out = mean(rows)
    groups = defaultdict(list)
    if question_types is not None:
        for kind, row in zip(question_types, rows):
            groups[kind].append(row)
    out["per_type"] = {kind: mean(items) for kind, items in groups.items()}
    return out
