"""Contracts: the pydantic models that cross a boundary (client -> workflow -> activity).

This package imports neither ``workflows`` nor ``activities``, so workflows, activities,
the client and the tests all import it and imports flow one way:
``client -> workflows -> activities -> contracts``.
"""
