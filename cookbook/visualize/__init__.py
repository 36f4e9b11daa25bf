"""What a convnet learned: filter visualization, Grad-CAM, attributions, dataset examples.

Works on the TensorFlow and JAX backends, for image models (N, H, W, C) and, where it
makes sense, 1-D models (N, samples, C). The package, one method family per module:

* ``_backend``: the only per-backend code (gradients, compilation) and the "taps"
  that record, perturb and stop at a layer and unfold the softmax head;
* ``cam``: :func:`grad_cam`, :func:`grad_cam_plus_plus`, :func:`hires_cam`,
  :func:`layer_cam`, :func:`score_cam`, :func:`eigen_cam`, :func:`guided_grad_cam`;
* ``attribution``: :func:`saliency`, :func:`smoothgrad`, :func:`guided_backprop`,
  :func:`integrated_gradients`, :func:`occlusion`;
* ``maximize``: :func:`filter_images`, :func:`first_layer_filters`, :func:`deep_dream`;
* ``dataset``: :func:`activations`, :func:`rank_units`, :func:`top_activating`,
  :func:`field_patch`, :func:`features`, :func:`nearest_neighbours`, :func:`project`,
  :func:`linear_probes`;
* ``scores``: :func:`pointing_game`, :func:`deletion_auc`, :func:`insertion_auc`,
  :func:`average_drop`, :func:`increase_in_confidence`, :func:`randomization_check`;
* ``plot``: :func:`make_grid`, :func:`plot_grid`, :func:`plot_filters`,
  :func:`overlay`, :func:`to_display`.

Throughout: BatchNorm runs in inference mode (``training=False``); mixed-precision
models work, with objectives reduced and gradients returned in float32; non-finite
gradients stop with :class:`NonFiniteGradientError`. No method edits the user's model:
guided backpropagation changes the ReLUs' gradient only while it runs, and the
randomization check works on a copy. Every public name is importable from
``cookbook.visualize``.
"""

from ._common import CONV_TYPES as CONV_TYPES  # not in __all__; kept for old imports
from ._common import NonFiniteGradientError, conv_layer_names
from .attribution import guided_backprop, integrated_gradients, occlusion, saliency, smoothgrad
from .cam import (
    eigen_cam,
    grad_cam,
    grad_cam_plus_plus,
    guided_grad_cam,
    hires_cam,
    layer_cam,
    score_cam,
)
from .dataset import (
    LinearProbes,
    TopActivating,
    activations,
    features,
    field_patch,
    linear_probes,
    nearest_neighbours,
    project,
    rank_units,
    top_activating,
)
from .maximize import deep_dream, filter_images, first_layer_filters
from .plot import make_grid, overlay, plot_filters, plot_grid, to_display
from .scores import (
    RandomizationCheck,
    average_drop,
    deletion_auc,
    increase_in_confidence,
    insertion_auc,
    pointing_game,
    randomization_check,
)

__all__ = [  # noqa: RUF022 - grouped by method family, the API reference's order
    "NonFiniteGradientError",
    "filter_images",
    "grad_cam",
    "grad_cam_plus_plus",
    "hires_cam",
    "layer_cam",
    "score_cam",
    "eigen_cam",
    "guided_grad_cam",
    "saliency",
    "smoothgrad",
    "guided_backprop",
    "integrated_gradients",
    "occlusion",
    "activations",
    "rank_units",
    "top_activating",
    "field_patch",
    "TopActivating",
    "features",
    "nearest_neighbours",
    "project",
    "linear_probes",
    "LinearProbes",
    "first_layer_filters",
    "deep_dream",
    "pointing_game",
    "deletion_auc",
    "insertion_auc",
    "average_drop",
    "increase_in_confidence",
    "randomization_check",
    "RandomizationCheck",
    "make_grid",
    "plot_grid",
    "plot_filters",
    "overlay",
    "to_display",
    "conv_layer_names",
]

# The public names report this package as their home, so help(), reprs and the API
# reference say cookbook.visualize.grad_cam, whichever module defines it.
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
