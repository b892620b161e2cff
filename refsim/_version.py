"""refsim's version, in one place: the package, trace files, reports and setup.py read it here."""
__version__ = "0.1.0"
