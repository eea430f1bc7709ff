"""Linear-probe accuracy on frozen features, and code-grid probe features."""

import keras
import numpy as np

from keras_lgvq.utils.tensors import to_numpy
from keras_lgvq.utils.validation import check_int

def code_features(
    indices=None, num_embeddings=None, codes=None, codebook=None, grid=1
):
    """Turn frozen code grids into fixed-size probe features.

    Two blocks, concatenated in this order when both are available:

    1. **Bag of codes** (needs `indices` and `num_embeddings`): the
       histogram of code ids over the grid, normalised to sum to 1, `K`
       features. Order-free: it says *which* codes occur. Indices with a
       trailing slot axis `(N, h, w, S)` must be flattened ids (a VQCT
       tokenizer's `flatten_indices`, see `keras_lgvq.utils.code_layout`):
       every slot of every position is one entry of the histogram.
    2. **Pooled code vectors** (needs `codes`, or `indices` + `codebook`):
       the mean of the code vectors over each cell of a `grid x grid`
       partition of the token grid, `grid**2 * D` features. `grid=1` is
       global mean pooling; `grid=2` keeps coarse layout (left/right,
       top/bottom), which matters for scene attributes tied to a place.

    Args:
        indices: int array `(N, h, w)`, or `(N, h, w, S)` of flattened
            ids, or None. Code ids per position.
        num_embeddings: int or None. Codebook size K (for the histogram;
            with sub-codebooks, all of them together).
        codes: float array `(N, h, w, D)` or None. Quantised vectors.
        codebook: float array `(K, D)` or None. Looked up with `indices`
            when `codes` is not given.
        grid: int. Pooling cells per side for the code vectors.

    Returns:
        A float32 numpy array `(N, F)`.

    Examples:

    ```python
    feats = keras_lgvq.metrics.code_features(
        indices=idx, num_embeddings=1024, codebook=codebook, grid=2
    )
    ```
    """
    blocks = []
    if indices is not None:
        indices = to_numpy(indices)
        if indices.ndim not in (3, 4) or not np.issubdtype(
            indices.dtype, np.integer
        ):
            raise ValueError(
                "`indices` must be an int array (N, h, w), or (N, h, w, S) "
                "of flattened ids for a tokenizer with sub-codebooks. "
                f"Received: shape {indices.shape}, dtype {indices.dtype}"
            )
    if indices is not None and num_embeddings is not None:
        if indices.size and (
            indices.min() < 0 or indices.max() >= num_embeddings
        ):
            raise ValueError(
                f"`indices` must lie in [0, {num_embeddings}). Received "
                f"range [{indices.min()}, {indices.max()}]"
            )
        flat = indices.reshape(indices.shape[0], -1)
        offsets = np.arange(flat.shape[0])[:, None] * num_embeddings
        hist = np.bincount(
            (flat + offsets).ravel(), minlength=flat.shape[0] * num_embeddings
        ).reshape(flat.shape[0], num_embeddings)
        blocks.append(hist / max(flat.shape[1], 1))
    if codes is None and codebook is not None and indices is not None:
        if indices.ndim != 3:
            raise ValueError(
                "`codebook` lookup needs one id per position (N, h, w); "
                "for a tokenizer with sub-codebooks pass the quantized "
                "`codes` instead."
            )
        codes = to_numpy(codebook)[indices]
    if codes is not None:
        codes = to_numpy(codes).astype(np.float64)
        if codes.ndim != 4:
            raise ValueError(
                f"`codes` must be (N, h, w, D). Received shape: {codes.shape}"
            )
        check_int("grid", grid)
        height, width = codes.shape[1:3]
        if grid > min(height, width):
            raise ValueError(
                f"`grid` ({grid}) exceeds the token grid ({height}x{width})."
            )
        rows = np.array_split(np.arange(height), grid)
        cols = np.array_split(np.arange(width), grid)
        for r in rows:
            for c in cols:
                cell = codes[:, r[0] : r[-1] + 1, c[0] : c[-1] + 1]
                blocks.append(cell.mean(axis=(1, 2)))
    if not blocks:
        raise ValueError(
            "Nothing to featurise: pass `indices` with `num_embeddings`, "
            "and/or `codes` (or `indices` with `codebook`)."
        )
    return np.concatenate(blocks, axis=1).astype(np.float32)


