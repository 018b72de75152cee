"""Quality targets: the K that reaches a PSNR or fits a byte budget, found by search.

Knows nothing of pixels or files: it searches K through callables that measure one K.
Both targets are the boundary of a yes/no question over K in 1..k_max:

    psnr=DB       does K reach DB?        the smallest K that does
    max_bytes=N   does K's file exceed N? one less than the smallest K that does

The search probes K = 1, 2, 4, 8, ... (capped at k_max) until the answer turns to yes,
then bisects the last interval: about 2 log2(K) measurements, not k_max.

What the result guarantees: for psnr, PSNR(K) >= DB and PSNR(K - 1) < DB (or K = 1);
for max_bytes, size(K) <= N and size(K + 1) > N (or K = k_max, or K is the image's
number of colours, whose image every larger K gives too: TargetResult.colours). A raw
file's size grows with K, so then the max_bytes answer is the largest fitting K in the
range; a coded file's need not (a small K can code larger than the next), and the
search does not look past K + 1. k-means PSNR nearly always grows with K, and where it
does the psnr answer is the smallest K in the range that reaches DB; where PSNR dips
as K grows, a smaller K may reach DB too, and the search does not look for it.
"""

from dataclasses import dataclass, replace

from . import checks

DEFAULT_MAX_K = 256


@dataclass(frozen=True)
class TargetResult:
    """Which K a target search chose and what that K reached."""

    target: str  # "psnr" or "max_bytes"
    goal: float  # dB, or bytes
    k: int  # the K chosen
    reached: float  # PSNR in dB, or file size in bytes, at K
    met: bool
    k_max: int  # the search range is 1..k_max
    tried: tuple  # the K values measured, in search order
    # Set when the image has fewer colours than the K the search chose, so that every K
    # from here up gives this image: k and reached are then those of the image written.
    colours: int | None = None

    def with_colours(self, colours, reached):
        """This result for an image of `colours` colours, fewer than the K chosen: the
        K of the image written, and its size (or PSNR)."""
        return replace(self, k=colours, reached=reached, colours=colours)

    def describe(self):
        """One line for a person: which K, what it reached, and whether the goal was met."""
        # The boundary the search proved, not "smallest" or "largest": PSNR can dip as K
        # grows, and a coded file can shrink.
        if self.target == "psnr":
            goal, reached = f"PSNR >= {self.goal:g} dB", f"{self.reached:.2f} dB"
            edge = f"K={self.k - 1} does not reach it" if self.k > 1 else "the smallest K"
            miss = f"the best K tried; the search stops at K={self.k_max}: a larger k (-k) searches further"
        else:
            goal, reached = f"size <= {int(self.goal):,} bytes", f"{int(self.reached):,} bytes"
            if self.colours is not None:
                edge = "as many as the image has colours: every larger K gives this file"
            else:
                edge = f"K={self.k + 1} does not fit" if self.k < self.k_max else "the largest K searched"
            miss = "the smallest file kmz can write for this image"
        if self.met:
            return f"target {goal} met: K={self.k} ({reached}; {edge}; {len(self.tried)} K tried in 1..{self.k_max})"
        return f"target {goal} NOT met: closest is K={self.k} at {reached} ({miss})"


def first_yes(question, k_max):
    """The smallest K in 1..k_max for which question(K) is true, by exponential probing
    then bisection (exact when the answer flips from no to yes once); None when
    question(k_max) is false. Returns (K or None, the K asked, in order)."""
    k_max = checks.whole("k_max", k_max, 1)
    asked = []

    def ask(k):
        asked.append(k)
        return question(k)

    below, k = 0, 1  # invariant: question(below) is false (0 stands for "none yet")
    while not ask(k):
        if k == k_max:
            return None, tuple(asked)
        below, k = k, min(2 * k, k_max)
    while k - below > 1:
        middle = (below + k) // 2
        if ask(middle):
            k = middle
        else:
            below = middle
    return k, tuple(asked)


def smallest_k_for_psnr(goal, psnr_at, k_max=DEFAULT_MAX_K):
    """The smallest K whose PSNR (psnr_at(K), in dB) reaches goal; when none in 1..k_max
    does, the K tried with the highest PSNR, and met=False. goal must be a finite
    number above 0 (a NaN would never be reached, and the search would end at k_max)."""
    goal = checks.positive("goal", goal)
    measured = {}

    def reaches(k):
        measured[k] = float(psnr_at(k))
        return measured[k] >= goal

    k, tried = first_yes(reaches, k_max)
    met = k is not None
    if not met:
        k = max(measured, key=lambda key: (measured[key], -key))
    return TargetResult("psnr", goal, k, measured[k], met, k_max, tried)


def largest_k_for_bytes(budget, size_at, k_max=DEFAULT_MAX_K):
    """A K whose file (size_at(K) bytes) fits budget where K + 1's does not (the largest
    that fits when sizes grow with K); K = 1 and met=False when not even that fits."""
    budget = checks.whole("budget", budget, 1)
    too_big, tried = first_yes(lambda k: size_at(k) > budget, k_max)
    if too_big is None:
        k = k_max
    else:
        k = max(1, too_big - 1)
    size = size_at(k)
    return TargetResult("max_bytes", budget, k, size, size <= budget, k_max, tried)
