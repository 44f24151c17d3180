"""``AsyncCache``, the asyncio facade, and its worker pool and read batching.

The top layer: may import every other layer; none imports it.
"""
