"""Keystead: a self-hostable identity server that speaks Auth0's wire protocol."""

__version__ = "0.1.0"
