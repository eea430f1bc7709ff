"""The code-index layout of a tokenizer, one description for every stage.

A single-codebook tokenizer (VQGAN, LG-VQ) gives one id per grid position:
`indices` `(B, h, w)` in `[0, K)`. A tokenizer with **sub-codebooks**
(VQCT) adds a trailing index axis: `indices` `(B, h, w, S)`, whose `S`
slots are grouped, in order, into named sub-codebooks, each slot's id local
to its own sub-codebook. VQCT: `S = top_k + 1`; slots `[0, top_k)` are
adjective ids in `[0, num_adjectives)`, slot `top_k` the noun id in
`[0, num_nouns)`. The tokenizer says so with its `sub_codebooks` property:
a tuple of `SubCodebook(name, size, slots)` (None for a single codebook).

**Flattened id.** Where one integer per code choice is needed (a histogram
over all codes, a bag-of-codes feature, a single id space), a slot's local
id is offset by the sizes of the sub-codebooks before it. For VQCT,
adjective ids stay as they are and a noun id `j` becomes
`num_adjectives + j`: the row of the code in VQCT's concatenated codebook
`[adjectives; nouns]` (the paper's "6207 codes"), in
`[0, num_adjectives + num_nouns)`. Flattened ids keep the slot axis
(`(B, h, w, S)`); `ids.reshape(-1)` is then one integer per code choice.
`unflatten_code_ids` is the exact inverse.
"""

import collections

import numpy as np

SubCodebook = collections.namedtuple("SubCodebook", ["name", "size", "slots"])
SubCodebook.__doc__ = """One sub-codebook of a tokenizer with a trailing
index axis.

Fields:
    name: str. E.g. "adjective", "noun".
    size: int. Codes in the sub-codebook (ids are local: `[0, size)`).
    slots: int. Consecutive entries of the trailing index axis that hold
        ids of this sub-codebook (VQCT: `top_k` adjectives, 1 noun).
"""


def normalize_sub_codebooks(sub_codebooks, name="sub_codebooks"):
    """Validates a sub-codebook description; returns a tuple or None.

    Args:
        sub_codebooks: None (a single codebook), or a sequence of
            `SubCodebook`, `(name, size, slots)` tuples or dicts with those
            keys.
        name: str. Argument name for the error messages.

    Returns:
        A tuple of `SubCodebook`, or None.

    Examples:

    ```python
    normalize_sub_codebooks([("adjective", 46, 2), ("noun", 52, 1)])
    ```
    """
    if sub_codebooks is None:
        return None
    if isinstance(sub_codebooks, (str, bytes, dict)) or not hasattr(
        sub_codebooks, "__iter__"
    ):
        raise ValueError(
            f"`{name}` must be None or a sequence of (name, size, slots) "
            f"entries, e.g. [('adjective', 46, 2), ('noun', 52, 1)]. "
            f"Received: {sub_codebooks!r}"
        )
    parts = []
    for entry in sub_codebooks:
        if isinstance(entry, dict):
            missing = {"name", "size", "slots"} - set(entry)
            if missing:
                raise ValueError(
                    f"Each entry of `{name}` needs name, size and slots; "
                    f"{entry!r} lacks {sorted(missing)}."
                )
            entry = (entry["name"], entry["size"], entry["slots"])
        if isinstance(entry, str) or len(entry) != 3:
            raise ValueError(
                f"Each entry of `{name}` must be (name, size, slots). "
                f"Received: {entry!r}"
            )
        part_name, size, slots = entry
        if not isinstance(part_name, str) or not part_name:
            raise ValueError(
                f"Sub-codebook names in `{name}` must be non-empty strings. "
                f"Received: {part_name!r}"
            )
        for field, value in (("size", size), ("slots", slots)):
            if isinstance(value, bool) or not isinstance(
                value, (int, np.integer)
            ) or value < 1:
                raise ValueError(
                    f"The {field} of sub-codebook {part_name!r} in `{name}` "
                    f"must be an int >= 1. Received: {value!r}"
                )
        parts.append(SubCodebook(part_name, int(size), int(slots)))
    if not parts:
        raise ValueError(
            f"`{name}` must list at least one sub-codebook (or be None for "
            "a single codebook)."
        )
    names = [p.name for p in parts]
    if len(set(names)) != len(names):
        raise ValueError(
            f"Sub-codebook names in `{name}` must be unique. Received: {names}"
        )
    return tuple(parts)


def sub_codebooks_of(tokenizer):
    """The sub-codebooks of a tokenizer (or of a model's `.backbone`), or
    None for a single codebook.

    Args:
        tokenizer: a tokenizer backbone, or a model holding one as
            `.backbone`.

    Examples:

    ```python
    sub_codebooks_of(vqct_backbone)  # (SubCodebook('adjective', 46, 2), ...)
    sub_codebooks_of(vqgan_backbone)  # None
    ```
    """
    if not hasattr(tokenizer, "sub_codebooks") and hasattr(
        tokenizer, "backbone"
    ):
        tokenizer = tokenizer.backbone
    return normalize_sub_codebooks(getattr(tokenizer, "sub_codebooks", None))


