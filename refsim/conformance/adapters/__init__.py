"""Adapters to other frameworks. The only modules of refsim that import torch, and only lazily."""
