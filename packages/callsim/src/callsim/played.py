"""What the caller heard of the agent: the played channel, 20 ms at a time, and what it shows
around the caller's interjections and mid-sentence pauses.

Frame ``i`` is the played (write) channel from ``i`` x 20 ms to ``(i + 1)`` x 20 ms of the fork's
timeline. :class:`PlayedChannel` keeps a level for every frame of the call, the audio itself only
around interjections (with a short pre-roll), and what the switch threw away unplayed when it
was told to stop (``killAudio``, ``uuid_break``, ``stop_play``): the rest of the streamed audio,
or of the file and the files queued behind it.

Measured from the audio, the same way whether the agent pauses, ducks or stops:

- **yield**: the first stretch after the caller's onset where the played level stays below
  ``YIELD_DROP_DB`` under the agent's level over the second before the onset (never below
  ``VOICED_RMS``) for ``YIELD_SUSTAIN_FRAMES`` (60 ms), starting within ``YIELD_WINDOW_FRAMES``
  (2 s) of the onset. A quiet stretch during which the switch threw nothing away is the agent's
  own doing: it counts as a yield only when it lasts ``NATURAL_PAUSE_FRAMES`` (400 ms) or more
  and the agent's audio comes back in the resume window; shorter ones are pauses inside its
  speech, and a quiet that never ends is the end of what it had to say.
- **resumed**: the agent's level is back above that threshold within ``RESUME_WINDOW_FRAMES``
  (1.5 s) of the end of the interjection and before the caller's next action, *and* it is the
  interrupted speech going on: when audio was thrown away, the first ``MATCH_MS`` of what came
  back must be found (normalized cross-correlation of the samples) in the agent's interrupted
  audio, i.e. what the caller heard before the stop followed by what was thrown away, no more
  than ``MAX_BACKUP_MS`` before the point where the caller stopped hearing it, nor more than
  ``MAX_SKIP_MS`` after it. Other audio (an answer, another sentence, a new turn that says one
  of the cut turn's sentences again) is not a resumption.
- **lost_ms / repeated_ms**: where the returned audio begins in the interrupted audio, against
  where the caller stopped hearing it. Earlier: that much is heard twice (``repeated_ms``; the
  bridge backs up to the start of the cut word). Later: that much was never played
  (``lost_ms``). An agent that stopped for good lost everything thrown away. With nothing thrown
  away there is nothing lost; a back-up of ``MIN_OVERLAP_MS`` or more still shows as repeated.

This needs the returned audio to be the same samples as the interrupted audio (the bridge
re-sends what it kept, as it does); a bridge that synthesized the rest again would read as
"other audio". Comparing the samples is exact and costs milliseconds, where transcribing both
sides would cost seconds and bring its own word errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

FRAME_MS = 20
RATE = 16000
FRAME_BYTES = RATE * FRAME_MS // 1000 * 2
VOICED_RMS = 300.0  # about -40 dBFS: above line noise, below any speech
YIELD_DROP_DB = 10.0
YIELD_SUSTAIN_FRAMES = 3
YIELD_WINDOW_FRAMES = 2000 // FRAME_MS
REFERENCE_FRAMES = 1000 // FRAME_MS
NATURAL_PAUSE_FRAMES = 400 // FRAME_MS
RESUME_WINDOW_FRAMES = 1500 // FRAME_MS
MAX_BACKUP_MS = 1000
#: Returned audio found further than this past the cut point is no resumption of it (a new turn
#: repeating one of the cut turn's sentences): more than a word was skipped.
MAX_SKIP_MS = 600
PREROLL_FRAMES = 1200 // FRAME_MS  # more than MAX_BACKUP_MS plus MIN_OVERLAP_MS
MATCH_MS = 400
MIN_OVERLAP_MS = 100
MATCH_SCORE = 0.8
#: Lost audio up to one frame is the frame grid, not a word.
LOST_TOLERANCE_MS = 20
MAX_DISCARD_BYTES = 30 * RATE * 2


def rms(pcm: bytes | None) -> float:
    if not pcm:
        return 0.0
    x = np.frombuffer(pcm[: len(pcm) // 2 * 2], "<i2").astype(np.float32)
    return float(np.sqrt(np.mean(x * x))) if x.size else 0.0


def _ms(samples: int) -> int:
    return round(samples * 1000 / RATE)


class PlayedChannel:
    """The agent's side of one call as the caller heard it."""

    def __init__(self) -> None:
        #: RMS of every frame of the call; 0 where nothing was played.
        self.levels: list[float] = []
        #: (frame at which, audio the switch threw away unplayed), inside kept stretches.
        self.discards: list[tuple[int, bytes]] = []
        self._audio: dict[int, bytes] = {}
        self._keep: list[tuple[int, int]] = []

    def add(self, index: int, written: bytes | None, level: float | None = None) -> None:
        """Frame ``index`` of the played channel (None: nothing was played)."""
        while len(self.levels) < index:
            self.levels.append(0.0)
        self.levels.append(rms(written) if level is None else level)
        if written:
            self._audio[index] = written
        old = index - PREROLL_FRAMES
        if old in self._audio and not self._kept(old):
            del self._audio[old]

    def keep(self, start: int, end: int) -> None:
        """Keep the audio of frames [start, end), from at most ``PREROLL_FRAMES`` ago."""
        self._keep.append((max(0, start), end))

    def discarded(self, pcm: bytes) -> None:
        """The switch threw ``pcm`` away before playing it, after the frames played so far."""
        at = len(self.levels)
        if pcm and self._kept(at):
            self.discards.append((at, pcm[:MAX_DISCARD_BYTES]))

    def audio(self, start: int, end: int) -> bytes:
        """The audio played in frames [start, end), frames where nothing played left out."""
        return b"".join(self._audio.get(i, b"") for i in range(max(0, start), end))

    def _kept(self, index: int) -> bool:
        return any(lo <= index < hi for lo, hi in self._keep)


