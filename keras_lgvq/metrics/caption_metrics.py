"""Image-captioning metrics as the papers report them (COCO caption toolkit).

BLEU-1..4, METEOR, ROUGE-L and CIDEr-D come from `pycocoevalcap` (the
MS-COCO caption evaluation code): its CIDEr is CIDEr-D (σ = 6, clipped
counts, ×10) and its ROUGE-L uses β = 1.2, the conventions of LG-VQ's and
ClipCap's tables. Captions are first tokenized with the Stanford PTB
tokenizer (Java), lower-cased, with the toolkit's punctuation list removed.

METEOR-1.5 and the PTB tokenizer are Java programs shipped inside the
`pycocoevalcap` wheel. Without a Java runtime (Debian: `default-jre-headless`)
BLEU / ROUGE-L / CIDEr-D are still computed, after `ptb_tokenize_python`, a
Python tokenizer that mimics the PTB tokenizer plus punctuation removal;
METEOR is then reported as unavailable (`None`, with the reason) and never
replaced by another METEOR implementation.
"""

import functools
import re
import shutil
import subprocess

CAPTION_METRIC_NAMES = (
    "BLEU-1",
    "BLEU-2",
    "BLEU-3",
    "BLEU-4",
    "METEOR",
    "ROUGE-L",
    "CIDEr-D",
)
# pycocoevalcap's list (tokenizer/ptbtokenizer.py): tokens dropped after PTB
# tokenization. It is matched after lower-casing, so "-lrb-" etc. survive,
# a quirk of the reference toolkit kept here on purpose.
PTB_PUNCTUATION = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!",
     ",", ":", "-", "--", "...", ";"]
)
_BRACKETS = {"(": "-lrb-", ")": "-rrb-", "[": "-lsb-", "]": "-rsb-",
             "{": "-lcb-", "}": "-rcb-"}
_TITLES = ("mr", "mrs", "ms", "dr", "st", "jr", "sr", "prof", "vs", "etc",
           "inc", "ltd", "co", "mt", "ft")
_TOKEN = re.compile(
    r"(?:[^\W\d_]\.){2,}"                      # u.s., e.g.
    r"|(?:" + "|".join(_TITLES) + r")\.(?=\s|$)"  # mr.
    r"|\d+(?:[.,:/]\d+)+"                      # 3.5  5,000  2/3
    r"|[#@]?[^\W_]+(?:[-'/&][^\W_]+)*"         # words: black-and-white
    r"|\.\.\.|[.?!]+|--|\S",
    re.UNICODE,
)
# PTB splits these clitics off a word (lower case).
_CLITIC = re.compile(r"^(.+?)(n't|'s|'re|'ve|'d|'ll|'m)$")
_SPECIAL_WORDS = {"cannot": ["can", "not"], "gonna": ["gon", "na"],
                  "wanna": ["wan", "na"], "gotta": ["got", "ta"]}


def _split_clitics(word):
    tail = []
    while True:
        match = _CLITIC.match(word)
        if not match:
            break
        word, clitic = match.groups()
        tail.insert(0, clitic)
    return [word] + tail


def ptb_tokenize_python(text):
    """Tokenize a caption like the COCO toolkit, without Java.

    Mimics Stanford's PTBTokenizer (`-lowerCase`) followed by the toolkit's
    punctuation removal: lower-case; punctuation split from words and
    dropped (`. , ; : ? ! -- ...`, quotes); clitics split ("isn't" -> "is
    n't", "bird's" -> "bird 's"); hyphenated words, numbers such as "3.5" /
    "5,000" and abbreviations such as "u.s." kept whole; brackets become
    "-lrb-" ... and, as in the toolkit, are not removed. Rare constructs
    ("rock'n'roll", "y'all") can differ from the Java tokenizer.

    Args:
        text: str. One caption.

    Returns:
        str: space-separated tokens.

    Examples:

    ```python
    keras_lgvq.metrics.ptb_tokenize_python("A bird's wing, isn't it?")
    # "a bird 's wing is n't it"
    ```
    """
    tokens = []
    for token in _TOKEN.findall(text.replace("\n", " ").lower()):
        if token == '"':
            continue  # becomes `` or '' in PTB, both removed
        if token in _BRACKETS:
            tokens.append(_BRACKETS[token])
        elif token in _SPECIAL_WORDS:
            tokens.extend(_SPECIAL_WORDS[token])
        elif token[0].isalnum() or token[0] in "#@":
            tokens.extend(_split_clitics(token))
        else:
            tokens.append(token)
    return " ".join(t for t in tokens if t not in PTB_PUNCTUATION)


