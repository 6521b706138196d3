"""addon/runtime/option_reads.py: an immutable option value is read without deep copies; a mutable one is still a
copy, so no caller can change the option in place."""

import copy
from collections.abc import Sequence

from mitmproxy import optmanager
from mitmproxy.addons.proxyserver import Proxyserver
from mitmproxy.test import taddons

from addon.runtime import option_reads


def test_reads_give_the_same_values_and_copy_only_what_could_be_changed(monkeypatch):
    copied: list[object] = []
    deepcopy = copy.deepcopy
    monkeypatch.setattr(copy, "deepcopy", lambda value, *a: copied.append(value) or deepcopy(value, *a))
    with taddons.context(Proxyserver()) as tctx:
        options = tctx.master.options
        options.add_option("bench_list", Sequence[str], ["a"], "a list")
        tctx.configure(Proxyserver(), listen_port=8081)
        names = ["listen_port", "listen_host", "store_streamed_bodies", "stream_large_bodies", "bench_list", "mode"]
        before = {name: getattr(options, name) for name in names}
        option_reads.install(tctx.master)
        try:
            copied.clear()
            after = {name: getattr(options, name) for name in names}
            assert after == before and after["listen_port"] == 8081
            assert copied == [["a"], ["regular"]]  # only the lists, once each (mitmproxy: twice for a default)
            options.bench_list.append("changed")  # a caller's change to its copy ...
            assert options.bench_list == ["a"]  # ... is not the option's
        finally:
            option_reads.uninstall()
        assert optmanager._Option.current is not option_reads.current
        copied.clear()
        assert options.store_streamed_bodies is False and copied  # mitmproxy's own reads copy again