# ---------------------------------------------------------------------- the measurements


@dataclass(frozen=True)
class Quiet:
    """Frames [start, end) of the played channel below ``threshold``."""

    start: int
    end: int
    threshold: float


@dataclass(frozen=True)
class Interjection:
    """What the agent did about one interjection, in frames and milliseconds."""

    yielded: Quiet | None
    resumed_at: int | None  # the frame its interrupted speech came back (None: it did not)
    spoke_again_at: int | None  # its audio came back (the same speech or not)
    discarded_ms: int
    lost_ms: int
    repeated_ms: int
    #: How lost/repeated were found: "matched" (the returned audio found in the interrupted
    #: audio), "continuous" (nothing thrown away, no back-up found), "other" (what came back is
    #: not the interrupted speech) or None (it did not come back).
    alignment: str | None


def agent_level(levels: Sequence[float], before: int) -> float | None:
    """The agent's typical level over the second before frame ``before``; None if silent."""
    voiced = [x for x in levels[max(0, before - REFERENCE_FRAMES) : before] if x > VOICED_RMS]
    return float(np.median(voiced)) if voiced else None


def quiet_threshold(reference: float | None) -> float:
    if reference is None:
        return VOICED_RMS
    return max(VOICED_RMS, reference * 10 ** (-YIELD_DROP_DB / 20))


def quiet_stretches(
    levels: Sequence[float], start: int, stop: int, threshold: float
) -> list[Quiet]:
    """Stretches of at least ``YIELD_SUSTAIN_FRAMES`` below ``threshold`` that begin in
    [start, stop); one that runs to the end of the levels ends there."""
    found = []
    i = start
    while i < min(stop, len(levels)):
        if levels[i] >= threshold:
            i += 1
            continue
        j = i
        while j < len(levels) and levels[j] < threshold:
            j += 1
        if j - i >= YIELD_SUSTAIN_FRAMES:
            found.append(Quiet(i, j, threshold))
        i = j
    return found


def find_yield(
    levels: Sequence[float], discards_at: Sequence[int], onset: int, resume_by: int
) -> Quiet | None:
    """The quiet in which the agent yielded to speech starting at frame ``onset``; None if it
    did not. ``resume_by``: the frame by which a pause must end to count (see the module)."""
    threshold = quiet_threshold(agent_level(levels, onset))
    for quiet in quiet_stretches(levels, onset, onset + YIELD_WINDOW_FRAMES, threshold):
        if any(quiet.start <= at <= quiet.end for at in discards_at):
            return quiet
        if quiet.end - quiet.start >= NATURAL_PAUSE_FRAMES and quiet.end < min(
            resume_by, len(levels)
        ):
            return quiet
    return None


def find_return(levels: Sequence[float], quiet: Quiet, by: int) -> int | None:
    """The frame the agent's audio is back after ``quiet``, if before frame ``by``."""
    return quiet.end if quiet.end < min(by, len(levels)) else None


