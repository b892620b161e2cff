"""Recording a torch model's traces step by step: :func:`record` (and :func:`record_traced` for
models that are not ``nn.Sequential``). The code lives with the torch exporter, in
:mod:`refsim.io.torch.record`, so that one package reads torch neuron modules; this name stays
because the docs and users' scripts import it."""
from ..io.torch.record import record, record_traced

__all__ = ["record", "record_traced"]
