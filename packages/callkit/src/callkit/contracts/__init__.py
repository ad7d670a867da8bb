"""The messages that cross a service boundary, one module per contract; :data:`REGISTRY` lists them.

``streams`` names the Redis streams and key namespaces; ``outcome`` is the call outcome on
calls:completed; ``dialog`` is POST /dialog and its SSE stream; ``asr`` is WS /ws/transcribe;
``live`` is calls:events; ``tts`` is POST /synthesize; ``campaign`` is what the dialer writes
for each call it places; ``load`` is each bridge's calls in progress (``bridge:{replica}:load``),
which the dialer paces by. The registry also lists mod_audio_fork's messages
(:mod:`callkit.audiofork`: the switch's protocol, shared by the bridge and the emulated
switch). Producers build these models and consumers parse with them; the Contracts section of
docs/ARCHITECTURE.md is generated from this registry (``python -m callkit.contracts.docs``).
"""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel

from callkit import audiofork
from callkit.contracts import asr, campaign, dialog, live, load, outcome, tts
from callkit.events import ErrorEvent

#: Every contract model, by module, in the order the docs list them.
REGISTRY: Final[dict[str, tuple[type[BaseModel], ...]]] = {
    outcome.__name__: (
        outcome.CallOutcome,
        outcome.Slots,
        outcome.TranscriptLine,
        outcome.CallLatency,
        outcome.Amd,
    ),
    campaign.__name__: (campaign.CampaignCall,),
    load.__name__: (load.BridgeLoad,),
    dialog.__name__: (
        dialog.DialogRequest,
        dialog.CallStarted,
        dialog.Contact,
        dialog.UserUtterance,
        dialog.UserInterrupted,
        dialog.HeardUtterance,
        dialog.UserSilence,
        dialog.Dtmf,
        dialog.CallEnded,
        dialog.CallMachine,
        dialog.ReplySentence,
        dialog.ReplyDone,
        dialog.DialogReply,
        dialog.DialogError,
        dialog.HangupAction,
        dialog.TransferAction,
        dialog.NoAction,
    ),
    asr.__name__: (
        asr.SessionStart,
        asr.SessionConfigure,
        asr.InputCommit,
        asr.SessionClose,
        asr.SessionCreated,
        asr.SessionUpdated,
        asr.SpeechStarted,
        asr.SpeechEnded,
        asr.TranscriptPartial,
        asr.TranscriptFinal,
        asr.SessionClosed,
        ErrorEvent,
    ),
    live.__name__: (
        live.LiveCallStarted,
        live.LiveCallEnded,
        live.CallerFinal,
        live.AgentSentence,
        live.BargeIn,
        live.StateChanged,
        live.TurnTimed,
    ),
    tts.__name__: (tts.SynthesizeRequest,),
    audiofork.__name__: (
        audiofork.ForkMetadata,
        audiofork.MarkReply,
        audiofork.PlayAudioEvent,
        audiofork.PlayAudio,
        audiofork.PlayAudioData,
        audiofork.KillAudio,
        audiofork.Mark,
        audiofork.MarkData,
        audiofork.ClearMarks,
    ),
}

__all__ = ["REGISTRY", "asr", "dialog", "live", "load", "outcome", "tts"]
