"""Command line: build a VQCT language prior from captions, offline.

```
python -m keras_lgvq.priors.vqct --captions scenes --text-prior minilm \
    --out priors/scenes_minilm
python -m keras_lgvq.priors.vqct --captions birds/text flowers/text_c10 \
    coco/annotations/captions_train2014.json --text-prior /models/clip \
    --out priors/cub_clip
python -m keras_lgvq.priors.vqct --official big_nlp_word_knowledge_clip.pkl \
    --out priors/official
```

Writes `vqct_prior.json` and `vqct_vectors.safetensors` (see
`keras_lgvq.priors.vqct_prior`) and prints a summary with the files'
sha256. `--official` converts the official `.pkl` (read without
unpickling) instead of building.
"""

import argparse
import json
import sys

from keras_lgvq.priors import vqct_prior


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m keras_lgvq.priors.vqct",
        description=(
            "Build VQCT's adjective/noun prior (spaCy tags + text-prior "
            "word vectors + bigram graph) without pickle or network."
        ),
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--captions",
        nargs="+",
        metavar="SOURCE",
        help=(
            "'scenes' (procedural scenes train split), .txt files (one "
            "caption per line), COCO caption .json files, or directories "
            "of them."
        ),
    )
    source.add_argument(
        "--official",
        metavar="PKL",
        help="Convert the official big_nlp_word_knowledge_clip.pkl.",
    )
    parser.add_argument(
        "--text-prior",
        default="minilm",
        help=(
            "Text prior for the word vectors: 'minilm' (offline default) "
            "or a local CLIP / BERT directory. Default: minilm."
        ),
    )
    parser.add_argument("--out", required=True, help="Output directory.")
    parser.add_argument(
        "--threshold",
        type=int,
        default=vqct_prior.DEFAULT_THRESHOLD,
        help="Keep words counted more than this many times. Default: 10.",
    )
    parser.add_argument(
        "--adjective-tags",
        nargs="+",
        default=list(vqct_prior.ADJECTIVE_TAGS),
        help="Penn tags counted as adjectives. Default: JJ (official).",
    )
    parser.add_argument(
        "--scenes-images",
        type=int,
        default=None,
        help="Images of the scenes train split (default: the full split).",
    )
    parser.add_argument("--scenes-seed", type=int, default=0)
    parser.add_argument(
        "--batch-size", type=int, default=64, help="Prompts per forward pass."
    )
    parser.add_argument(
        "--processes", type=int, default=1, help="spaCy worker processes."
    )
    return parser


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.official:
        prior = vqct_prior.read_official_prior(args.official)
    else:
        captions = vqct_prior.read_captions(
            args.captions, args.scenes_images, args.scenes_seed
        )
        prior = vqct_prior.build_prior(
            captions,
            text_prior=args.text_prior,
            threshold=args.threshold,
            adjective_tags=tuple(args.adjective_tags),
            batch_size=args.batch_size,
            n_process=args.processes,
        )
    hashes = prior.save(args.out)
    graph = prior.graph()
    summary = {
        "out": args.out,
        "adjectives": len(prior.adjectives),
        "nouns": len(prior.nouns),
        "feature_dim": prior.feature_dim,
        "edge_occurrences": len(prior.edges),
        "graph_edges": int(graph["edge_index"].shape[1]),
        "shared_words": graph["shared_words"],
        "sha256": hashes,
    }
    json.dump(summary, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
