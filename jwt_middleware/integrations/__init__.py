"""Thin framework helpers over the ASGI/WSGI adapters; each needs its framework's extra."""
