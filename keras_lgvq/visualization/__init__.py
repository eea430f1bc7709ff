"""Figures and tables of the evaluation reports, drawn with matplotlib.

matplotlib (and Pillow, for PNG files) are optional: `pip install
keras-lgvq[viz]`. Importing this package never needs them; drawing a
figure without them raises an ImportError that says how to install them.
The tables are plain text and need neither.

- `plot_training_curves`: logged losses per step, one line per model;
- `plot_codebook_usage`: per-code counts and the sorted usage curve;
- `plot_reconstructions`, `plot_retrieval`: image grids;
- `plot_metric_bars`: one panel per metric, optional error bars;
- `comparison_rows`, `text_table`, `markdown_table`: the metric tables,
  one row per flat metric key;
- `write_evaluation_figures`, `write_comparison_figures`: a report's PNGs.
"""

from keras_lgvq.visualization.codebook_usage import plot_codebook_usage
from keras_lgvq.visualization.image_grids import plot_reconstructions
from keras_lgvq.visualization.image_grids import plot_retrieval
from keras_lgvq.visualization.metric_charts import plot_metric_bars
from keras_lgvq.visualization.plotting import INSTALL_HINT
from keras_lgvq.visualization.plotting import read_png
from keras_lgvq.visualization.plotting import require_matplotlib
from keras_lgvq.visualization.plotting import save_figure
from keras_lgvq.visualization.plotting import to_uint8
from keras_lgvq.visualization.plotting import write_png
from keras_lgvq.visualization.report import metric_chart_values
from keras_lgvq.visualization.report import retrieval_markdown
from keras_lgvq.visualization.report import unavailable_notes
from keras_lgvq.visualization.report import usage_counts
from keras_lgvq.visualization.report import write_comparison_figures
from keras_lgvq.visualization.report import write_evaluation_figures
from keras_lgvq.visualization.tables import comparison_rows
from keras_lgvq.visualization.tables import format_value
from keras_lgvq.visualization.tables import markdown_table
from keras_lgvq.visualization.tables import metric_spec
from keras_lgvq.visualization.tables import table_keys
from keras_lgvq.visualization.tables import text_table
from keras_lgvq.visualization.training_curves import plot_training_curves
