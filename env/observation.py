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
=========  ===============================================================================
"""

from __future__ import annotations

import dataclasses

CURRENT_FEATURES = 8
PROGRESS_FEATURES = 4
PER_CANDIDATE = 5
PER_UPCOMING = 5


@dataclasses.dataclass(frozen=True)
class ObservationSpec:
    """Sizes that fix the observation shape: offset actions N, occupancy bins M, window W."""

    num_offset_actions: int = 8
    occupancy_bins: int = 16
    window: int = 8

    @property
    def num_actions(self) -> int:
        """N offset actions plus the slow action."""
        return self.num_offset_actions + 1

    @property
    def size(self) -> int:
        """Length of the feature vector."""
        return (
            CURRENT_FEATURES
            + PROGRESS_FEATURES
            + self.occupancy_bins
            + PER_CANDIDATE * self.num_offset_actions
            + PER_UPCOMING * self.window
        )
