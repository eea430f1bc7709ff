"""Language priors built offline from captions (VQCT's word graph).

`python -m keras_lgvq.priors.vqct --captions scenes --text-prior minilm
--out priors/scenes_minilm` builds a VQCT prior; `VQCTPrior.load` /
`load_prior` read it (or the official `.pkl`, without unpickling), and
`keras_lgvq.layers.quantizers.vqct_quantizer.VQCTQuantizer.from_prior`
turns it into a quantizer. spaCy is imported only when captions are tagged.
"""

from keras_lgvq.priors.vqct_prior import VQCTPrior
from keras_lgvq.priors.vqct_prior import WordCounts
from keras_lgvq.priors.vqct_prior import build_prior
from keras_lgvq.priors.vqct_prior import count_words
from keras_lgvq.priors.vqct_prior import load_prior
from keras_lgvq.priors.vqct_prior import load_tagger
from keras_lgvq.priors.vqct_prior import read_captions
from keras_lgvq.priors.vqct_prior import read_official_prior
from keras_lgvq.priors.vqct_prior import scenes_captions
