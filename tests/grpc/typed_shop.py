"""The typed gRPC test service: shop.v1.Shop of tests/grpc/shop.proto with real protobuf
messages, served and called with grpcio. Its code is generated at test time by grpcio-tools'
protoc (`compile`), as a team's build would.

    python typed_shop.py compile OUT_DIR
        Writes shop_pb2.py, shop_pb2_grpc.py and the descriptor set shop.pb into OUT_DIR.
    python typed_shop.py serve --gen DIR --variant baseline|canary|malformed [--reflection]
        Listens on a free loopback port and prints it on the first line of stdout. With
        --reflection it also offers gRPC server reflection (grpcio-reflection, v1alpha).
    python typed_shop.py call --gen DIR --target HOST:PORT [--repeat N]
        Makes every call below and prints, as one JSON object, what the client saw of each.
    python typed_shop.py load --gen DIR --target HOST:PORT --seconds S --concurrency C
        Unary GetItem calls as fast as C threads can make them for S seconds; prints
        {"calls": N, "seconds": S, "errors": E} (bench/grpc.sh).

The canary differs from the baseline in one field of GetItem's answer (price.units, one more)
and in one field of one message of ListItems' stream (the name of item 2). The `malformed`
variant answers GetItem with bytes that are not protobuf (its serializer sends them as they are).
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from concurrent import futures

HERE = os.path.dirname(os.path.abspath(__file__))


def compile_proto(out):
    os.makedirs(out, exist_ok=True)
    subprocess.run(
        [
            sys.executable, "-m", "grpc_tools.protoc", "-I", HERE,
            f"--python_out={out}", f"--grpc_python_out={out}",
            "--include_imports", f"--descriptor_set_out={os.path.join(out, 'shop.pb')}",
            os.path.join(HERE, "shop.proto"),
        ],
        check=True,
    )


def load(gen):
    sys.path.insert(0, gen)
    import shop_pb2
    import shop_pb2_grpc

    return shop_pb2, shop_pb2_grpc


def serve(args):
    import grpc

    pb, pb_grpc = load(args.gen)
    canary = args.variant == "canary"

    class Shop(pb_grpc.ShopServicer):
        def item(self, i, dearer=False, renamed=False):
            return pb.Item(
                id=i,
                name=f"item {i}" + (" (renamed)" if renamed else ""),
                price=pb.Money(currency="EUR", units=10 + i + (1 if dearer else 0), nanos=500000000),
                tags=["kitchen", "blue"],
                stock=pb.IN_STOCK,
                attributes={"colour": "blue", "size": "M"},
            )

        def GetItem(self, request, context):
            if request.id == 404:
                context.abort(grpc.StatusCode.NOT_FOUND, "no item 404")
            return self.item(request.id, dearer=canary)

        def ListItems(self, request, context):
            for i in range(request.count):
                yield self.item(i, renamed=canary and i == 2)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    if args.variant == "malformed":
        # GetItem answers bytes that are not protobuf: field 1 as a length-delimited value
        # claiming 127 bytes with 1 following. grpcio frames them as a message, as any bytes.
        broken = lambda _item: b"\x0a\x7f\x01"
        handler = grpc.method_handlers_generic_handler(
            "shop.v1.Shop",
            {
                "GetItem": grpc.unary_unary_rpc_method_handler(
                    Shop().GetItem, pb.GetItemRequest.FromString, broken
                ),
                "ListItems": grpc.unary_stream_rpc_method_handler(
                    Shop().ListItems, pb.ListItemsRequest.FromString, pb.Item.SerializeToString
                ),
            },
        )
        server.add_generic_rpc_handlers((handler,))
    else:
        pb_grpc.add_ShopServicer_to_server(Shop(), server)
    if args.reflection:
        from grpc_reflection.v1alpha import reflection

        names = (pb.DESCRIPTOR.services_by_name["Shop"].full_name, reflection.SERVICE_NAME)
        reflection.enable_server_reflection(names, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    server.wait_for_termination()


def call(args):
    import grpc
    from google.protobuf import json_format

    pb, pb_grpc = load(args.gen)
    channel = grpc.insecure_channel(args.target)
    grpc.channel_ready_future(channel).result(timeout=10)
    stub = pb_grpc.ShopStub(channel)

    def outcome(c, messages):
        return {
            "messages": [json_format.MessageToDict(m) for m in messages],
            "trailing_metadata": [list(kv) for kv in (c.trailing_metadata() or ())],
            "code": c.code().name,
            "details": c.details(),
        }

    out = {}
    for item in (1, 2, 404):
        try:
            response, c = stub.GetItem.with_call(pb.GetItemRequest(id=item), timeout=10)
            out[f"GetItem/{item}"] = outcome(c, [response])
        except grpc.RpcError as e:
            out[f"GetItem/{item}"] = outcome(e, [])
    c = stub.ListItems(pb.ListItemsRequest(count=4), timeout=10)
    messages = list(c)
    out["ListItems"] = outcome(c, messages)
    json.dump(out, sys.stdout, sort_keys=True)


def load_test(args):
    import grpc

    pb, pb_grpc = load(args.gen)
    channel = grpc.insecure_channel(args.target)
    grpc.channel_ready_future(channel).result(timeout=10)
    stub = pb_grpc.ShopStub(channel)
    stop = time.monotonic() + args.seconds
    counts = []
    lock = threading.Lock()

    def worker(n):
        calls = errors = 0
        while time.monotonic() < stop:
            try:
                stub.GetItem(pb.GetItemRequest(id=1 + (calls % 50)), timeout=10)
                calls += 1
            except grpc.RpcError:
                errors += 1
        with lock:
            counts.append((calls, errors))

    start = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    json.dump(
        {"calls": sum(c for c, _ in counts), "errors": sum(e for _, e in counts), "seconds": elapsed},
        sys.stdout,
    )


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command", required=True)
    cp = sub.add_parser("compile")
    cp.add_argument("out")
    sp = sub.add_parser("serve")
    sp.add_argument("--gen", required=True)
    sp.add_argument("--variant", choices=("baseline", "canary", "malformed"), required=True)
    sp.add_argument("--reflection", action="store_true")
    kp = sub.add_parser("call")
    kp.add_argument("--gen", required=True)
    kp.add_argument("--target", required=True)
    lp = sub.add_parser("load")
    lp.add_argument("--gen", required=True)
    lp.add_argument("--target", required=True)
    lp.add_argument("--seconds", type=float, default=10.0)
    lp.add_argument("--concurrency", type=int, default=8)
    args = p.parse_args()
    if args.command == "compile":
        compile_proto(args.out)
    elif args.command == "serve":
        serve(args)
    elif args.command == "call":
        call(args)
    else:
        load_test(args)


if __name__ == "__main__":
    main()
