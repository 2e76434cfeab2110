"""A small gRPC service for tests/grpc.rs, served and called with grpcio (the reference Python
implementation), with no generated code: messages are google.protobuf.Struct (a real protobuf
message shipped with the protobuf package) and the service is registered with grpcio's generic
handler API under the name shop.v1.Shop.

    python shop.py serve --variant baseline|canary [--behavior normal|hang|die]
        Listens on a free loopback port and prints it on the first line of stdout.
    python shop.py call --target HOST:PORT [--upload-pause SECONDS]
        Makes every call below and prints, as one JSON object, what the client saw of each:
        messages, initial metadata, trailing metadata, status code and message.

The canary differs from the baseline in one field (GetItem's price), one status (GetItem of id
404: NOT_FOUND on the baseline, UNAVAILABLE on the canary) and one trailer (x-inventory-version).
"""

import argparse
import json
import os
import queue
import sys
import time
from concurrent import futures

import grpc
from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct

SERVICE = "shop.v1.Shop"


def struct(**fields):
    s = Struct()
    s.update(fields)
    return s


def to_dict(message):
    return json_format.MessageToDict(message)


class Shop:
    def __init__(self, variant, behavior):
        self.canary = variant == "canary"
        self.behavior = behavior

    def misbehave(self):
        if self.behavior == "hang":
            time.sleep(30)
        elif self.behavior == "die":
            # The process goes away mid-call: the stream and the connection are cut.
            os._exit(1)

    def trailers(self, context, extra=()):
        deadline = "set" if context.time_remaining() is not None else "none"
        context.set_trailing_metadata(
            (("x-inventory-version", "2" if self.canary else "1"), ("x-deadline", deadline)) + tuple(extra)
        )

    def get_item(self, request, context):
        self.misbehave()
        context.send_initial_metadata((("x-shop-region", "eu-1"),))
        item = int(request["id"])
        self.trailers(context)
        if item == 404:
            if self.canary:
                context.abort(grpc.StatusCode.UNAVAILABLE, "inventory backend unreachable")
            context.abort(grpc.StatusCode.NOT_FOUND, "no item 404")
        price = 10.5 + item + (1 if self.canary else 0)
        return struct(id=item, name=f"item {item}", price=price)

    def list_items(self, request, context):
        self.misbehave()
        self.trailers(context)
        for i in range(int(request["count"])):
            yield struct(index=i, name=f"item {i}")

    def upload(self, request_iterator, context):
        self.misbehave()
        total = 0
        n = 0
        for r in request_iterator:
            total += r["amount"]
            n += 1
        self.trailers(context, (("x-received", str(n)),))
        return struct(total=total, messages=n)

    def chat(self, request_iterator, context):
        self.misbehave()
        self.trailers(context)
        for r in request_iterator:
            yield struct(echo=r["text"].upper())


def serve(args):
    shop = Shop(args.variant, args.behavior)
    s, d = Struct.SerializeToString, Struct.FromString
    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "GetItem": grpc.unary_unary_rpc_method_handler(shop.get_item, d, s),
            "ListItems": grpc.unary_stream_rpc_method_handler(shop.list_items, d, s),
            "Upload": grpc.stream_unary_rpc_method_handler(shop.upload, d, s),
            "Chat": grpc.stream_stream_rpc_method_handler(shop.chat, d, s),
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    server.wait_for_termination()


def outcome(call, messages):
    """What the client saw of one call."""
    return {
        "messages": [to_dict(m) for m in messages],
        "initial_metadata": [list(kv) for kv in (call.initial_metadata() or ())],
        "trailing_metadata": [list(kv) for kv in (call.trailing_metadata() or ())],
        "code": call.code().name,
        "details": call.details(),
    }


def call(args):
    channel = grpc.insecure_channel(args.target)
    grpc.channel_ready_future(channel).result(timeout=10)
    s, d = Struct.SerializeToString, Struct.FromString
    path = lambda m: f"/{SERVICE}/{m}"
    get_item = channel.unary_unary(path("GetItem"), s, d)
    list_items = channel.unary_stream(path("ListItems"), s, d)
    upload = channel.stream_unary(path("Upload"), s, d)
    chat = channel.stream_stream(path("Chat"), s, d)
    metadata = (("x-client", "tests/grpc"),)
    timeout = 10
    out = {}
    for item in (1, 2, 404):
        try:
            response, c = get_item.with_call(struct(id=item), timeout=timeout, metadata=metadata)
            out[f"GetItem/{item}"] = outcome(c, [response])
        except grpc.RpcError as e:
            out[f"GetItem/{item}"] = outcome(e, [])
    c = list_items(struct(count=5), timeout=timeout, metadata=metadata)
    messages = list(c)
    out["ListItems"] = outcome(c, messages)
    def amounts():
        for i, a in enumerate((3, 4, 5)):
            if i:
                time.sleep(args.upload_pause)
            yield struct(amount=a)

    response, c = upload.with_call(amounts(), timeout=timeout, metadata=metadata)
    out["Upload"] = outcome(c, [response])
    # Bidirectional, in lock step: each message is sent only after the answer to the previous
    # one arrived, so a proxy that held the client's stream back until it ended would hang here.
    outbox = queue.Queue()

    def requests():
        while (m := outbox.get()) is not None:
            yield m

    c = chat(requests(), timeout=timeout, metadata=metadata)
    messages = []
    for text in ("hello", "shadow", "diff"):
        outbox.put(struct(text=text))
        messages.append(next(c))
    outbox.put(None)
    messages.extend(c)
    out["Chat"] = outcome(c, messages)
    json.dump(out, sys.stdout, sort_keys=True)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command", required=True)
    sp = sub.add_parser("serve")
    sp.add_argument("--variant", choices=("baseline", "canary"), required=True)
    sp.add_argument("--behavior", choices=("normal", "hang", "die"), default="normal")
    cp = sub.add_parser("call")
    cp.add_argument("--target", required=True)
    # Seconds between the client-streaming call's messages: a stream longer than a proxy's
    # response-head timeout.
    cp.add_argument("--upload-pause", type=float, default=0.0)
    args = p.parse_args()
    serve(args) if args.command == "serve" else call(args)


if __name__ == "__main__":
    main()