def linear_probe_accuracy(
    train_features,
    train_labels,
    test_features,
    test_labels,
    num_classes,
    epochs=200,
    batch_size=None,
    learning_rate=1e-2,
    weight_decay=0.0,
    standardize=True,
    seed=0,
    jit_compile="auto",
):
    """Test accuracy (%) of a multinomial logistic regression probe.

    A single `keras.layers.Dense(num_classes)` on (optionally
    standardised, with training statistics) frozen features, trained with
    Adam on softmax cross-entropy. Rows labelled -1 (unknown attribute)
    are dropped from both sets. Full-batch by default; with `batch_size`
    the minibatch order is a numpy permutation drawn from `seed` each
    epoch, and the initial weights are seeded too, so a run is
    deterministic for a given backend.

    Args:
        train_features: array `(N, F)`. Probe training inputs.
        train_labels: int array `(N,)`. Class ids in `[0, num_classes)` or
            -1.
        test_features: array `(M, F)`. Probe test inputs.
        test_labels: int array `(M,)`. Class ids or -1.
        num_classes: int. Number of classes.
        epochs: int. Passes over the training set.
        batch_size: int or None. Minibatch size; None = full batch.
        learning_rate: float. Adam learning rate.
        weight_decay: float. Adam's decoupled weight decay.
        standardize: bool. Z-score features with training mean and std.
        seed: int. Seed of the initial weights and minibatch order.
        jit_compile: bool or "auto". Passed to `Model.compile`; a tiny
            probe can be cheaper to run eagerly than to compile.

    Returns:
        Accuracy on the labelled test rows, in %.

    Examples:

    ```python
    acc = keras_lgvq.metrics.linear_probe_accuracy(
        f_train, color_train, f_test, color_test, num_classes=8
    )
    ```
    """
    x_train = to_numpy(train_features).astype(np.float32)
    y_train = to_numpy(train_labels).astype(np.int64)
    x_test = to_numpy(test_features).astype(np.float32)
    y_test = to_numpy(test_labels).astype(np.int64)
    if (
        x_train.ndim != 2
        or x_test.ndim != 2
        or (x_train.shape[1] != x_test.shape[1])
    ):
        raise ValueError(
            "Features must be (N, F) and (M, F) with the same F. Received: "
            f"{x_train.shape}, {x_test.shape}"
        )
    if y_train.shape != (x_train.shape[0],) or y_test.shape != (
        x_test.shape[0],
    ):
        raise ValueError(
            "Labels must be 1D and match the feature rows. Received: "
            f"{y_train.shape} for {x_train.shape[0]} rows, {y_test.shape} "
            f"for {x_test.shape[0]} rows"
        )
    check_int("num_classes", num_classes, low=2)
    for name, y in (("train_labels", y_train), ("test_labels", y_test)):
        if y.size and (y.min() < -1 or y.max() >= num_classes):
            raise ValueError(
                f"`{name}` must lie in [0, {num_classes}) or be -1. "
                f"Received range [{y.min()}, {y.max()}]"
            )
    keep = y_train >= 0
    x_train, y_train = x_train[keep], y_train[keep]
    keep = y_test >= 0
    x_test, y_test = x_test[keep], y_test[keep]
    if x_train.shape[0] == 0 or x_test.shape[0] == 0:
        raise ValueError("No labelled rows left in the train or test set.")

    if standardize:
        mean = x_train.mean(axis=0)
        std = x_train.std(axis=0)
        std = np.where(std > 1e-6, std, 1.0)
        x_train = (x_train - mean) / std
        x_test = (x_test - mean) / std

    model = keras.Sequential(
        [
            keras.Input((x_train.shape[1],)),
            keras.layers.Dense(
                num_classes,
                kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
                bias_initializer="zeros",
            ),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(
            learning_rate=learning_rate,
            weight_decay=weight_decay if weight_decay else None,
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )
    n = x_train.shape[0]
    if batch_size is None or batch_size >= n:
        model.fit(
            x_train,
            y_train,
            batch_size=n,
            epochs=epochs,
            shuffle=False,
            verbose=0,
        )
    else:
        rng = np.random.default_rng(seed)
        for _ in range(epochs):
            order = rng.permutation(n)
            model.fit(
                x_train[order],
                y_train[order],
                batch_size=batch_size,
                epochs=1,
                shuffle=False,
                verbose=0,
            )
    logits = model.predict(x_test, batch_size=4096, verbose=0)
    return float(100.0 * np.mean(np.argmax(logits, axis=-1) == y_test))
