"""Envoy's own API, as the xds-protos package generates it from envoyproxy/data-plane-api, for
tests/envoy_tap.rs:

  envoy_api.py validate DIR   parse every YAML file in DIR as the Envoy message it is (a bootstrap,
                              an HTTP filter, or an Istio EnvoyFilter's HTTP_FILTER patches), every
                              typed_config resolved, unknown fields refused; one line per file
  envoy_api.py traces DIR     write the tap files of a baseline and a canary sidecar under
                              DIR/baseline and DIR/canary, built with Envoy's generated
                              TraceWrapper classes and written in each sink format as Envoy's file
                              sink writes them (source/extensions/common/tap/tap_config_base.cc)
"""

import importlib
import os
import pkgutil
import sys

import envoy
import yaml
from google.protobuf import json_format
from google.protobuf.internal.encoder import _VarintBytes


def register_every_envoy_message():
    """Import every generated module so that each typed_config's @type resolves."""
    for m in pkgutil.walk_packages(envoy.__path__, "envoy."):
        if m.name.endswith("_pb2"):
            try:
                importlib.import_module(m.name)
            except ImportError:
                pass


def validate(directory):
    register_every_envoy_message()
    from envoy.config.bootstrap.v3.bootstrap_pb2 import Bootstrap
    from envoy.extensions.filters.network.http_connection_manager.v3.http_connection_manager_pb2 import HttpFilter

    for name in sorted(os.listdir(directory)):
        if not name.endswith(".yaml"):
            continue
        doc = yaml.safe_load(open(os.path.join(directory, name)))
        try:
            if "static_resources" in doc:
                json_format.ParseDict(doc, Bootstrap())
                kind = "envoy.config.bootstrap.v3.Bootstrap"
            elif doc.get("kind") == "EnvoyFilter":
                patches = doc["spec"]["configPatches"]
                for p in patches:
                    assert p["applyTo"] == "HTTP_FILTER", p["applyTo"]
                    json_format.ParseDict(p["patch"]["value"], HttpFilter())
                kind = "EnvoyFilter patches as HttpFilter"
            elif "typed_config" in doc:
                json_format.ParseDict(doc, HttpFilter())
                kind = "HttpFilter"
            else:
                sys.exit(f"{name}: not a bootstrap, an HTTP filter or an EnvoyFilter")
        except json_format.ParseError as e:
            sys.exit(f"{name}: {e}")
        print(f"ok {name} {kind}")


T0 = 1796032800  # 2026-11-30T10:00:00Z


def traces(directory):
    from envoy.config.core.v3.base_pb2 import HeaderValue
    from envoy.data.tap.v3.wrapper_pb2 import TraceWrapper

    def request_headers(authority, method, path, rid):
        h = [(":authority", authority), (":path", path), (":method", method), (":scheme", "http")]
        h += [("user-agent", "curl/8.0"), ("x-request-id", rid)]
        return [HeaderValue(key=k, value=v) for k, v in h]

    def buffered(authority, method, path, rid, status, body, rq_time, rs_time, as_string=False, truncated=False):
        w = TraceWrapper()
        t = w.http_buffered_trace
        t.request.headers.extend(request_headers(authority, method, path, rid))
        t.request.headers_received_time.FromNanoseconds(rq_time)
        t.response.headers.extend([HeaderValue(key=":status", value=str(status)), HeaderValue(key="content-type", value="application/json")])
        if as_string:
            t.response.body.as_string = body.decode()
        else:
            t.response.body.as_bytes = body
        t.response.body.truncated = truncated
        t.response.headers_received_time.FromNanoseconds(rs_time)
        return w

    def streamed(authority, rid, trace_id, chunks):
        def segment():
            w = TraceWrapper()
            w.http_streamed_trace_segment.trace_id = trace_id
            return w, w.http_streamed_trace_segment

        out = []
        w, s = segment()
        s.request_headers.headers.extend(request_headers(authority, "GET", "/stream", rid))
        out.append(w)
        w, s = segment()
        s.response_headers.headers.extend([HeaderValue(key=":status", value="200")])
        out.append(w)
        for c in chunks:
            w, s = segment()
            s.response_body_chunk.as_bytes = c
            out.append(w)
        w, s = segment()
        s.response_trailers.headers.extend([HeaderValue(key="grpc-status", value="0")])
        out.append(w)
        return out

    def json(m):
        # MessageUtil::getJsonStringFromMessage(trace, pretty_print = true,
        # always_print_primitive_fields = true), proto field names.
        return json_format.MessageToJson(m, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)

    second = 1_000_000_000
    for side, authority, name, extra_ms in [("baseline", "api", b"ann", 0), ("canary", "api-shadow", b"ANN", 2)]:
        d = os.path.join(directory, side)
        os.makedirs(d, exist_ok=True)

        def write(file, data):
            mode = "w" if isinstance(data, str) else "wb"
            with open(os.path.join(d, file), mode) as f:
                f.write(data)

        t1 = (T0 + 1) * second
        write("tap_1.json", json(buffered(authority, "GET", "/users/1?x=1", "r1", 200, b'{"name":"' + name + b'"}', t1, t1 + (4 + extra_ms) * 1_000_000)))
        t2 = (T0 + 2) * second
        write("tap_2.json", json(buffered(authority, "GET", "/cut", "r2", 200, b'{"s":1', t2, t2 + 1_500_000, as_string=True, truncated=True)))
        t3 = (T0 + 3) * second
        write("tap_3.pb", buffered(authority, "GET", "/missing", "r3", 404, b"{}", t3, t3 + 2_000_000).SerializeToString())
        segments = streamed(authority, "r4", 4, [b"hello ", b"world"])
        write("tap_4.pb_length_delimited", b"".join(_VarintBytes(m.ByteSize()) + m.SerializeToString() for m in segments))
        write("tap_5.json", "".join(json(m) for m in streamed(authority, "r5", 5, [b"a", b"b"])))
        write("tap_6.pb", b"".join(m.SerializeToString() for m in streamed(authority, "r6", 6, [b"x", b"y"])))


if __name__ == "__main__":
    {"validate": validate, "traces": traces}[sys.argv[1]](sys.argv[2])
