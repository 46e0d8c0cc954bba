"""Platforms do all I/O.  Both speak the :class:`~aqua_lab.platforms.base.Platform` protocol."""