@functools.lru_cache(maxsize=1)
def java_status():
    """Return `(available, reason)` for the Java runtime METEOR / PTB need.

    Examples:

    ```python
    ok, reason = keras_lgvq.metrics.caption_metrics.java_status()
    ```
    """
    java = shutil.which("java")
    if java is None:
        return False, (
            "no `java` on PATH: METEOR-1.5 and the PTB tokenizer are Java "
            "programs (Debian: apt-get install default-jre-headless)"
        )
    result = subprocess.run(
        [java, "-version"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        return False, f"`java -version` failed: {result.stderr.strip()}"
    return True, ""


def _canonical(references, predictions):
    if isinstance(references, dict) != isinstance(predictions, dict):
        raise ValueError(
            "`references` and `predictions` must both be dicts keyed by "
            "image id, or both be lists in the same order."
        )
    if isinstance(references, dict):
        if set(references) != set(predictions):
            raise ValueError(
                "`references` and `predictions` must have the same image ids; "
                f"{len(set(references) ^ set(predictions))} differ."
            )
        keys = list(references)
        refs = [references[k] for k in keys]
        preds = [predictions[k] for k in keys]
    else:
        refs, preds = list(references), list(predictions)
        if len(refs) != len(preds):
            raise ValueError(
                f"`references` has {len(refs)} items but `predictions` has "
                f"{len(preds)}; they must align one-to-one."
            )
        keys = list(range(len(refs)))
    if not keys:
        raise ValueError("`references` and `predictions` are empty.")
    for key, ref_list, pred in zip(keys, refs, preds):
        if isinstance(ref_list, str) or not isinstance(ref_list, (list, tuple)):
            raise ValueError(
                f"`references[{key!r}]` must be a list of caption strings; "
                f"received {type(ref_list).__name__}."
            )
        if not ref_list or not all(
            isinstance(r, str) and r.strip() for r in ref_list
        ):
            raise ValueError(
                f"`references[{key!r}]` must hold at least one non-empty "
                "caption string."
            )
        if not isinstance(pred, str):
            raise ValueError(
                f"`predictions[{key!r}]` must be a caption string; received "
                f"{type(pred).__name__}."
            )
    return keys, refs, preds


def _ptb_java(keys, refs, preds):
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tokenizer = PTBTokenizer()
    # The toolkit's format: {id: [{"caption": str}, ...]}.
    gts = tokenizer.tokenize(
        {k: [{"caption": r} for r in rs] for k, rs in zip(keys, refs)}
    )
    res = tokenizer.tokenize({k: [{"caption": p}] for k, p in zip(keys, preds)})
    return gts, res


def evaluate_captions(references, predictions, use_java=None):
    """BLEU-1..4, METEOR, ROUGE-L and CIDEr-D of generated captions.

    Args:
        references: dict image id -> list of reference captions, or a list
            of such lists.
        predictions: dict image id -> one generated caption, or a list
            aligned with `references`. An empty caption is allowed (it
            scores 0).
        use_java: bool or None. None (default): use the Java PTB tokenizer
            and METEOR when a Java runtime works, else the Python tokenizer
            and no METEOR. True: require Java (error without it). False:
            never use Java.

    Returns:
        dict with the keys `CAPTION_METRIC_NAMES` (fractions in [0, 1],
        CIDEr-D on its own scale; papers print them ×100), where "METEOR" is
        None when unavailable; "tokenizer": "ptb-java" or "ptb-python";
        "unavailable": dict metric -> reason (empty when all ran); "count":
        number of images.

    Examples:

    ```python
    scores = keras_lgvq.metrics.evaluate_captions(
        {"img1": ["a red bird on a branch", "a small red bird"]},
        {"img1": "a red bird sitting on a branch"})
    scores["BLEU-4"], scores["CIDEr-D"], scores["METEOR"]
    ```
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    keys, refs, preds = _canonical(references, predictions)
    java_ok, reason = java_status()
    if use_java and not java_ok:
        raise RuntimeError(f"`use_java=True` but Java is unusable: {reason}.")
    with_java = java_ok if use_java is None else bool(use_java)
    if with_java:
        gts, res = _ptb_java(keys, refs, preds)
        tokenizer = "ptb-java"
    else:
        gts = {k: [ptb_tokenize_python(r) for r in rs]
               for k, rs in zip(keys, refs)}
        res = {k: [ptb_tokenize_python(p)] for k, p in zip(keys, preds)}
        tokenizer = "ptb-python"

    scores = {}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    for n, value in enumerate(bleu, start=1):
        scores[f"BLEU-{n}"] = float(value)
    scores["ROUGE-L"] = float(Rouge().compute_score(gts, res)[0])
    scores["CIDEr-D"] = float(Cider().compute_score(gts, res)[0])
    unavailable = {}
    if with_java:
        scores["METEOR"] = _meteor(gts, res)
    else:
        scores["METEOR"] = None
        unavailable["METEOR"] = (
            reason if not java_ok else "disabled with use_java=False"
        ) + "; METEOR is not replaced by another implementation"
    out = {name: scores[name] for name in CAPTION_METRIC_NAMES}
    out.update(tokenizer=tokenizer, unavailable=unavailable, count=len(keys))
    return out


def _meteor(gts, res):
    from pycocoevalcap.meteor.meteor import Meteor

    scorer = Meteor()
    try:
        score, _ = scorer.compute_score(gts, res)
    finally:
        # Stop the Java process now rather than at garbage collection.
        scorer.meteor_p.stdin.close()
        scorer.meteor_p.kill()
        scorer.meteor_p.wait()
    return float(score)
