import numpy as np

from pgfa_models.graph import CENTER_JOINT, NTU25_EDGES, Graph, hop_distance, spatial_adjacency


def test_edges_form_a_tree_over_25_joints():
    assert len(NTU25_EDGES) == 24
    dist = hop_distance(25, NTU25_EDGES, max_hop=25)
    assert np.isfinite(dist).all(), "graph is not connected"
    assert dist[3, 0] == 4  # head-neck-spine shoulder-spine mid-spine base
    assert dist[20, 20] == 0 and dist[20, 2] == 1 and dist[20, 4] == 1 and dist[20, 8] == 1


def test_spatial_partition_shape_and_normalisation():
    A = Graph().A
    assert A.shape == (3, 25, 25) and A.dtype == np.float32
    # root subset is the normalised self loop
    assert np.count_nonzero(A[0] - np.diag(np.diag(A[0]))) == 0
    # each column (output joint) sums to 1 over all subsets: A D^-1 with self loops
    np.testing.assert_allclose(A.sum(axis=(0, 1)), np.ones(25), atol=1e-6)
    # every bone appears exactly once in each direction across subsets 1 and 2
    both = (A[1] > 0) | (A[2] > 0)
    assert both.sum() == 2 * 24
    assert not ((A[1] > 0) & (A[2] > 0)).any()


def test_partition_is_relative_to_spine_shoulder():
    A = spatial_adjacency()
    to_c = hop_distance(25, NTU25_EDGES, max_hop=25)[:, CENTER_JOINT]
    for j, i in zip(*np.nonzero(A[1])):
        assert to_c[j] > to_c[i]
    for j, i in zip(*np.nonzero(A[2])):
        assert to_c[j] < to_c[i]
    # neck (2) receives from head (3, farther) via subset 1 and from spine shoulder (20) via 2
    assert A[1, 3, 2] > 0 and A[2, 20, 2] > 0
    # degree of neck = 3 (self, head, spine shoulder)
    np.testing.assert_allclose(A[:, :, 2].sum(), 1.0)
    np.testing.assert_allclose(A[0, 2, 2], 1 / 3)


def test_edges_are_the_one_bone_list_of_layouts():
    """Issue 13: the NTU bone list is defined once (layouts.NTU25_BONES); graph.py derives its
    edges from it instead of re-typing them."""
    import inspect

    from pgfa_models import graph
    from pgfa_models.layouts import NTU25_BONES
    assert NTU25_EDGES is NTU25_BONES
    assert Graph().edges is NTU25_BONES
    src = inspect.getsource(graph)
    assert "(1, 2), (2, 21)" not in src and "BONES_1BASED" not in src
