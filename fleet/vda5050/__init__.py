"""VDA 5050 master control: messages, topics, per-vehicle protocol state, and the MQTT transport."""
