"""Entry script of capture mode: `mitmweb --mode regular -s addon/capture.py` (`./mitm_run.sh capture` does this).

A forward proxy that only watches: LLM exchanges to any provider are recognised and shown (the LLM chat view, the
comment, marks, tool-call checks); nothing is rewritten, resolved or repaired, and credentials are masked in the
flows while the real ones still reach the provider. The translation proxy's addons are not loaded.
"""

import logging
import os
import sys
from pathlib import Path

# mitmproxy loads this file as a script; the addon package lives beside it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # else importing litellm fetches prices online

from mitmproxy import contentviews  # noqa: E402

from addon.inspection.capture import Capture  # noqa: E402
from addon.inspection.capture_view import CaptureChatView  # noqa: E402
from addon.runtime.credentials import CredentialMask  # noqa: E402

for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "httpx", "httpcore"):
    logging.getLogger(name).setLevel(logging.WARNING)
contentviews.add(CaptureChatView)

addons = [
    CredentialMask(),  # first: no other addon, and not mitmweb's view, sees a credential
    Capture(),
]
