"""Where verification keys come from and how they are cached."""

from .sources import JWKSFile, JWKSUrl, KeySource, OIDCDiscovery, SharedSecret, StaticKeys

__all__ = ["JWKSFile", "JWKSUrl", "KeySource", "OIDCDiscovery", "SharedSecret", "StaticKeys"]
