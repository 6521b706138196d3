"""hops.py: the mark a forwarded request carries, and the message a looped one gets."""

from addon.request import hops


def test_mark_round_trips_provider_ids_with_spaces_and_semicolons() -> None:
    value = hops.mark("ab12cd34", "KTDS Model; x=1", "KTDS Model; x=1/gemini-3")
    assert value.isascii() and value.startswith("ab12cd34; provider=")
    message = hops.loop_message(value, "ffff0000", "127.0.0.1:8001")
    assert "translation proxy 'ab12cd34' forwarded 'KTDS Model; x=1/gemini-3'" in message
    assert "provider 'KTDS Model; x=1'" in message and "127.0.0.1:8001" in message


def test_loop_to_itself_and_through_the_default_upstream() -> None:
    message = hops.loop_message(hops.mark("ab12cd34", None, "gemini-2.5-pro"), "ab12cd34", "127.0.0.1:8000")
    assert message.startswith("Request loop: this same proxy forwarded 'gemini-2.5-pro'")
    assert "GEMINI_API_BASE" in message


def test_a_foreign_or_garbled_mark_still_gets_a_message() -> None:
    assert hops.loop_message("1", "ab", "127.0.0.1:8000").startswith("Request loop: translation proxy '1'")
    assert "a model" in hops.loop_message("", "ab", "127.0.0.1:8000")


def test_instances_differ() -> None:
    assert hops.new_instance() != hops.new_instance()
