"""proto: what Python code that speaks the chat protocol by hand needs of it (the grammar
itself is common/proto.c's)."""

# PROTO_HELLO_PAD: a UDP HELLO of this many bytes always earns its WELCOME; a UDP server
# answers an address that has not registered with no more bytes than it sent (PROTOCOL.md,
# "Reflection").
HELLO_PAD = 64


def hello_frame(cid, room=None, pad=HELLO_PAD):
    """HELLO <id> [<room>], padded with " #..." to pad bytes when shorter."""
    f = f"HELLO {cid}" + (f" {room}" if room else "")
    return f if len(f) >= pad else f + " #" + "#" * (pad - len(f) - 2)
