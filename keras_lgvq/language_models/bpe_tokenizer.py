"""A byte-level BPE tokenizer with GPT-2 / SmolLM pre-tokenization."""

import keras
import keras_hub
from tokenizers import pre_tokenizers


@keras.saving.register_keras_serializable(package="keras_lgvq")
class ByteLevelBPETokenizer(keras_hub.tokenizers.BytePairTokenizer):
    """keras-hub's `BytePairTokenizer` with the GPT-2 byte-level split.

    keras-hub's eager (pure Python) path pre-splits text with Llama 3's
    regular expression, which glues one leading punctuation mark to a word
    ("(hello") and groups digits by three. GPT-2-style vocabularies such as
    SmolLM2's were trained with GPT-2's split instead, so this class swaps in
    GPT-2's byte-level pre-tokenizer and, for SmolLM / StarCoder vocabularies
    (llama.cpp pre-tokenizer "smollm"), isolates every digit first. The BPE
    merges, vocabulary lookup and detokenization are keras-hub's own.

    Inside `tf.data` / `tf.function` keras-hub's TensorFlow path runs
    instead. It uses a GPT-2-like split; with a vocabulary that has no merge
    containing a digit (SmolLM2's) it gives the same ids on ordinary text,
    but runs of two or more spaces directly before a digit can split
    differently. Tokenize eagerly when exact ids matter.

    Args:
        vocabulary: dict or str. Token string -> id, or a JSON file.
        merges: list or str. Merge rules ("a b"), or a text file.
        split_digits: bool. Isolate every digit before the GPT-2 split
            (SmolLM2, StarCoder). Defaults to `False` (plain GPT-2).
        start_token: str or None. Token exposed as `start_token_id`.
        end_token: str or None. Token exposed as `end_token_id`.
        pad_token: str or None. Token exposed as `pad_token_id` (used to pad
            when `sequence_length` is set).
        sequence_length: int or None. Pad / truncate outputs to this length.
        unsplittable_tokens: list of str or None. Strings kept whole (control
            tokens such as `<|im_end|>`); defaults to the special tokens.
        **kwargs: passed to `keras_hub.tokenizers.BytePairTokenizer`.

    Examples:

    ```python
    vocab = {"<|endoftext|>": 0, "a": 1, "b": 2, "ab": 3, "Ġ": 4, "1": 5}
    tokenizer = keras_lgvq.language_models.ByteLevelBPETokenizer(
        vocab, ["a b"], split_digits=True, end_token="<|endoftext|>")
    tokenizer("ab 11")  # [3, 4, 5, 5]
    ```
    """

    def __init__(
        self,
        vocabulary=None,
        merges=None,
        split_digits=False,
        start_token=None,
        end_token=None,
        pad_token=None,
        sequence_length=None,
        unsplittable_tokens=None,
        **kwargs,
    ):
        # Read by `_set_vocabulary_and_merges_tokenizers`, which the parent
        # constructor calls.
        self.split_digits = bool(split_digits)
        self.start_token = start_token
        self.end_token = end_token
        self.pad_token = pad_token
        for token, name in (
            (start_token, "start_token"),
            (end_token, "end_token"),
            (pad_token, "pad_token"),
        ):
            if token is not None:
                if not isinstance(token, str):
                    raise ValueError(
                        f"`{name}` must be a string token or None; received "
                        f"{token!r}."
                    )
                self._add_special_token(token, name)
        super().__init__(
            vocabulary=vocabulary,
            merges=merges,
            sequence_length=sequence_length,
            unsplittable_tokens=unsplittable_tokens,
            **kwargs,
        )

    def _set_vocabulary_and_merges_tokenizers(self, vocabulary, merges):
        super()._set_vocabulary_and_merges_tokenizers(vocabulary, merges)
        steps = []
        if self.split_digits:
            steps.append(pre_tokenizers.Digits(individual_digits=True))
        steps.append(
            pre_tokenizers.ByteLevel(
                add_prefix_space=self.add_prefix_space, use_regex=True
            )
        )
        self._tokenizer.pre_tokenizer = pre_tokenizers.Sequence(steps)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "split_digits": self.split_digits,
                "start_token": self.start_token,
                "end_token": self.end_token,
                "pad_token": self.pad_token,
            }
        )
        return config
