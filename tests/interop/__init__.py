"""Interop against a real OpenID provider (npm oidc-provider) and independent node clients."""
