// The Jaeger agent's UDP interface (jaeger-idl thrift/agent.thrift): clients
// send one oneway call per datagram.

include "jaeger.thrift"
include "zipkincore.thrift"

service Agent {
  oneway void emitZipkinBatch(1: list<zipkincore.Span> spans)
  oneway void emitBatch(1: jaeger.Batch batch)
}
