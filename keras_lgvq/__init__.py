"""keras-lgvq: language-guided vector-quantized image tokenizers for Keras 3.

```python
import keras_lgvq

model = keras_lgvq.LGVQ.from_preset("scenes")
model.compile(learning_rate=1e-3)
ds = keras_lgvq.datasets.make_dataset(
    "scenes", split="train", batch_size=16, text_prior=model.text_prior)
model.fit(ds, epochs=1)
```
"""

from keras_lgvq import datasets
from keras_lgvq import layers
from keras_lgvq import losses
from keras_lgvq import metrics
from keras_lgvq import models
from keras_lgvq import optimizers
from keras_lgvq import text_priors
from keras_lgvq.models import LGVQ
from keras_lgvq.models import VQGAN
from keras_lgvq.models import VQGANBackbone
from keras_lgvq.version import __version__
