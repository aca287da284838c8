"""The beam search's own kernels: expand a beam by every legal action, advance it.

They step copies of game slots with the game's kernels (``apply``, ``copy_slot``,
``msa_rollout``), in compiled loops over the whole beam.
"""

from __future__ import annotations

from mallocmuzero.env.kernels import copy_slot, jit
from mallocmuzero.env.msa_kernels import msa_rollout
from mallocmuzero.env.pick_kernels import is_legal
from mallocmuzero.env.step_kernels import apply


@jit
def beam_expand(bank, st, beam, scratch, best_slot, best_saved, scores, parents, actions):
    """Score every legal child (pick or place) of every beam slot by its msa completion.

    Fills ``scores/parents/actions`` for the children and returns their count. The best
    completion seen is copied into ``best_slot`` when it beats ``best_saved[0]``.
    """
    n_actions = max(st.pick.shape[1], st.cand_off.shape[1] + 1)
    k = 0
    for i in range(beam.shape[0]):
        g = beam[i]
        for a in range(n_actions):
            if not is_legal(st, g, a):
                continue
            copy_slot(st, g, scratch)
            apply(bank, st, scratch, a)
            saved = msa_rollout(bank, st, scratch)
            scores[k] = saved
            parents[k] = i
            actions[k] = a
            k += 1
            if saved > best_saved[0]:
                best_saved[0] = saved
                copy_slot(st, scratch, best_slot)
    return k


@jit
def beam_advance(bank, st, beam, next_beam, parents, actions):
    """Build the next beam: slot ``next_beam[j]`` = child ``actions[j]`` of ``beam[parents[j]]``."""
    for j in range(parents.shape[0]):
        copy_slot(st, beam[parents[j]], next_beam[j])
        apply(bank, st, next_beam[j], actions[j])
