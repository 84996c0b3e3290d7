from adpe_mm.analysis.flops import BlockSpec, RPESpec, block_flops


def test_the_reference_lookup_costs_the_interpolation_of_the_relaxed_one():
    L, H, nb = 50, 12, 50
    cost = {mode: block_flops(L, BlockSpec(768, 3072, H, RPESpec(nb, mode, 'coord')))
            for mode in ('integer', 'relaxed', 'reference')}
    # both continuous lookups contract [H, L, nb] with the clean and the shifted [L, nb, L] matrices
    assert cost['relaxed'] == cost['reference'] == cost['integer'] + 2 * H * L * nb * L
