"""An OTLP/HTTP metrics receiver for the push tests: decodes every request with the
OpenTelemetry project's own protobuf classes (PyPI `opentelemetry-proto`) and prints it:
`REQUEST <path> <content type> <resource attributes>`, one `POINT` line a data point,
then `END` (floats as the hex of their bits, attributes sorted, fields split by tabs). Listens on 127.0.0.1 (an ephemeral port, printed as
`LISTENING <port>`). `--status CODE --times N` answers CODE to the first N requests.
Stops when its standard input closes."""
import gzip, struct, sys, threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

args = sys.argv[1:]
status = int(args[args.index("--status") + 1]) if "--status" in args else 200
times = int(args[args.index("--times") + 1]) if "--times" in args else 0
seen = 0
lock = threading.Lock()


def value(v):
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


def attrs(kvs):
    return {kv.key: value(kv.value) for kv in kvs}


def bits(x):
    return "%016x" % struct.unpack("<Q", struct.pack("<d", x))[0]


def text(v):
    return bits(v) if isinstance(v, float) else str(v)


def esc(t):
    return t.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")


def labels(d):
    return ",".join("%s=%s" % (k, esc(text(d[k]))) for k in sorted(d))


def decode(body):
    req = ExportMetricsServiceRequest.FromString(body)
    lines = []
    for rm in req.resource_metrics:
        lines.append("RESOURCE\t" + labels(attrs(rm.resource.attributes)))
        for sm in rm.scope_metrics:
            lines.append("SCOPE\t%s\t%s" % (sm.scope.name, sm.scope.version))
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                data = getattr(m, kind)
                head = [m.name, esc(m.description), m.unit, kind, str(getattr(data, "aggregation_temporality", "-")),
                        str(getattr(data, "is_monotonic", "-"))]
                for p in data.data_points:
                    cols = head + [labels(attrs(p.attributes)), str(p.start_time_unix_nano > 0), str(p.time_unix_nano > 0)]
                    if kind == "histogram":
                        cols += ["count=%d" % p.count, "sum=" + (bits(p.sum) if p.HasField("sum") else "none"),
                                 "buckets=" + ",".join(map(str, p.bucket_counts)),
                                 "bounds=" + ",".join(map(bits, p.explicit_bounds))]
                    else:
                        which = p.WhichOneof("value")
                        cols.append(("int:%d" % p.as_int) if which == "as_int" else ("double:" + bits(p.as_double)))
                    lines.append("POINT\t" + "\t".join(cols))
    return lines


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_POST(self):
        global seen
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with lock:
            seen += 1
            answer = status if seen <= times else 200
        if answer == 200:
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            out = ["REQUEST\t%s\t%s" % (self.path, self.headers.get("Content-Type"))] + decode(body) + ["END"]
            with lock:
                print("\n".join(out), flush=True)
        self.send_response(answer)
        self.send_header("Content-Length", "0")
        self.end_headers()


server = HTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
print("LISTENING", server.server_address[1], flush=True)
sys.stdin.read()
