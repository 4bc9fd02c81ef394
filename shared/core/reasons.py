"""The error reasons (allsource.v1.ErrorReason in protos/allsource/v1/errors.proto).

The enumeration is generated into the Python client package, which owns the public API's generated
code; servers and clients use the same one, so a reason cannot be spelt two ways.
"""

from allsource_client.reasons import Reason

__all__ = ["Reason"]
