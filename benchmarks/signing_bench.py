"""Signing cost of one order through the bridge's wire + the SDK's `sign_l1_action`, per ECC backend.

eth-keys picks its backend once per process (coincurve/libsecp256k1 when installed, else pure
Python; `ECC_BACKEND_CLASS` overrides it), so each backend is measured in its own child process.
Figures (p50/p99 in microseconds):
- `order_wire_and_sign`: build the wire of one GTC order with a cloid and sign it (what the bridge
  does inline per `place_orders`);
- `entry_and_stop_sign`: the same for an IOC entry + its stop as one normalTpsl group;
- `sign_only`: the SDK's `sign_l1_action` on a prebuilt action;
- `recover`: recovering the signer (what the simulator does per request).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import parse_args, summary_us, write_results

WORKER_ENV = "REVAGENT_SIGNING_BENCH_WORKER"
BACKENDS = {
    "coincurve": "eth_keys.backends.CoinCurveECCBackend",
    "pure_python": "eth_keys.backends.NativeECCBackend",
}
KEY = "0x0123456789012345678901234567890123456789012345678901234567890123"


def _measure(fn: Any, n: int) -> list[float]:
    for _ in range(min(20, n)):  # warm-up
        fn()
    out = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def worker(n: int) -> dict[str, Any]:
    """Run inside the child process: measure with whatever backend eth-keys resolved."""
    import eth_account
    from eth_keys.backends import get_backend
    from hyperliquid.utils.signing import recover_agent_or_user_from_l1_action, sign_l1_action

    from revagent.exchange.hyperliquid import NonceSource, cloid_for
    from revagent.exchange.hyperliquid.wire import order_action, signed_payload
    from revagent.exchange.protocol import LimitType, OrderRequest, TriggerType

    wallet = eth_account.Account.from_key(KEY)
    nonces = NonceSource()
    order = OrderRequest("BTC", True, Decimal("0.0123"), Decimal("60123"), LimitType("Gtc"), cloid=cloid_for("b", "1"))
    entry = OrderRequest("BTC", True, Decimal("0.0123"), Decimal("60500"), LimitType("Ioc"), cloid=cloid_for("b", "2"))
    stop = OrderRequest(
        "BTC", False, Decimal("0.0123"), Decimal("54000"), TriggerType(Decimal("57000"), True, "sl"), reduce_only=True
    )

    def one_order() -> None:
        signed_payload(wallet, order_action([order], [0], "na"), nonces.next(), is_mainnet=False)

    def entry_and_stop() -> None:
        signed_payload(wallet, order_action([entry, stop], [0, 0], "normalTpsl"), nonces.next(), is_mainnet=False)

    action = order_action([order], [0], "na")

    def sign_only() -> None:
        sign_l1_action(wallet, action, None, nonces.next(), None, False)

    body = signed_payload(wallet, action, 1_700_000_000_000, is_mainnet=False)

    def recover() -> None:
        recover_agent_or_user_from_l1_action(action, body["signature"], None, body["nonce"], None, False)

    return {
        "backend": type(get_backend()).__name__,
        "order_wire_and_sign": summary_us(_measure(one_order, n)),
        "entry_and_stop_sign": summary_us(_measure(entry_and_stop, n)),
        "sign_only": summary_us(_measure(sign_only, n)),
        "recover": summary_us(_measure(recover, n)),
    }


def run_child(backend_class: str, n: int) -> dict[str, Any]:
    env = dict(os.environ, ECC_BACKEND_CLASS=backend_class, **{WORKER_ENV: str(n)})
    out = subprocess.run([sys.executable, __file__], env=env, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def main() -> None:
    if WORKER_ENV in os.environ:
        json.dump(worker(int(os.environ[WORKER_ENV])), sys.stdout)
        return
    args = parse_args(__doc__ or "signing benchmark")
    samples = {"coincurve": 50, "pure_python": 20} if args.quick else {"coincurve": 3000, "pure_python": 400}
    figures: dict[str, Any] = {}
    for name, backend_class in BACKENDS.items():
        figures[name] = run_child(backend_class, samples[name])
    slow, fast = figures["pure_python"], figures["coincurve"]
    figures["speedup_p50"] = {
        key: round(slow[key]["p50_us"] / fast[key]["p50_us"], 1)
        for key in ("order_wire_and_sign", "entry_and_stop_sign", "sign_only", "recover")
    }
    write_results("signing_bench", figures, quick=args.quick)


if __name__ == "__main__":
    main()
