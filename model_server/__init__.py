"""A model server for TensorFlow SavedModels that speaks TensorFlow Serving's REST and gRPC APIs.

Layers, each using only the ones below it: ``model`` (one SavedModel version) → ``repository`` (versions on disk,
policies, labels, hot swaps) → ``batching`` (model calls off the event loop) → ``dataplane`` (protocol-agnostic
requests) → ``rest`` / ``grpc_service`` (thin transports) → ``server`` (wiring, ports, shutdown). Start it with
``python -m model_server``; ``model_server.client`` is the matching Python client.

Importing this package has no side effects: no flags parsed, no TensorFlow loaded, no server created.
"""

__version__ = "1.0.0"
