"""Layout of the game's fixed-shape observation vector (written by ``kernels.observe_batch``).

Every feature is scale-free (sizes over the capacity, times over the program's length,
savings in percent of the all-slow time), so one network can read workloads of any size.

=========  ===============================================================================
index      feature
=========  ===============================================================================
0..7       current buffer: size/C, sqrt(size/C), lifetime/T, start/T, end/T, standalone
           saving (% of all-slow time), saving if placed now (%), now/standalone ratio
8..11      progress: decided fraction, saved so far / all-slow time, standalone savings
           still undecided / all-slow time, peak blocked fraction over the live range
12..12+M   fast-memory occupancy: blocked fraction of each of M capacity bins over the
           current buffer's live range
then N x 5 per offset action: legal, offset/C, gap/C, slack (gap - size)/C, is-top
then W x 5 per upcoming buffer: present, size/C, lifetime/T, standalone saving (%),
           live range overlaps the current buffer's
then       game v2 (K > 1 pick slots) only: is a pick step; then K x 10 per pick slot:
           offers a buffer, its size/C, lifetime/T, start/T, end/T, standalone saving
           (%), saving if placed now (%), a gap holds it, its best-fit offset/C, its rank
           among the undecided buffers in msa's order (fraction)
then       with ``lookahead`` only, A x 2 per action (A = max(K, N + 1): at a place step
           the offset actions, then slow at index N; at a pick step the pick slots): the
           advantage of its msa completion over msa's own choice (%), is the best
           completion; then msa's completion from here (% still to save)
=========  ===============================================================================

At a pick step the current-buffer, occupancy, offset and upcoming blocks describe msa's
next buffer (pick slot 0), as they would at its place step.

The lookahead block is a heuristic rollout, as AlphaGo mixed fast rollouts with its value
network: for every legal action the environment plays msa's rule to the end of the episode
on a copy of the state and reports what it would save. It costs N+1 msa completions per
observation (a few milliseconds on 500-buffer programs), and tells the agent what the
heuristic would make of each choice; the agent learns when to follow it and when not.
Search still unrolls the learned model only; the block exists at real states alone.
"""

from __future__ import annotations

import dataclasses

CURRENT_FEATURES = 8
PROGRESS_FEATURES = 4
PER_CANDIDATE = 5
PER_UPCOMING = 5
PER_LOOKAHEAD_ACTION = 2
PER_PICK = 10


@dataclasses.dataclass(frozen=True)
class ObservationSpec:
    """Sizes that fix the observation shape and the game version.

    Offset actions N, occupancy bins M, upcoming window W, and game v2's K pick slots with
    their encoding (``pick_rules.ENCODINGS``); K = 1 is game v1. The defaults are the game
    the shipped agent plays (:data:`SHIPPED_GAME`), the one source of the config's
    ``game`` defaults too; :data:`GAME_V1` is game v1 without the lookahead block.
    """

    num_offset_actions: int = 8
    occupancy_bins: int = 16
    window: int = 8
    lookahead: bool = True
    pick_candidates: int = 8
    pick_encoding: str = "dynamic"

    @property
    def num_actions(self) -> int:
        """One head for both phases: max(K pick slots, N offset actions plus slow)."""
        return max(self.pick_candidates, self.num_offset_actions + 1)

    @property
    def pick_start(self) -> int:
        """Index of the game v2 block (the phase flag, then the pick slots)."""
        return (
            CURRENT_FEATURES
            + PROGRESS_FEATURES
            + self.occupancy_bins
            + PER_CANDIDATE * self.num_offset_actions
            + PER_UPCOMING * self.window
        )

    @property
    def lookahead_start(self) -> int:
        """Index of the first lookahead feature (the length without the block)."""
        block = 1 + PER_PICK * self.pick_candidates if self.pick_candidates > 1 else 0
        return self.pick_start + block

    @property
    def lookahead_columns(self) -> tuple[list[int], int]:
        """Columns of each action's completion advantage, and of msa's completion to go."""
        first, step = self.lookahead_start, PER_LOOKAHEAD_ACTION
        return [first + step * a for a in range(self.num_actions)], first + step * self.num_actions

    @property
    def size(self) -> int:
        """Length of the feature vector."""
        block = PER_LOOKAHEAD_ACTION * self.num_actions + 1 if self.lookahead else 0
        return self.lookahead_start + block


#: The shipped game: v2 with 8 pick slots (7 rules and the dynamic rule) and lookahead
#: observations, chosen by BENCHMARKS.md section (g).
SHIPPED_GAME = ObservationSpec()
#: Game v1 (msa's order, no pick step) without the lookahead block.
GAME_V1 = ObservationSpec(lookahead=False, pick_candidates=1, pick_encoding="window")
