"""Beam search over a next-token log-probability function (host loop)."""

import numpy as np


def beam_search(initial_log_probs, step_fn, beam_size, max_new_tokens,
                stop_token_ids=(), length_penalty=0.0):
    """Beam search for the highest-scoring token sequences.

    A sequence's score is the sum of its tokens' log-probabilities; a
    sequence ends at a stop token (whose log-probability counts, the stop
    token itself is not returned) or after `max_new_tokens` tokens. With
    `length_penalty = a > 0` the final choice divides each score by
    `length ** a` (length counts the stop token); with the default 0 the
    result is the most probable sequence the beam found, and the search ends
    early once no live beam can still beat the best finished one (scores
    only fall as tokens are added).

    Args:
        initial_log_probs: float array `(B, V)`: log-probabilities of the
            first token of each of the B rows.
        step_fn: callable `(tokens, parents, step) -> (B * beam_size, V)`
            log-probabilities of the next token. `tokens` int `(B *
            beam_size,)` are the tokens just chosen, `parents` int `(B *
            beam_size,)` the flat index of the beam each new beam extends
            (the caller reorders its cache / state with it), `step` the
            number of tokens chosen so far. Rows are ordered `b * beam_size
            + j`.
        beam_size: int >= 1.
        max_new_tokens: int >= 1.
        stop_token_ids: iterable of int. Tokens that end a sequence.
        length_penalty: float >= 0.

    Returns:
        `(sequences, scores)`: a list of B int32 arrays (the best sequence of
        each row, stop token excluded) and a float64 `(B,)` array of their
        (unnormalised) log-probabilities.

    Examples:

    ```python
    table = np.log(np.full((1, 3), 1 / 3))
    seqs, scores = beam_search(
        table, lambda t, p, s: np.repeat(table, len(t), 0), beam_size=2,
        max_new_tokens=3, stop_token_ids=[0])
    ```
    """
    if isinstance(beam_size, bool) or not isinstance(
        beam_size, (int, np.integer)
    ) or beam_size < 1:
        raise ValueError(
            f"`beam_size` must be an integer >= 1; received {beam_size!r}."
        )
    if isinstance(max_new_tokens, bool) or not isinstance(
        max_new_tokens, (int, np.integer)
    ) or max_new_tokens < 1:
        raise ValueError(
            "`max_new_tokens` must be an integer >= 1; received "
            f"{max_new_tokens!r}."
        )
    if length_penalty < 0:
        raise ValueError(
            f"`length_penalty` must be >= 0; received {length_penalty!r}."
        )
    log_probs = np.asarray(initial_log_probs, dtype="float64")
    if log_probs.ndim != 2:
        raise ValueError(
            "`initial_log_probs` must have shape (batch, vocabulary); "
            f"received {log_probs.shape}."
        )
    batch, vocab = log_probs.shape
    stop = np.zeros((vocab,), bool)
    stop[[int(s) for s in stop_token_ids if 0 <= int(s) < vocab]] = True
    # Row b's beams; at the start only beam 0 is live.
    scores = np.full((batch, beam_size), -np.inf)
    scores[:, 0] = 0.0
    log_probs = np.repeat(log_probs[:, None, :], beam_size, axis=1)
    histories = [[[] for _ in range(beam_size)] for _ in range(batch)]
    finished = [[] for _ in range(batch)]  # (score, tokens)
    done = np.zeros((batch,), bool)

    def adjusted(score, length):
        if length_penalty == 0:
            return score
        return score / max(length, 1) ** length_penalty

    for step in range(max_new_tokens):
        candidates = scores[:, :, None] + log_probs  # (B, beam, V)
        tokens = np.zeros((batch, beam_size), "int64")
        parents = np.zeros((batch, beam_size), "int64")
        new_scores = np.full((batch, beam_size), -np.inf)
        new_histories = []
        for b in range(batch):
            rows = []
            if not done[b]:
                flat = candidates[b].reshape(-1)
                order = np.argsort(-flat, kind="stable")
                for index in order:
                    value = flat[index]
                    if not np.isfinite(value):
                        break
                    j, token = divmod(int(index), vocab)
                    if stop[token]:
                        # The stop token's probability is part of the score.
                        finished[b].append(
                            (value, list(histories[b][j]), step + 1)
                        )
                        continue
                    rows.append((value, j, token))
                    if len(rows) == beam_size:
                        break
            hist = []
            for slot in range(beam_size):
                if slot < len(rows):
                    value, j, token = rows[slot]
                    new_scores[b, slot] = value
                    parents[b, slot] = j
                    tokens[b, slot] = token
                    hist.append(histories[b][j] + [token])
                else:
                    hist.append([])
            new_histories.append(hist)
            best_live = new_scores[b].max()
            if not np.isfinite(best_live):
                done[b] = True
            elif length_penalty == 0 and finished[b] and (
                max(f[0] for f in finished[b]) >= best_live
            ):
                done[b] = True
        scores, histories = new_scores, new_histories
        if done.all() or step == max_new_tokens - 1:
            break
        flat_parents = (
            np.arange(batch)[:, None] * beam_size + parents
        ).reshape(-1)
        log_probs = np.asarray(
            step_fn(tokens.reshape(-1).astype("int32"),
                    flat_parents.astype("int32"), step + 1),
            dtype="float64",
        ).reshape(batch, beam_size, vocab)

    sequences, best_scores = [], np.zeros((batch,))
    for b in range(batch):
        pool = list(finished[b])
        if not done[b]:
            # Live beams cut at max_new_tokens are candidates too.
            for slot in range(beam_size):
                if np.isfinite(scores[b, slot]):
                    pool.append(
                        (scores[b, slot], histories[b][slot],
                         len(histories[b][slot]))
                    )
        if not pool:
            sequences.append(np.zeros((0,), "int32"))
            best_scores[b] = -np.inf
            continue
        best = max(pool, key=lambda f: adjusted(f[0], f[2]))
        sequences.append(np.asarray(best[1], "int32"))
        best_scores[b] = best[0]
    return sequences, best_scores
