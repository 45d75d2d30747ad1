"""Figures of the main job and the notebooks, by theme.

=============================  =======================================================================
module                         figures
=============================  =======================================================================
:mod:`pcoh.plots.toy`          toy points and dissimilarity matrices
:mod:`pcoh.plots.ranks`        teacher rank against student rank, soft ranks against the strength
:mod:`pcoh.plots.results`      metrics by method, per-reference distributions, global vs per-reference
:mod:`pcoh.plots.training`     learning curves
:mod:`pcoh.plots.images`       image grids, a reference's neighbours, class-sorted dissimilarities
:mod:`pcoh.plots.embedding`    2-D embeddings (UMAP, t-SNE, PCA), one panel or a grid
:mod:`pcoh.plots.diagnostics`  the probabilistic form: ECDFs, probabilistic ranks, PC_n against n
:mod:`pcoh.plots.coranking`    R_NX against log K by method, the co-ranking matrix, per-point scores
=============================  =======================================================================

Every plot function takes ``ax=None`` (a new figure is made when omitted) and returns the axes,
as scikit-learn and umap's plot helpers do. Figures are made for slides: :func:`style` is the one
presentation style (text of at least 14 pt on a 1920 x 1080 slide), :func:`slide_figure` and
:func:`slide_grid` make figures of a 16:9 slide or half of one (grids with exactly one panel per
item drawn), and :func:`savefig` writes PNG and SVG side by side, deterministically (the same
figure gives the same bytes), after checking the figure against that rule (:func:`slide_problems`). Every name is also available here,
as ``pcoh.plots.<name>``. The tables are made by :mod:`pcoh.tables`; two of its functions,
``per_reference_frame`` and ``style_results``, are offered here too.
"""
from ..tables import per_reference_frame, style_results
from ._base import (METHOD_COLORS, MIN_FONT_PT, SLIDE_DPI, SLIDE_SIZES, contrast_ratio, grid_rows, render, savefig,
                    slide_figure, slide_grid, slide_problems, style)
from .toy import plot_points, plot_dissimilarity_matrix
from .ranks import plot_rank_vs_rank, plot_soft_ranks, plot_soft_rank_bars, plot_rank_hexbin, plot_rank_hexbin_grid
from .results import (plot_frontier, plot_global_vs_per_reference, plot_metric_bars, plot_metric_panels, plot_per_reference,
                      plot_per_reference_by_mode, plot_per_reference_distributions)
from .training import plot_learning_curves
from .images import plot_class_dissimilarities, plot_images, plot_neighbors
from .embedding import plot_embedding, plot_embedding_grid
from .coranking import plot_coranking_matrix, plot_point_scores, plot_rnx_curves, plot_rnx_panels, rnx_by_method
from .diagnostics import (plot_concordance_by_gap, plot_pc_vs_n, plot_per_class_heatmap, plot_probabilistic_ranks,
                          plot_reference_ecdfs, plot_uniformity)

__all__ = [
    "METHOD_COLORS",
    "SLIDE_SIZES",
    "SLIDE_DPI",
    "MIN_FONT_PT",
    "style",
    "slide_figure",
    "slide_grid",
    "grid_rows",
    "slide_problems",
    "contrast_ratio",
    "savefig",
    "render",
    "plot_points",
    "plot_dissimilarity_matrix",
    "plot_rank_vs_rank",
    "plot_soft_ranks",
    "plot_soft_rank_bars",
    "plot_rank_hexbin",
    "plot_rank_hexbin_grid",
    "plot_metric_bars",
    "plot_metric_panels",
    "plot_per_reference",
    "plot_per_reference_distributions",
    "plot_per_reference_by_mode",
    "plot_global_vs_per_reference",
    "plot_frontier",
    "plot_learning_curves",
    "plot_class_dissimilarities",
    "plot_images",
    "plot_neighbors",
    "plot_embedding",
    "plot_embedding_grid",
    "plot_reference_ecdfs",
    "plot_probabilistic_ranks",
    "plot_uniformity",
    "plot_pc_vs_n",
    "plot_concordance_by_gap",
    "plot_per_class_heatmap",
    "plot_rnx_curves",
    "plot_rnx_panels",
    "plot_coranking_matrix",
    "plot_point_scores",
    "rnx_by_method",
    "per_reference_frame",
    "style_results",
]