def locate(reference: bytes, probe: bytes, earliest: int) -> int | None:
    """Where ``probe`` begins in ``reference`` (in samples, from ``earliest`` on): the best
    normalized cross-correlation of at least ``MIN_OVERLAP_MS`` of overlap (the probe may run
    past the reference's end), if it reaches ``MATCH_SCORE``."""
    r = np.frombuffer(reference[: len(reference) // 2 * 2], "<i2").astype(np.float64)
    s = np.frombuffer(probe[: len(probe) // 2 * 2], "<i2").astype(np.float64)
    overlap_min = RATE * MIN_OVERLAP_MS // 1000
    last = len(r) - overlap_min  # the last start with enough overlap
    earliest = max(0, earliest)
    if len(s) < overlap_min or last < earliest:
        return None
    size = 1 << int(np.ceil(np.log2(len(r) + len(s))))
    corr = np.fft.irfft(np.fft.rfft(r, size) * np.conj(np.fft.rfft(s, size)), size)[: len(r)]
    starts = np.arange(len(r))
    overlap = np.minimum(len(s), len(r) - starts)
    r_energy = np.concatenate(([0.0], np.cumsum(r * r)))
    s_energy = np.concatenate(([0.0], np.cumsum(s * s)))
    denominator = np.sqrt((r_energy[starts + overlap] - r_energy[starts]) * s_energy[overlap])
    score = np.where(denominator > 1.0, corr / np.maximum(denominator, 1.0), 0.0)
    score[:earliest] = -1.0
    score[last + 1 :] = -1.0
    best = int(np.argmax(score))
    return best if score[best] >= MATCH_SCORE else None


def measure(played: PlayedChannel, onset: int, end: int, next_action: int | None) -> Interjection:
    """What the agent did about the caller's speech in frames [onset, end); the caller acted
    next at frame ``next_action`` (None: not before the call ended)."""
    levels = played.levels
    by = min(end + RESUME_WINDOW_FRAMES, next_action if next_action is not None else len(levels))
    discards = [(at, pcm) for at, pcm in played.discards if at >= onset]
    quiet = find_yield(levels, [at for at, _ in discards], onset, by)
    if quiet is None:
        return Interjection(None, None, None, 0, 0, 0, None)
    back = find_return(levels, quiet, by)
    thrown = [(at, pcm) for at, pcm in discards if at <= (back if back is not None else by)]
    discarded = _ms(sum(len(pcm) for _, pcm in thrown) // 2)
    if back is None:
        return Interjection(quiet, None, None, discarded, discarded, 0, None)
    probe_end = back + MATCH_MS // FRAME_MS
    backup = _samples(MAX_BACKUP_MS)
    if not thrown:
        # Nothing thrown away: the agent went on; did it back up into what was heard?
        before = played.audio(back - PREROLL_FRAMES, back)
        heard_n = len(before) // 2
        at = locate(before, played.audio(back, probe_end), heard_n - backup)
        repeated = _ms(heard_n - at) if at is not None else 0
        alignment = "matched" if at is not None else "continuous"
        return Interjection(quiet, back, back, 0, 0, repeated, alignment)
    # The interrupted audio: what was heard up to the first discard, then what each discard
    # threw away (with anything played between two of them).
    first = thrown[0][0]
    interrupted = played.audio(first - PREROLL_FRAMES, first)
    heard_n = len(interrupted) // 2
    previous = first
    for at, pcm in thrown:
        interrupted += played.audio(previous, at) + pcm
        previous = at
    returned = played.audio(previous, probe_end)
    lead_n = len(played.audio(previous, back)) // 2  # returned audio before its level was back
    found = locate(interrupted, returned[lead_n * 2 :], heard_n - backup + lead_n)
    if found is None:
        return Interjection(quiet, None, back, discarded, discarded, 0, "other")
    resent_from = found - lead_n - heard_n  # samples after the point the caller stopped hearing
    if resent_from > _samples(MAX_SKIP_MS):
        # Found well past where the caller stopped hearing: not the cut sentence taken up but a
        # new turn that says one of its sentences again word for word (cached audio).
        return Interjection(quiet, None, back, discarded, discarded, 0, "other")
    lost, repeated = _ms(max(0, resent_from)), _ms(max(0, -resent_from))
    return Interjection(quiet, back, back, discarded, lost, repeated, "matched")


def _samples(ms: int) -> int:
    return RATE * ms // 1000


def cut_in(levels: Sequence[float], onset: int, end: int) -> int | None:
    """The first frame in [onset, end) the agent's audio was voiced: it spoke before the caller
    finished (in a pause of the caller's, or over it); None if it waited."""
    return next(
        (i for i in range(max(0, onset), min(end, len(levels))) if levels[i] > VOICED_RMS), None
    )
