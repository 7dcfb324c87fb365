"""Order of the gallery: from a first model to the specialised topics."""

ORDER = [
    "plot_quickstart.py",
    "plot_grid_search.py",
    "plot_frontier_adult.py",
    "plot_early_stopping.py",
    "plot_data_audit.py",
    "plot_cnn_digits.py",
    "plot_gpu.py",
]


class ExampleOrder:
    """Sort key of sphinx-gallery's ``within_subsection_order``.

    Parameters
    ----------
    src_dir : str
        The gallery's source folder (unused).

    """

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        """Position of ``filename`` in :data:`ORDER`; unlisted ones last, by name."""
        if filename in ORDER:
            return (ORDER.index(filename), filename)
        return (len(ORDER), filename)
