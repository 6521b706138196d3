"""Entry script of capture mode: `mitmweb --mode regular -s addon/capture_mode.py` (`./mitm_run.sh capture` does this).

A forward proxy that only watches: LLM exchanges to any provider are recognised and shown (the LLM chat view, the
comment, marks, tool-call checks, sessions with their turns and what is new in each); nothing is rewritten, resolved or repaired, and credentials are masked in the
flows while the real ones still reach the provider (the one change to mitmproxy: capture/credentials.PATCHES, checked at start).
The translation proxy's addons are not loaded; the package is addon/capture/.
"""

import logging
import os
import sys
from pathlib import Path

# mitmproxy loads this file as a script; the addon package lives beside it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # else importing litellm fetches prices online

from mitmproxy import contentviews  # noqa: E402

from addon.capture import credentials  # noqa: E402
from addon.capture.recorder import Capture, chat_body  # noqa: E402
from addon.capture.view import CaptureChatView  # noqa: E402
from addon.inspection.sessions.addon import Sessions  # noqa: E402
from addon.runtime.patches import MitmproxyPatches  # noqa: E402

for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "httpx", "httpcore"):
    logging.getLogger(name).setLevel(logging.WARNING)
contentviews.add(CaptureChatView)

addons = [
    credentials.CredentialMask(),  # first: no other addon, and not mitmweb's view, sees a credential
    Capture(),
    Sessions(chat_body),  # after Capture: each captured request read as OpenAI chat, a turn of its session
    MitmproxyPatches(credentials.PATCHES),  # puts the real credentials back where requests become bytes
]
