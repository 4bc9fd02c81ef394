"""Code shared by every AllSource service: settings, errors, logging, the gRPC server harness and clients."""
