"""Floor control: consumes device events, decides, commands devices, advances orders.

The controller is the only writer of floor state (pick tasks, totes, packages). Each
event's effect commits (state + events + outbox rows) before any command it causes
is sent; redelivered ``msg_id``s have no second effect.
"""
