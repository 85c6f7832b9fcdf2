"""Task-grouping losses, relaxations, routing and grouping options against hand-computed values."""

from __future__ import annotations

import pytest
import torch

from cllstr.train import grouping as G

P_TM = torch.tensor([[0.7, 0.3], [0.6, 0.4], [0.1, 0.9]])


def test_grouping_loss_eq9() -> None:
    # column sums 1.4 and 1.6: nothing is missing at mu = 1; at mu = (1, 2) the second head lacks 0.4
    assert G.grouping_loss(P_TM).item() == pytest.approx(0.0)
    assert G.grouping_loss(P_TM, (1.0, 2.0)).item() == pytest.approx(0.4)
    lopsided = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.9, 0.1]])  # sums 2.6 and 0.4
    assert G.grouping_loss(lopsided).item() == pytest.approx(0.6)


def test_integrated_loss_eq8_and_word_head_probs() -> None:
    p_wt = G.word_task_probs(torch.tensor([0, 2]), tasks=3)
    assert p_wt.tolist() == [[1, 0, 0], [0, 0, 1]]
    p_wm = G.word_head_probs(p_wt, P_TM)
    torch.testing.assert_close(p_wm, torch.tensor([[0.7, 0.3], [0.1, 0.9]]))
    ctc = torch.tensor([[2.0, 4.0], [1.0, 3.0]])
    # (0.7+0.1)*2 + (0.3+0.1)*4 + (0.1+0.1)*1 + (0.9+0.1)*3 = 1.6 + 1.6 + 0.2 + 3.0
    assert G.integrated_loss(ctc, p_wm, 0.1).item() == pytest.approx(6.4)
    assert G.integrated_loss(ctc, p_wm, 0.0).item() == pytest.approx(0.7 * 2 + 0.3 * 4 + 0.1 * 1 + 0.9 * 3)
    unknown = G.word_task_probs(torch.tensor([-1]), tasks=4)
    assert unknown.tolist() == [[0.25] * 4]


def test_hard_one_hot_and_zero_epsilon_is_the_per_group_sum() -> None:
    torch.manual_seed(0)
    groups = G.parse_grouping("fixed:AK-BCHJL", heads=2).groups
    p_tm = torch.zeros(7, 2)
    for j, g in enumerate(groups):
        p_tm[list(g), j] = 1.0
    scripts = torch.tensor([0, 5, 6, 1, 3, 0])
    ctc = torch.rand(6, 2) * 5
    p_wm = G.word_head_probs(G.word_task_probs(scripts), p_tm)
    head_of = {i: j for j, g in enumerate(groups) for i in g}
    expected = sum(ctc[b, head_of[int(s)]] for b, s in enumerate(scripts))
    assert G.integrated_loss(ctc, p_wm, 0.0).item() == pytest.approx(float(expected))


def test_gumbel_relaxation_is_replayable_and_carries_gradients_to_w() -> None:
    w = torch.zeros(7, 3, requires_grad=True)
    gen = torch.Generator().manual_seed(5)
    state = gen.get_state()
    p = G.gumbel_softmax(w, tau=0.5, generator=gen)
    torch.testing.assert_close(p.sum(dim=-1), torch.ones(7))
    u = torch.rand((7, 3), generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(p, ((-torch.log(-torch.log(u))) / 0.5).softmax(-1))
    gen.set_state(state)
    torch.testing.assert_close(G.task_head_probs(w, 0.5, True, gen), p)  # the same noise again
    torch.testing.assert_close(G.task_head_probs(w, 0.5, False), torch.full((7, 3), 1 / 3))
    p_wm = G.word_head_probs(G.word_task_probs(torch.tensor([0, 6, 6])), p)
    loss = G.integrated_loss(torch.rand(3, 3), p_wm, 0.2) + G.grouping_loss(p)
    loss.backward()
    assert w.grad is not None and w.grad.abs().sum() > 0


def test_routing_rule() -> None:
    script_probs = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.3, 0.5]])
    # word 1: (0.63 + 0.06, 0.27 + 0.04) = (0.69, 0.31) -> 0; word 2: (0.14+0.18+0.05, 0.06+0.12+0.45) -> 1
    assert G.route(script_probs, P_TM).tolist() == [0, 1]


def test_grouping_string_and_assignment_changes() -> None:
    heads = [0, 1, 2, 3, 1, 0, 4]  # A B C H J K L
    w1 = torch.nn.functional.one_hot(torch.tensor(heads), 5).float() * 3
    assert G.grouping_string(w1) == "{A,K} {B,J} {C} {H} {L}"
    w2 = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 3, 0, 0, 3]), 5).float()
    assert G.grouping_string(w2) == "{A,J,K} {B} {C} {H,L}"
    assert G.assignment_changes(w1, w2) == 2
    assert G.assignment_changes(G.assignment(w1), heads) == 0


def test_fixed_grouping_parser() -> None:
    assert G.parse_grouping("fixed:AK-BCHJL").groups == ((0, 5), (1, 2, 3, 4, 6))
    assert G.parse_grouping("fixed:one-per-script", heads=7).groups == tuple((i,) for i in range(7))
    assert G.parse_grouping("gumbel", heads=3) == G.GroupingSpec("gumbel")
    assert G.check_grouping(1, "auto", 1.0, 0.2, 1.0, 1.0).mode == "none"
    assert G.check_grouping(4, "auto", 1.0, 0.2, 1.0, 1.0).mode == "gumbel"
    assert G.script_index("cat", "LAT") == 6 and G.script_index("x", "SynthMLT_KOR") == 5
    assert G.script_index("سلام", "") == 0 and G.script_index("123", None) == -1


@pytest.mark.parametrize(("args", "option", "match"), [
    ((0, "gumbel"), "--heads", "heads must be >= 1"),
    ((0, "auto"), "--heads", "heads must be >= 1"),
    ((2, "fixed:AK-BCH"), "--grouping", "misses script"),
    ((2, "fixed:AK-KBCHJL"), "--grouping", "repeats script 'K'"),
    ((2, "fixed:AX-BCHJKL"), "--grouping", "unknown script letter 'X'"),
    ((3, "fixed:AK-BCHJL"), "--heads", "2 groups but --heads is 3"),
    ((3, "none"), "--grouping", "needs --heads 1"),
    ((3, "soft"), "--grouping", "unknown grouping"),
])
def test_bad_grouping_options_name_the_option(args: tuple, option: str, match: str) -> None:
    with pytest.raises(G.GroupingError, match=match) as e:
        G.check_grouping(*args, tau=1.0, epsilon=0.2, mu=1.0, weight=1.0)
    assert e.value.option == option and isinstance(e.value, ValueError)


def test_bad_numbers_name_the_option() -> None:
    with pytest.raises(ValueError, match="must be >= 0, got -0.1") as e:
        G.check_grouping(3, "gumbel", tau=1.0, epsilon=-0.1, mu=1.0, weight=1.0)
    assert e.value.option == "--epsilon"
    with pytest.raises(ValueError, match="must be > 0") as e:
        G.check_grouping(3, "gumbel", tau=0.0, epsilon=0.1, mu=1.0, weight=1.0)
    assert e.value.option == "--tau"
    with pytest.raises(ValueError, match="epsilon must be >= 0"):
        G.integrated_loss(torch.zeros(1, 1), torch.zeros(1, 1), -1.0)
