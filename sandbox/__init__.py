"""The sandbox: duban's own local Bot API server (127.0.0.1 only) for trying and testing.

``sandbox.botapi`` behaves like Telegram's Bot API (HTML and length rules, rate limits, 403
for blocked users, ...). The tests and ``duban run --sandbox`` share this one server; it is
never a stand-in for Telegram in a real run.
"""
