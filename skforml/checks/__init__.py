"""Checks of the arguments of ``fit`` and ``predict``, and of the groups."""
