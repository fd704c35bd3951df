"""What a Telegram message is, in one place: limits, button ids, and the pushed messages.

- `limits`: Telegram's text limits (UTF-16 length, entity count) and the splitters that keep
  a reply or a pushed message within them.
- `callbacks`: every button's callback data, in one table, built and parsed here only.
- `pushes`: the builders of messages pushed through the outbox (nudges and their buttons,
  the office's review and extension buttons).
"""