def index_depth(sub_codebooks):
    """Size `S` of the trailing index axis, or None for a single codebook."""
    sub_codebooks = normalize_sub_codebooks(sub_codebooks)
    if sub_codebooks is None:
        return None
    return sum(p.slots for p in sub_codebooks)


def total_codes(sub_codebooks):
    """Codes of all sub-codebooks together (the flattened id range)."""
    return sum(p.size for p in normalize_sub_codebooks(sub_codebooks))


def slot_offsets(sub_codebooks):
    """`(S,)` int64: the flattened-id offset of each slot."""
    sub_codebooks = normalize_sub_codebooks(sub_codebooks)
    offsets, start = [], 0
    for part in sub_codebooks:
        offsets += [start] * part.slots
        start += part.size
    return np.asarray(offsets, "int64")


def slot_sizes(sub_codebooks):
    """`(S,)` int64: the size of the sub-codebook of each slot."""
    sub_codebooks = normalize_sub_codebooks(sub_codebooks)
    return np.asarray(
        [p.size for p in sub_codebooks for _ in range(p.slots)], "int64"
    )


def part_ranges(sub_codebooks):
    """`{name: (start, stop)}`: each sub-codebook's flattened-id range."""
    ranges, start = {}, 0
    for part in normalize_sub_codebooks(sub_codebooks):
        ranges[part.name] = (start, start + part.size)
        start += part.size
    return ranges


def _integer_array(indices, name):
    from keras_lgvq.utils.tensors import to_numpy

    indices = to_numpy(indices)
    if not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(
            f"`{name}` must hold integer code ids. Received dtype: "
            f"{indices.dtype}"
        )
    return indices


def check_code_layout(indices, sub_codebooks, name="indices"):
    """Raises a ValueError unless `indices` follow the layout: a trailing
    axis of `S` slots, each slot's ids in its sub-codebook's range.

    Args:
        indices: int array `(..., S)`.
        sub_codebooks: the tokenizer's `sub_codebooks`.
        name: str. Argument name for the messages.

    Returns:
        The indices as a numpy array.
    """
    sub_codebooks = normalize_sub_codebooks(sub_codebooks)
    indices = _integer_array(indices, name)
    depth = index_depth(sub_codebooks)
    layout = ", ".join(
        f"{p.slots} {p.name} id(s) in [0, {p.size})" for p in sub_codebooks
    )
    if indices.ndim < 1 or indices.shape[-1] != depth:
        raise ValueError(
            f"`{name}` must have a trailing index axis of {depth} slots "
            f"({layout}), as the tokenizer's `encode` returns. Received "
            f"shape {indices.shape}."
        )
    start = 0
    for part in sub_codebooks:
        block = indices[..., start : start + part.slots]
        if block.size and (block.min() < 0 or block.max() >= part.size):
            raise ValueError(
                f"`{name}[..., {start}:{start + part.slots}]` ({part.name} "
                f"ids) must lie in [0, {part.size}). Received range "
                f"[{block.min()}, {block.max()}]."
            )
        start += part.slots
    return indices


def flatten_code_ids(indices, sub_codebooks, name="indices"):
    """Local ids `(..., S)` -> flattened ids `(..., S)` (see module doc).

    Args:
        indices: int array in the tokenizer's layout.
        sub_codebooks: the tokenizer's `sub_codebooks`.
        name: str. Argument name for the messages.

    Returns:
        int64 numpy array of the same shape, ids in `[0, total_codes)`.

    Examples:

    ```python
    layout = [("adjective", 46, 2), ("noun", 52, 1)]
    flatten_code_ids(np.array([[3, 7, 5]]), layout)  # [[3, 7, 51]]
    ```
    """
    indices = check_code_layout(indices, sub_codebooks, name)
    return indices.astype("int64") + slot_offsets(sub_codebooks)


def unflatten_code_ids(ids, sub_codebooks, name="ids"):
    """Flattened ids `(..., S)` -> local ids `(..., S)`; the inverse of
    `flatten_code_ids`.

    Raises:
        ValueError: a slot holds an id outside its sub-codebook's
            flattened range.

    Examples:

    ```python
    layout = [("adjective", 46, 2), ("noun", 52, 1)]
    unflatten_code_ids(np.array([[3, 7, 51]]), layout)  # [[3, 7, 5]]
    ```
    """
    sub_codebooks = normalize_sub_codebooks(sub_codebooks)
    ids = _integer_array(ids, name)
    depth = index_depth(sub_codebooks)
    if ids.ndim < 1 or ids.shape[-1] != depth:
        raise ValueError(
            f"`{name}` must have a trailing axis of {depth} slots. Received "
            f"shape {ids.shape}."
        )
    local = ids.astype("int64") - slot_offsets(sub_codebooks)
    start = 0
    for part, (low, high) in zip(
        sub_codebooks, part_ranges(sub_codebooks).values()
    ):
        block = ids[..., start : start + part.slots]
        if block.size and (block.min() < low or block.max() >= high):
            raise ValueError(
                f"`{name}[..., {start}:{start + part.slots}]` must hold "
                f"flattened {part.name} ids in [{low}, {high}). Received "
                f"range [{block.min()}, {block.max()}]."
            )
        start += part.slots
    return local.astype("int32")
