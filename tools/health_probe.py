"""A grpc.health.v1 probe for container health checks: `python health_probe.py PORT [SERVICE]`.

Calls grpc.health.v1.Health/Check on HOST:PORT (default host 127.0.0.1) for SERVICE (default "", the
whole server) and exits 0 only when the answer is SERVING. Anything else -- NOT_SERVING, an unknown
service, no listener, a timeout, a bad command line -- exits 1, the only failure status Docker health
checks define (2 is reserved, so argparse's usual 2 is remapped).

It stands in for the `grpc_health_probe` binary so the image downloads nothing from GitHub; it needs only
grpcio and grpcio-health-checking, which the AllSource package already depends on.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

UNHEALTHY = 1


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(UNHEALTHY, f"{self.prog}: error: {message}\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _Parser(prog="health_probe", description="Exit 0 only if a grpc.health.v1 Check answers SERVING.")
    parser.add_argument("port", type=int, help="port to probe")
    parser.add_argument("service", nargs="?", default="", help='service name to check (default "": the server)')
    parser.add_argument("--host", default="127.0.0.1", help="host to probe (default 127.0.0.1)")
    parser.add_argument("--timeout", type=float, default=2.0, help="deadline in seconds (default 2)")
    args = parser.parse_args(argv)

    # Imported after argument parsing so a usage error costs no gRPC start-up.
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    target = f"[{args.host}]:{args.port}" if ":" in args.host else f"{args.host}:{args.port}"
    # A proxy from the environment (http_proxy) must never carry a loopback probe.
    with grpc.insecure_channel(target, options=[("grpc.enable_http_proxy", 0)]) as channel:
        try:
            # wait_for_ready is off: a refused connection fails at once instead of waiting out the deadline.
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=args.service), timeout=args.timeout
            )
        except grpc.RpcError as err:
            code = err.code().name if hasattr(err, "code") else "ERROR"
            details = err.details() if hasattr(err, "details") else str(err)
            print(f"{target} {args.service!r}: {code}: {details}", file=sys.stderr)
            return UNHEALTHY
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"{target} {args.service!r}: {status}")
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else UNHEALTHY


if __name__ == "__main__":
    sys.exit(main())
