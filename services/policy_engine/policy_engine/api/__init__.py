"""The policy engine's HTTP routes."""

from __future__ import annotations

from fastapi import APIRouter

from policy_engine.api import dialog, sessions

router = APIRouter()
router.include_router(dialog.router)
router.include_router(sessions.router)
