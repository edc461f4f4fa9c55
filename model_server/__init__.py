"""A model server for TensorFlow SavedModels that speaks TensorFlow Serving's REST and gRPC APIs.

Layers, each using only the ones below it: ``model`` (one SavedModel version, with the serving ``hints`` it brings)
→ ``repository`` (versions on disk, policies, labels, hot swaps) → ``batching`` (model calls off the event loop) →
``dataplane`` (protocol-agnostic requests) → ``rest`` / ``grpc_service`` (thin transports, one ``calls`` record) →
``server`` (wiring, ports, shutdown). Start it with ``python -m model_server``; ``model_server.client`` is the
matching Python client and ``model_server.process`` starts a server as a child process.

The server knows no model's feature names and imports nothing of the pipeline: a model's text rules come with the
model (``model_server.hints``).

Importing this package has no side effects: no flags parsed, no TensorFlow loaded, no server created.
"""

__version__ = "1.0.0"
