"""Structure-aware mutations of NIR graphs (issue 21): a reference NIR file copied and edited through
h5py: datasets deleted, replaced by other shapes, dtypes or non-finite values, node types renamed,
edges pointing at unknown or reversed nodes, scalars turned into arrays. ``validation/fuzz.py
--loaders nir`` runs them through ``refsim.io.nir.load_nir``; the suite runs a bounded number."""
import os
import shutil

import numpy as np

REFERENCE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "data", "nir",
                         "reference")
BASES = ("cnn_sinabs.nir", "lif_norse.nir", "braille_noDelay_bias_zero.nir")


def mutate(path, rng):
    """One random structural edit of the NIR file ``path`` in place (``rng`` a random.Random)."""
    import h5py
    with h5py.File(path, "r+") as f:
        nodes = f["node/nodes"]
        names = sorted(nodes)
        node = nodes[rng.choice(names)]
        keys = sorted(node)
        k = rng.randrange(8)
        if k == 0 and keys:  # a field deleted
            del node[rng.choice(keys)]
        elif k == 1 and keys:  # a field of another shape
            key = rng.choice([x for x in keys if x != "type"] or keys)
            del node[key]
            node[key] = np.ones(rng.choice([(0,), (1,), (3,), (2, 2), (7, 1, 1), ()]), np.float32)
        elif k == 2 and keys:  # non-finite or huge values
            key = rng.choice([x for x in keys if x != "type"] or keys)
            raw = np.asarray(node[key][()])
            if raw.dtype.kind not in "biuf":
                return  # a text field: nothing numeric to damage
            a = raw.astype(np.float64)
            if a.size:
                a.flat[rng.randrange(a.size)] = rng.choice([np.nan, np.inf, -np.inf, 1e39, -1e300])
            del node[key]
            node[key] = a.astype(np.float32) if rng.random() < 0.5 else a
        elif k == 3:  # another node type
            if "type" in node:
                del node["type"]
            node["type"] = rng.choice(["Conv2d", "IF", "LIF", "Affine", "Flatten", "Nope", "Input", "Output", ""])
        elif k == 4:  # an edge to an unknown node, or reversed
            e = f["node/edges"]
            edges = [[x.decode() if isinstance(x, bytes) else str(x) for x in row] for row in e[()]]
            if edges:
                i = rng.randrange(len(edges))
                edges[i] = [edges[i][1], edges[i][0]] if rng.random() < 0.5 else [edges[i][0], "ghost"]
            del f["node/edges"]
            f["node/edges"] = np.array(edges, dtype=object) if edges else np.zeros((0, 2), dtype=object)
        elif k == 5 and keys:  # a scalar field turned into an array or text
            key = rng.choice(keys)
            del node[key]
            node[key] = rng.choice([np.arange(5), "text", np.array([[1, 2], [3, 4]])])
        elif k == 6:  # a node removed
            del nodes[rng.choice(names)]
        elif k == 7 and keys:  # integer fields of the wrong sign or size
            key = rng.choice(keys)
            del node[key]
            node[key] = np.array(rng.choice([[-1, -1], [0, 0], [2 ** 40, 1], [1, 2, 3]]))


def case(tmp_dir, rng, i=0):
    """A mutated copy of a reference graph in ``tmp_dir``; returns its path."""
    p = os.path.join(tmp_dir, f"m{i}.nir")
    shutil.copyfile(os.path.join(REFERENCE, rng.choice(BASES)), p)
    for _ in range(rng.randint(1, 3)):
        mutate(p, rng)
    return p
