"""Network graphs: node types (:mod:`refsim.graph.nodes`), the DAG (:mod:`refsim.graph.graph`)
and the dense reference layer arithmetic (:mod:`refsim.graph.ops`)."""
from .graph import FORMAT_NAME, FORMAT_VERSION, Graph
from .nodes import (NODE_TYPES, Add, AvgPool2d, Delay, Concat, Conv2d, ConvTranspose2d, Dropout, Flatten, Input, Linear, Neuron,
                    Node, Output, Scale, SumPool2d, Upsample, get_node_type)

__all__ = ["Graph", "FORMAT_NAME", "FORMAT_VERSION", "NODE_TYPES", "get_node_type", "Node", "Input", "Conv2d",
           "ConvTranspose2d", "AvgPool2d", "SumPool2d", "Concat", "Add", "Delay", "Upsample", "Flatten", "Linear", "Dropout", "Scale",
           "Neuron", "Output"]
