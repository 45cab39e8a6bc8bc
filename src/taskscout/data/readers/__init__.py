"""Parsers for the file formats catalog data comes in (Orange ``.tab``, R data files, SWORD zText).

Each module reads bytes that the catalog has already taken out of a verified archive and returns plain
Python / pandas objects; none of them imports, unpickles or executes anything from the data. A file that
does not have the layout a reader expects raises :class:`~taskscout.errors.CatalogError` naming the file
and what was expected.
"""
