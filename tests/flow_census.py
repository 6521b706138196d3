"""A test-only mitmproxy script: `GET /_census` answers how many flow objects the proxy process still holds.

Load it after the proxy's own script (`-s tests/flow_census.py`); the soak and the memory tests ask it whether
finished flows really leave memory. It collects garbage first, so only flows something still refers to count.
"""

from __future__ import annotations

import gc
import json

from mitmproxy import flow, http


class FlowCensus:
    def request(self, f: http.HTTPFlow) -> None:
        if not f.request.path.endswith("/_census"):  # routing may have pointed it at the upstream already
            return
        gc.collect()
        flows = [o for o in gc.get_objects() if isinstance(o, flow.Flow)]
        body = {"flows": len(flows), "finished": sum(not o.live for o in flows)}
        f.response = http.Response.make(200, json.dumps(body), {"content-type": "application/json"})


addons = [FlowCensus()]
