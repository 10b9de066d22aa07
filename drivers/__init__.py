"""Device drivers: each device's own protocol on one side, the MQTT contract on the other.

Layout (one sub-package per device kind, each a pure codec plus a driver)::

    scanner/   codec.py (lines -> scans, AIM ids)                   driver.py
    scale/     mtsics.py, toledo.py (codecs), units.py, settle.py   driver.py, sics_driver.py
    printer/   codec.py (~HS status, ZPL checks)                    driver.py
    ptl/       codec.py (register map)                              driver.py
    diverter/  codec.py (register map, barcode registers)           driver.py

    frame.py        line framing (CR / CRLF / auto) and BadFrame, the only codec error
    serial_link.py  serial ports by URL and raw TCP, one owner per port
    modbus_link.py  one pymodbus client + lock per Modbus gateway, shared by its units
    bridge.py       the MQTT side: status + Last Will, outbox, commands, acks
    outbox.py       the bounded, ordered offline buffer (drop-oldest, counted)
    base.py         the driver runtime: device loop, command loop, fault reporting
    runner.py       ``wcs drivers --floor FILE``

Decisions worth knowing:

- One MQTT connection per device: the Last Will (``offline``, retained) is per
  connection, and the contract announces each device's death on its own topic. The
  Will's ``ts`` is the time the connection was made.
- ``msg_id`` is ``<device>-<boot id>-<n>``: unique across driver restarts, and a
  replay after a lost connection carries the id it had the first time.
- Events, acks and dead letters share one outbox per device (default 10,000
  messages): with the broker away they wait there, in order; when it is full the
  oldest go first and ``events_dropped`` counts them. At most ``inflight_window``
  publishes are unacknowledged at once, so paho never queues more than that.
- Sessions are clean: a command sent while a driver is disconnected is not queued
  by the broker for later, because lighting a slot or diverting a tote minutes late
  is worse than not at all. The controller sees no ack and decides.
- A repeated ``cmd_id`` (QoS 1 redelivery) is acked again with its first answer and
  not run again; the last 1,024 ids are remembered per device.
- Every malformed frame is published to ``dlq`` (``topic`` = the port it came from,
  ``raw`` truncated per the contract) and counted; a driver never stops on bad input.
"""
