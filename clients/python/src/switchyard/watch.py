"""The base of the client's server-stream iterators (device, alarm and
supervision watches): error mapping, cancellation and the context manager."""

from __future__ import annotations

from typing import Iterator

import grpc

from .errors import from_rpc_error


class StreamWatch:
    """Iterates over a server stream until it is cancelled or the server ends it.
    ``cancel()`` ends it from any thread; the iteration then stops without an
    error. Any other failure raises the client's exception for its status code.
    Subclasses yield their items from the stream's responses in :meth:`_items`."""

    #: The RPC, for error messages (e.g. ``"DeviceService/WatchDevices"``).
    _method = ""

    def __init__(self, call) -> None:
        self._call = call

    def _items(self) -> Iterator:
        raise NotImplementedError

    def __iter__(self):
        try:
            yield from self._items()
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.CANCELLED:
                raise from_rpc_error(err, self._method) from None
        finally:
            self._call.cancel()

    def cancel(self) -> None:
        """Ends the watch. Idempotent."""
        self._call.cancel()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.cancel()
