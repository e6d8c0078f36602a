// Reports one two-span trace with the real Node.js jaeger-client, which sends
// Thrift binary over UDP (the agent's 6832). Usage: node report.js PORT SERVICE
const { initTracer } = require('jaeger-client');

const [port, service] = process.argv.slice(2);
const tracer = initTracer(
  {
    serviceName: service,
    sampler: { type: 'const', param: 1 },
    reporter: { agentHost: '127.0.0.1', agentPort: Number(port), flushIntervalMs: 100 },
  },
  { tags: { 'node.team': 'web' } },
);

const root = tracer.startSpan('render', { tags: { 'http.status_code': 200, 'cache.hit': false } });
root.log({ event: 'template-loaded', size: 1024 });
const child = tracer.startSpan('fetch-user', { childOf: root });
child.setTag('db.type', 'sql');
child.finish();
root.finish();
console.log(root.context().toTraceId());
tracer.close(() => process.exit(0));
