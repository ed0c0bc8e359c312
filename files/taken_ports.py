#!/usr/bin/env python3
"""Print each of the given TCP ports that cannot be bound on 127.0.0.1 (playbooks/lab-up.yml
asks before it publishes the lab's ports). SO_REUSEADDR, as docker-proxy and sshd set it:
connections of a removed lab in TIME_WAIT do not hold a port, a listener does."""

import socket
import sys

for port in sys.argv[1:]:
    probe = socket.socket()
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind(("127.0.0.1", int(port)))
    except OSError:
        print(port)
    finally:
        probe.close()
