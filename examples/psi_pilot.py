"""Run a whole PSI and a whole PSI-CA against a running service (`make run` first).

    python examples/psi_pilot.py --url http://127.0.0.1:8000 \\
        --token "$(grep '^acme (member)' .data/demo-tokens.txt | cut -d' ' -f3)"

With the demo data, tenant acme may intersect with partner dataset globex/customers.
"""

import argparse
import asyncio
import os

from trustfabric.client.psi import PsiClient


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # where `make run` serves, on the same settings (TF_HOST, TF_PORT)
    host, port = os.environ.get("TF_HOST", "127.0.0.1"), os.environ.get("TF_PORT", "8000")
    parser.add_argument("--url", default=f"http://{host}:{port}")
    parser.add_argument("--token", required=True)
    parser.add_argument("--dataset", default="globex/customers")
    args = parser.parse_args()
    mine = [f"customer-{n}@example.com" for n in range(0, 40, 3)]  # 14 selectors
    async with PsiClient(args.url, args.token) as client:
        shared = await client.intersect(args.dataset, mine)
        print(f"PSI: {len(shared)} of my {len(mine)} selectors are shared: {shared[:3]} …")
        count = await client.cardinality(args.dataset, mine)
        print(f"PSI-CA: {count} shared (and nothing about which)")


if __name__ == "__main__":
    asyncio.run(main())
