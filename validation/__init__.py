"""Reproductions and cross-library measurements (torch and the SNN libraries needed); importable as
``validation.<module>`` from the repository root, which the tests do."""
