"""What the notebooks share, one file per concern.

- :mod:`pcoh.notebook.workspace`: the smoke switch, the project's folders, the shared digits experiment.
- :mod:`pcoh.notebook.selection`: the runs of one mode and seed, their features, UMAP panels.
- :mod:`pcoh.notebook.prose`: sentences whose every number is computed from the results.
- :mod:`pcoh.notebook.controls`: widgets that redraw a figure.
- :mod:`pcoh.notebook.focus`: notebook 03's neighbour control (students at several focus values).
- :mod:`pcoh.notebook.coranking`: notebook 04's co-ranking section (matrices, per-point scores, readings).
- :mod:`pcoh.notebook.live`: notebook 10's live training (a student trained in a thread, one figure per epoch).

Every public name is importable from ``pcoh.notebook`` itself.
"""
from .controls import *  # noqa: F401,F403
from .controls import __all__ as _controls
from .coranking import *  # noqa: F401,F403
from .coranking import __all__ as _coranking
from .focus import *  # noqa: F401,F403
from .focus import __all__ as _focus
from .live import *  # noqa: F401,F403
from .live import __all__ as _live
from .prose import *  # noqa: F401,F403
from .prose import __all__ as _prose
from .selection import *  # noqa: F401,F403
from .selection import __all__ as _selection
from .workspace import *  # noqa: F401,F403
from .workspace import __all__ as _workspace

__all__ = [*_workspace, *_selection, *_prose, *_controls, *_focus, *_coranking, *_live]
